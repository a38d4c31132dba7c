//! Guest memory in snapshot files. Writing: page by page in the file's order (the RAM
//! ranges one after another), leaving a hole for every page that is all zeros, so a
//! guest that touched little of its RAM leaves a small file (`du`), however large `-m`.
//! Reading: the file mapped MAP_PRIVATE, so a restore costs the pages the guest touches,
//! not its RAM size, and clones of one snapshot share the file's page cache.

use arch::memmap::guest_ram_ranges;
use devices::guest_memory::{GuestMemoryMmap, GuestRegionMmap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{FileOffset, GuestMemoryBackend, GuestMemoryRegion};

/// The unit of the zero-page check and of the holes.
const PAGE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MemoryFileError {
    #[error("cannot write guest memory to the snapshot: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot read guest memory from the snapshot: {0}")]
    Read(#[source] std::io::Error),
    #[error("the snapshot's memory ends at byte {needed} of its file, which has {present}: the file is truncated")]
    Truncated { needed: u64, present: u64 },
    #[error("cannot map the snapshot's memory: {0}")]
    Map(#[source] vm_memory::mmap::MmapRegionError),
    #[error("cannot map the snapshot's memory: the guest RAM layout is invalid")]
    Layout,
}

/// What writing memory did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrittenMemory {
    /// Bytes written (pages that are not all zeros).
    pub data: u64,
    /// Bytes left as holes.
    pub zero: u64,
}

/// Writes every region of `mem` at `offset` of `file`, in guest-address order, leaving
/// holes for zero pages. The file must already be sized (holes read as zeros).
pub fn write_memory(mem: &GuestMemoryMmap, file: &File, offset: u64) -> Result<WrittenMemory, MemoryFileError> {
    let mut written = WrittenMemory::default();
    let mut pos = offset;
    for region in mem.iter() {
        let len = region.len() as usize;
        let host = region.as_ptr();
        // SAFETY: the region maps `len` bytes at `host` for as long as `mem` lives, and
        // the vCPUs are parked (snapshots are taken paused), so nothing writes it while
        // it is read here; the device thread is parked too.
        let bytes = unsafe { std::slice::from_raw_parts(host.cast_const(), len) };
        let mut page = 0;
        while page < len {
            // A run of non-zero pages is written with one call.
            let start = page;
            while page < len && !is_zero(&bytes[page..(page + PAGE).min(len)]) {
                page += PAGE;
            }
            if page > start {
                file.write_all_at(&bytes[start..page], pos + start as u64).map_err(MemoryFileError::Write)?;
                written.data += (page - start) as u64;
            }
            while page < len && is_zero(&bytes[page..(page + PAGE).min(len)]) {
                written.zero += PAGE.min(len - page) as u64;
                page += PAGE;
            }
        }
        pos += len as u64;
    }
    Ok(written)
}

/// Whether `bytes` are all zeros, a word at a time (the compiler vectorises the fold).
fn is_zero(bytes: &[u8]) -> bool {
    let (head, words, tail) = {
        // SAFETY: u64 has no invalid bit patterns; align_to only reinterprets the aligned middle.
        unsafe { bytes.align_to::<u64>() }
    };
    head.iter().all(|&b| b == 0) && words.iter().fold(0, |acc, &w| acc | w) == 0 && tail.iter().all(|&b| b == 0)
}

/// Maps `mem_size` bytes of guest RAM from `file` at `offset`, MAP_PRIVATE: reads come
/// from the file (its page cache, shared by every clone), the guest's writes stay in
/// this process. `track`: each region gets a dirty bitmap (dirty-page tracking).
pub fn map_memory(file: &File, offset: u64, mem_size: u64, track: bool) -> Result<GuestMemoryMmap, MemoryFileError> {
    let present = file.metadata().map_err(MemoryFileError::Read)?.len();
    let needed = offset + mem_size;
    if present < needed {
        return Err(MemoryFileError::Truncated { needed, present });
    }
    let mut regions = Vec::new();
    let mut pos = offset;
    for (addr, size) in guest_ram_ranges(mem_size) {
        let fd = file.try_clone().map_err(MemoryFileError::Read)?;
        let mapping = MmapRegionBuilder::new_with_bitmap(size, devices::guest_memory::bitmap_for(size, track))
            .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
            .with_file_offset(FileOffset::new(fd, pos))
            .with_mmap_flags(libc::MAP_NORESERVE | libc::MAP_PRIVATE)
            .build()
            .map_err(MemoryFileError::Map)?;
        regions.push(GuestRegionMmap::new(mapping, addr).ok_or(MemoryFileError::Layout)?);
        pos += size as u64;
    }
    GuestMemoryMmap::from_regions(regions).map_err(|_| MemoryFileError::Layout)
}

/// Checks that `file` has all of `mem`'s bytes from `offset` on: a truncated file is an
/// error here, not a SIGBUS when the guest touches the missing page.
fn holds_all_of(mem: &GuestMemoryMmap, file: &File, offset: u64) -> Result<(), MemoryFileError> {
    let present = file.metadata().map_err(MemoryFileError::Read)?.len();
    let needed = offset + mem.iter().map(|r| r.len()).sum::<u64>();
    if present < needed {
        return Err(MemoryFileError::Truncated { needed, present });
    }
    Ok(())
}

/// Maps `file` at `offset` over the guest RAM `mem` already maps, MAP_FIXED | MAP_PRIVATE:
/// the same host addresses (so KVM's slots and every device's view stay valid; KVM's MMU
/// notifier drops what it had mapped of the old pages), now backed by the file.
pub fn map_over(mem: &GuestMemoryMmap, file: &File, offset: u64) -> Result<(), MemoryFileError> {
    holds_all_of(mem, file, offset)?;
    let mut pos = offset;
    for region in mem.iter() {
        let len = region.len() as usize;
        // SAFETY: the range is exactly one region vm-memory mapped and owns; replacing its
        // pages keeps the range mapped (no other mapping is touched), and nothing reads or
        // writes guest RAM meanwhile: no vCPU has run yet and the devices are idle.
        let mapped = unsafe {
            libc::mmap(
                region.as_ptr().cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_NORESERVE,
                std::os::fd::AsRawFd::as_raw_fd(file),
                pos as libc::off_t,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(MemoryFileError::Read(std::io::Error::last_os_error()));
        }
        pos += len as u64;
    }
    Ok(())
}

/// Copies guest RAM from `file` at `offset` into `mem` (already mapped, e.g. a memory
/// backend the restore must keep): for when the file cannot simply be mapped.
pub fn read_memory(mem: &GuestMemoryMmap, file: &File, offset: u64) -> Result<(), MemoryFileError> {
    holds_all_of(mem, file, offset)?;
    let mut pos = offset;
    for region in mem.iter() {
        let len = region.len() as usize;
        // SAFETY: the region maps `len` writable bytes at its address for as long as
        // `mem` lives, and no vCPU runs yet (restore happens before any starts).
        let bytes = unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), len) };
        file.read_exact_at(bytes, pos).map_err(MemoryFileError::Read)?;
        pos += len as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use vm_memory::{Bytes, GuestAddress};

    #[test]
    fn zero_pages_become_holes_and_the_rest_reads_back() {
        let size = 64 << 20;
        let mem = devices::guest_memory::untracked(&guest_ram_ranges(size));
        mem.write_obj(0xdead_beefu32, GuestAddress(0x1000)).unwrap();
        mem.write_slice(&[7u8; 3 * PAGE], GuestAddress(0x10_0000)).unwrap();
        mem.write_obj(1u8, GuestAddress(size - 1)).unwrap();
        let dir = std::env::temp_dir().join(format!("microvm-memfile-{}", std::process::id()));
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&dir).unwrap();
        let offset = 8192;
        file.set_len(offset + size).unwrap();
        let written = write_memory(&mem, &file, offset).unwrap();
        assert_eq!(written.data, 5 * PAGE as u64);
        assert_eq!(written.data + written.zero, size);
        // Allocated blocks: the five pages, not 64 MiB (the file system may round up).
        let allocated = file.metadata().unwrap().blocks() * 512;
        assert!(allocated < 1 << 20, "{allocated} bytes allocated for 20 KiB of data");
        let restored = map_memory(&file, offset, size, false).unwrap();
        assert_eq!(restored.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0xdead_beef);
        assert_eq!(restored.read_obj::<u8>(GuestAddress(0x10_0000 + 2 * PAGE as u64)).unwrap(), 7);
        assert_eq!(restored.read_obj::<u8>(GuestAddress(size - 1)).unwrap(), 1);
        assert_eq!(restored.read_obj::<u64>(GuestAddress(0x20_0000)).unwrap(), 0);
        // MAP_PRIVATE: the restored guest's writes do not reach the file.
        restored.write_obj(0u32, GuestAddress(0x1000)).unwrap();
        let again = map_memory(&file, offset, size, false).unwrap();
        assert_eq!(again.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0xdead_beef);
        let copy = devices::guest_memory::untracked(&guest_ram_ranges(size));
        read_memory(&copy, &file, offset).unwrap();
        assert_eq!(copy.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0xdead_beef);
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn a_short_file_is_refused() {
        let path = std::env::temp_dir().join(format!("microvm-memfile-short-{}", std::process::id()));
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(4096).unwrap();
        let e = map_memory(&file, 0, 64 << 20, false).unwrap_err();
        assert!(matches!(e, MemoryFileError::Truncated { needed, present: 4096 } if needed == 64 << 20));
        std::fs::remove_file(&path).unwrap();
    }
}
