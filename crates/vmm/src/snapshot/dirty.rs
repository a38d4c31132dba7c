//! Dirty-page tracking for diff snapshots: which guest pages changed since the last
//! snapshot. Two writers change guest RAM and each has its log:
//!
//! - the guest (vCPUs): KVM's dirty log of each slot (registered with
//!   KVM_MEM_LOG_DIRTY_PAGES, `memory::register_memory`), read and cleared by
//!   KVM_GET_DIRTY_LOG;
//! - the VMM itself (virtio used rings, the buffers devices fill, the VMGenID GUID):
//!   vm-memory's per-region `AtomicBitmap` (`devices::guest_memory`), which KVM's log
//!   never sees.
//!
//! A page is dirty if either log says so. Both are cleared when read, so each snapshot
//! (Full or Diff) starts the next diff's interval.

use devices::guest_memory::{GuestMemoryMmap, PAGE_SIZE};
use kvm_ioctls::VmFd;
use std::fs::File;
use std::os::unix::fs::FileExt;
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

/// One bit per page of each region, in `mem.iter()` order (slot order), 64 pages a word.
#[derive(Debug, Default)]
pub struct DirtyPages {
    regions: Vec<Vec<u64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirtyError {
    #[error("cannot read KVM's dirty page log of memory slot {slot}: {source}")]
    Log { slot: u32, source: kvm_ioctls::Error },
    #[error("cannot write guest memory to the snapshot: {0}")]
    Write(#[source] std::io::Error),
}

impl DirtyPages {
    /// Reads and clears both logs of every region of `mem` (registered as slots 0, 1, ...).
    pub fn take(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<DirtyPages, DirtyError> {
        let mut regions = Vec::new();
        for (slot, region) in mem.iter().enumerate() {
            let slot = slot as u32;
            let mut bits =
                vm.get_dirty_log(slot, region.len() as usize).map_err(|source| DirtyError::Log { slot, source })?;
            if let Some(vmm_writes) = (**region).bitmap() {
                // Both use bit `i % 64` of word `i / 64` for page `i`.
                for (word, vmm) in bits.iter_mut().zip(vmm_writes.get_and_reset()) {
                    *word |= vmm;
                }
            }
            regions.push(bits);
        }
        Ok(DirtyPages { regions })
    }

    /// How many pages are dirty.
    pub fn count(&self) -> u64 {
        self.regions.iter().flatten().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Writes every dirty page of `mem` at its offset in `file` from `at` (the RAM ranges
    /// one after another, as a full snapshot lays them out), a run of dirty pages a call;
    /// the rest of the file stays holes. A dirty page is written even when it is all
    /// zeros: the merge must overwrite what the base has there. Returns the bytes written.
    pub fn write(&self, mem: &GuestMemoryMmap, file: &File, at: u64) -> Result<u64, DirtyError> {
        let mut pos = at;
        let mut written = 0;
        for (region, bits) in mem.iter().zip(&self.regions) {
            let len = region.len() as usize;
            let pages = len.div_ceil(PAGE_SIZE);
            let dirty = |page: usize| bits.get(page / 64).is_some_and(|w| w & (1 << (page % 64)) != 0);
            // SAFETY: the region maps `len` bytes at its host address for as long as `mem`
            // lives, and the VM is paused (vCPUs and the device thread parked), so nothing
            // writes it while it is read here.
            let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr().cast_const(), len) };
            let mut page = 0;
            while page < pages {
                if !dirty(page) {
                    page += 1;
                    continue;
                }
                let start = page;
                while page < pages && dirty(page) {
                    page += 1;
                }
                let (from, to) = (start * PAGE_SIZE, (page * PAGE_SIZE).min(len));
                file.write_all_at(&bytes[from..to], pos + from as u64).map_err(DirtyError::Write)?;
                written += (to - from) as u64;
            }
            pos += len as u64;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestAddress};

    /// What the VMM writes through vm-memory lands in the bitmaps; the diff writes those
    /// pages only, at their offsets, and clears them.
    #[test]
    fn the_vmm_s_own_writes_are_counted_and_written_at_their_offsets() {
        let mem = devices::guest_memory::anonymous(&[(GuestAddress(0), 1 << 20)], true).unwrap();
        mem.write_obj(0xabcd_u32, GuestAddress(3 * PAGE_SIZE as u64 + 8)).unwrap();
        mem.write_slice(&[7u8; 2 * PAGE_SIZE], GuestAddress(10 * PAGE_SIZE as u64)).unwrap();
        let region = mem.iter().next().unwrap();
        let bits = (**region).bitmap().as_ref().unwrap().get_and_reset();
        assert_eq!(bits[0], (1 << 3) | (1 << 10) | (1 << 11));
        // Marked again, now taken as a diff would (without KVM: the bitmap alone).
        mem.write_obj(0xabcd_u32, GuestAddress(3 * PAGE_SIZE as u64 + 8)).unwrap();
        mem.write_slice(&[7u8; 2 * PAGE_SIZE], GuestAddress(10 * PAGE_SIZE as u64)).unwrap();
        let dirty = DirtyPages { regions: vec![(**region).bitmap().as_ref().unwrap().get_and_reset()] };
        assert_eq!(dirty.count(), 3);
        let path = std::env::temp_dir().join(format!("microvm-dirty-{}", std::process::id()));
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(1 << 20).unwrap();
        assert_eq!(dirty.write(&mem, &file, 0).unwrap(), 3 * PAGE_SIZE as u64);
        let mut word = [0u8; 4];
        file.read_exact_at(&mut word, 3 * PAGE_SIZE as u64 + 8).unwrap();
        assert_eq!(u32::from_le_bytes(word), 0xabcd);
        assert!((**region).bitmap().as_ref().unwrap().get_and_reset().iter().all(|&w| w == 0), "reading clears");
        std::fs::remove_file(&path).unwrap();
    }

    /// Tracking off: the regions have no bitmap at all.
    #[test]
    fn untracked_memory_has_no_bitmap() {
        let mem = devices::guest_memory::untracked(&[(GuestAddress(0), 1 << 20)]);
        assert!(!devices::guest_memory::is_tracked(&mem));
        mem.write_obj(1u8, GuestAddress(0)).unwrap();
        assert!(mem.iter().all(|r| r.bitmap().is_none()));
    }
}
