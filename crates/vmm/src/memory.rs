//! Guest RAM: anonymous, lazily-backed host mappings registered as KVM slots.

use arch::memmap::guest_ram_ranges;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot map {size} bytes of guest memory: {source}")]
    Map { size: u64, source: vm_memory::mmap::FromRangesError },
    #[error("cannot lock {size} bytes of guest memory (-overcommit mem-lock=on): {source}; raise the locked-memory limit (ulimit -l)")]
    Lock { size: u64, source: std::io::Error },
    #[error("KVM refused guest memory slot {slot}: {source}")]
    Slot { slot: u32, source: kvm_ioctls::Error },
}

/// Maps guest RAM. vm-memory maps it MAP_NORESERVE | MAP_PRIVATE: host
/// memory is only used for pages the guest touches, so a large `-m` is free.
pub fn create_guest_memory(mem_size: u64) -> Result<GuestMemoryMmap, MemoryError> {
    GuestMemoryMmap::from_ranges(&guest_ram_ranges(mem_size))
        .map_err(|source| MemoryError::Map { size: mem_size, source })
}

pub fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), MemoryError> {
    for (slot, region) in mem.iter().enumerate() {
        let slot = slot as u32;
        let host = region.as_ptr() as u64;
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host,
        };
        // SAFETY: the host range is a live mapping owned by `mem`, which the
        // Vmm keeps alive for as long as the VM (and so the slot) exists.
        unsafe { vm.set_user_memory_region(region) }.map_err(|source| MemoryError::Slot { slot, source })?;
    }
    Ok(())
}

/// `-overcommit mem-lock=on`: faults in and locks every page of guest RAM, so
/// the guest never waits for the host to page it in (QEMU locks the whole
/// process with mlockall; guest RAM is what matters).
pub fn lock_guest_memory(mem: &GuestMemoryMmap) -> Result<(), MemoryError> {
    for region in mem.iter() {
        // SAFETY: the range is a live mapping owned by `mem`; mlock only pins it.
        if unsafe { libc::mlock(region.as_ptr().cast(), region.len() as usize) } != 0 {
            return Err(MemoryError::Lock { size: region.len(), source: std::io::Error::last_os_error() });
        }
    }
    Ok(())
}
