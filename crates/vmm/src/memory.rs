//! Guest RAM: host mappings registered as KVM slots. By default anonymous
//! and lazily backed; with a memory backend, a memfd or a file, mapped
//! MAP_SHARED when another process (a vhost-user backend) must see it.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{MemoryBackend, MemoryConfig};
use arch::memmap::guest_ram_ranges;
use devices::guest_memory;
use devices::guest_memory::{GuestMemoryMmap, GuestRegionMmap};
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES};
use kvm_ioctls::VmFd;
use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{FileOffset, GuestMemoryBackend, GuestMemoryRegion};

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot map {size} bytes of guest memory: {source}")]
    Map { size: u64, source: vm_memory::mmap::FromRangesError },
    #[error("cannot map {size} bytes of guest memory: {source}")]
    MapBackend { size: u64, source: vm_memory::mmap::MmapRegionError },
    #[error("cannot create the guest memory memfd{}: {source}", if *.hugetlb { " (hugetlb: are huge pages configured?)" } else { "" })]
    Memfd { hugetlb: bool, source: std::io::Error },
    #[error("memory backend mem-path {}: {source}", .path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error(
        "not enough free huge pages for {size} bytes of guest RAM: {need} pages of {page_kib} kB needed, {free} free \
         (reserve more: echo N > /sys/kernel/mm/hugepages/hugepages-{page_kib}kB/nr_hugepages)"
    )]
    HugePages { size: u64, page_kib: u64, need: u64, free: u64 },
    #[error("guest RAM of {size} bytes is not a whole number of {page_kib} kB huge pages (as in QEMU, -m must be a multiple of the page size)")]
    HugePageAlignment { size: u64, page_kib: u64 },
    #[error("cannot size guest memory to {size} bytes: {source}")]
    Resize { size: u64, source: std::io::Error },
    #[error("cannot preallocate {size} bytes of guest memory: {source}")]
    Prealloc { size: u64, source: std::io::Error },
    #[error("cannot lock {size} bytes of guest memory (-overcommit mem-lock=on): {source}; raise the locked-memory limit (ulimit -l)")]
    Lock { size: u64, source: std::io::Error },
    #[error("KVM refused guest memory slot {slot}: {source}")]
    Slot { slot: u32, source: kvm_ioctls::Error },
}

/// Maps guest RAM as `config` says. The default maps it as vm-memory does,
/// MAP_NORESERVE | MAP_PRIVATE anonymous memory: host memory is only used
/// for pages the guest touches, so a large `-m` is free. `track`: each region gets a
/// dirty bitmap for the VMM's own writes (dirty-page tracking, docs/snapshot.md).
pub fn create_guest_memory(mem_size: u64, config: &MemoryConfig, track: bool) -> Result<GuestMemoryMmap, MemoryError> {
    if *config == MemoryConfig::default() {
        return guest_memory::anonymous(&guest_ram_ranges(mem_size), track)
            .map_err(|source| MemoryError::Map { size: mem_size, source });
    }
    let file = match &config.backend {
        MemoryBackend::Anonymous => None,
        MemoryBackend::Memfd { hugetlb, hugepage_size } => Some(create_memfd(*hugetlb, *hugepage_size)?),
        MemoryBackend::File { path } => Some(open_mem_path(path)?),
    };
    // Huge pages are mapped without MAP_NORESERVE, as QEMU maps them: the kernel then
    // reserves every page at mmap, so a host short of them fails here, with a line that
    // says so, instead of the guest or the kernel loader faulting on a page that is not
    // there (SIGBUS, or a loader "unable to read" the kernel).
    let huge_page = file.as_ref().and_then(huge_page_size);
    if let Some(page) = huge_page.filter(|&page| mem_size % page != 0) {
        return Err(MemoryError::HugePageAlignment { size: mem_size, page_kib: page / 1024 });
    }
    if let Some(file) = &file {
        size_file(file, mem_size, config.prealloc)?;
    }
    let noreserve = if huge_page.is_some() { 0 } else { libc::MAP_NORESERVE };
    let sharing = if config.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
    let populate = if config.prealloc { libc::MAP_POPULATE } else { 0 };
    let mut regions = Vec::new();
    let mut offset = 0u64;
    for (addr, size) in guest_ram_ranges(mem_size) {
        let builder = MmapRegionBuilder::new_with_bitmap(size, guest_memory::bitmap_for(size, track))
            .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE);
        let builder = match &file {
            Some(file) => {
                let fd = file.try_clone().map_err(|source| MemoryError::Resize { size: mem_size, source })?;
                builder.with_file_offset(FileOffset::new(fd, offset)).with_mmap_flags(noreserve | sharing | populate)
            }
            None => builder.with_mmap_flags(libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | sharing | populate),
        };
        let mapping = builder.build().map_err(|source| match (huge_page, &source) {
            (Some(page), vm_memory::mmap::MmapRegionError::Mmap(e)) if e.raw_os_error() == Some(libc::ENOMEM) => {
                huge_pages_error(mem_size, page)
            }
            _ => MemoryError::MapBackend { size: mem_size, source },
        })?;
        let region = GuestRegionMmap::new(mapping, addr)
            .ok_or(MemoryError::Map { size: mem_size, source: vm_memory::mmap::FromRangesError::InvalidGuestRegion })?;
        regions.push(region);
        offset += size as u64;
    }
    GuestMemoryMmap::from_regions(regions).map_err(|source| MemoryError::Map {
        size: mem_size,
        source: vm_memory::mmap::FromRangesError::Collection(source),
    })
}

fn create_memfd(hugetlb: bool, hugepage_size: Option<u64>) -> Result<File, MemoryError> {
    let mut flags = libc::MFD_CLOEXEC;
    if hugetlb {
        flags |= libc::MFD_HUGETLB;
        if let Some(size) = hugepage_size {
            // MFD_HUGE_* encode log2(page size) at MFD_HUGE_SHIFT.
            flags |= size.trailing_zeros() << libc::MFD_HUGE_SHIFT;
        }
    }
    // SAFETY: the name is a NUL-terminated literal; the result is checked.
    let fd = unsafe { libc::memfd_create(c"microvm-ram".as_ptr(), flags) };
    if fd < 0 {
        return Err(MemoryError::Memfd { hugetlb, source: std::io::Error::last_os_error() });
    }
    // SAFETY: memfd_create returned a new descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `HUGETLBFS_MAGIC` of statfs(2): memfds made with MFD_HUGETLB live on it too.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// The huge page size of a file on hugetlbfs (a hugetlb memfd, a file under a hugetlbfs
/// mount): its file system's block size.
fn huge_page_size(file: &File) -> Option<u64> {
    // SAFETY: statfs is plain data, all-zero is valid; the pointer is to a local.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a descriptor we own and a pointer to a local statfs.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 || fs.f_type as i64 != HUGETLBFS_MAGIC {
        return None;
    }
    Some(fs.f_bsize as u64)
}

/// The pages of `page` bytes nobody holds or has reserved, from sysfs (the kernel's
/// own count: free minus reserved).
fn free_huge_pages(page: u64) -> u64 {
    let read = |name: &str| -> u64 {
        let path = format!("/sys/kernel/mm/hugepages/hugepages-{}kB/{name}", page / 1024);
        std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    };
    read("free_hugepages").saturating_sub(read("resv_hugepages"))
}

/// What the mmap's ENOMEM means for a hugetlb mapping: the reservation failed.
fn huge_pages_error(size: u64, page: u64) -> MemoryError {
    MemoryError::HugePages { size, page_kib: page / 1024, need: size.div_ceil(page), free: free_huge_pages(page) }
}

/// A directory (QEMU's -mem-path /dev/hugepages, /dev/shm) gets an unnamed
/// file that disappears with the process; a file is used as it is.
fn open_mem_path(path: &Path) -> Result<File, MemoryError> {
    let err = |source| MemoryError::File { path: path.to_owned(), source };
    if path.is_dir() {
        OpenOptions::new().read(true).write(true).custom_flags(libc::O_TMPFILE).mode(0o600).open(path).map_err(err)
    } else {
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path).map_err(err)
    }
}

/// Grows the file to the guest's RAM (never shrinks a larger one, as QEMU);
/// with `prealloc`, allocates every block now so that a full tmpfs or a
/// lack of huge pages is an error here rather than a SIGBUS later.
fn size_file(file: &File, size: u64, prealloc: bool) -> Result<(), MemoryError> {
    let current = file.metadata().map_err(|source| MemoryError::Resize { size, source })?.len();
    if current < size {
        file.set_len(size).map_err(|source| MemoryError::Resize { size, source })?;
    }
    if prealloc {
        // SAFETY: fallocate on a descriptor we own; the result is checked.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size as libc::off_t) };
        if rc != 0 {
            return Err(MemoryError::Prealloc { size, source: std::io::Error::last_os_error() });
        }
    }
    Ok(())
}

/// Registers each region of `mem` as KVM slot 0, 1, ... (in guest-address order, the
/// order `dirty::DirtyLog` reads them back in). A region with a dirty bitmap (tracking
/// on) is registered with KVM_MEM_LOG_DIRTY_PAGES, so KVM logs the guest's writes too.
pub fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), MemoryError> {
    for (slot, region) in mem.iter().enumerate() {
        let slot = slot as u32;
        let host = region.as_ptr() as u64;
        let flags = if region.bitmap().is_some() { KVM_MEM_LOG_DIRTY_PAGES } else { 0 };
        let region = kvm_userspace_memory_region {
            slot,
            flags,
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

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestAddress};

    const MIB: u64 = 1 << 20;

    fn shared_memfd() -> MemoryConfig {
        MemoryConfig {
            backend: MemoryBackend::Memfd { hugetlb: false, hugepage_size: None },
            shared: true,
            prealloc: false,
        }
    }

    /// What the guest writes, another mapping of the same memfd sees: what a
    /// vhost-user backend relies on.
    #[test]
    fn shared_memfd_is_visible_through_its_fd() {
        let mem = create_guest_memory(16 * MIB, &shared_memfd(), false).unwrap();
        mem.write_obj(0x1234_5678u32, GuestAddress(8 * MIB)).unwrap();
        let region = mem.iter().next().unwrap();
        let fd = region.file_offset().expect("a memfd region has its fd").file();
        let mut word = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(fd, &mut word, 8 * MIB).unwrap();
        assert_eq!(u32::from_le_bytes(word), 0x1234_5678);
        assert_eq!(fd.metadata().unwrap().len(), 16 * MIB);
    }

    #[test]
    fn private_file_mapping_does_not_write_the_file() {
        let dir = std::env::temp_dir();
        let config = MemoryConfig { backend: MemoryBackend::File { path: dir }, shared: false, prealloc: true };
        let mem = create_guest_memory(4 * MIB, &config, false).unwrap();
        mem.write_obj(0xffu8, GuestAddress(MIB)).unwrap();
        let region = mem.iter().next().unwrap();
        let mut byte = [1u8];
        std::os::unix::fs::FileExt::read_exact_at(region.file_offset().unwrap().file(), &mut byte, MIB).unwrap();
        assert_eq!(byte, [0], "share=off: copy-on-write, the file keeps its zeroes");
    }

    #[test]
    fn named_file_is_grown_to_the_guest_size() {
        let path = std::env::temp_dir().join(format!("microvm-mem-{}", std::process::id()));
        let config =
            MemoryConfig { backend: MemoryBackend::File { path: path.clone() }, shared: true, prealloc: false };
        let mem = create_guest_memory(8 * MIB, &config, false).unwrap();
        mem.write_obj(7u8, GuestAddress(0)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8 * MIB);
        assert_eq!(std::fs::read(&path).unwrap()[0], 7);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn missing_mem_path_directory_names_the_path() {
        let path = PathBuf::from("/nonexistent-microvm/dir/file");
        let config = MemoryConfig { backend: MemoryBackend::File { path }, shared: true, prealloc: false };
        let err = create_guest_memory(4 * MIB, &config, false).unwrap_err().to_string();
        assert!(err.contains("/nonexistent-microvm/dir/file"), "{err}");
    }
}
