//! Guest RAM's type, one for every crate that reads or writes it.
//!
//! Each region carries an optional dirty-page bitmap (vm-memory's `AtomicBitmap`): `Some`
//! only when dirty-page tracking is on (Firecracker's `track_dirty_pages`), so that the
//! pages the VMM itself writes (virtio used rings and the buffers devices fill), which
//! KVM's dirty log never sees, are counted by vm-memory as it writes them. With tracking
//! off the bitmap is `None` and each write costs one not-taken branch.
//!
//! A device that hands guest memory to the kernel as raw pointers (virtio-blk's
//! preadv) must mark what it lets the kernel write itself: [`mark_written`].

use vm_memory::bitmap::{AtomicBitmap, Bitmap};
use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryRegion, VolatileSlice};

/// The dirty bitmap of one region, when tracking is on.
pub type DirtyBitmap = Option<AtomicBitmap>;
/// Guest RAM as every crate sees it.
pub type GuestMemoryMmap = vm_memory::GuestMemoryMmap<DirtyBitmap>;
pub type GuestRegionMmap = vm_memory::GuestRegionMmap<DirtyBitmap>;

/// The unit of dirty tracking: KVM's dirty log and the bitmaps count 4 KiB pages.
pub const PAGE_SIZE: usize = 4096;

/// A new, empty bitmap for a region of `len` bytes, or `None` when tracking is off.
pub fn bitmap_for(len: usize, track: bool) -> DirtyBitmap {
    track.then(|| AtomicBitmap::new(len, std::num::NonZeroUsize::new(PAGE_SIZE).expect("non-zero page size")))
}

/// Anonymous private RAM at `ranges`, lazily backed (vm-memory's `from_ranges` for our
/// bitmap type, which it cannot build itself); `track`: with a dirty bitmap per region.
pub fn anonymous(
    ranges: &[(GuestAddress, usize)],
    track: bool,
) -> Result<GuestMemoryMmap, vm_memory::mmap::FromRangesError> {
    use vm_memory::mmap::FromRangesError;
    let mut regions = Vec::with_capacity(ranges.len());
    for &(addr, size) in ranges {
        let mapping = MmapRegionBuilder::new_with_bitmap(size, bitmap_for(size, track))
            .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
            .with_mmap_flags(libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_PRIVATE)
            .build()
            .map_err(FromRangesError::MmapRegion)?;
        regions.push(GuestRegionMmap::new(mapping, addr).ok_or(FromRangesError::InvalidGuestRegion)?);
    }
    GuestMemoryMmap::from_regions(regions).map_err(FromRangesError::Collection)
}

/// Untracked anonymous RAM, for tests and tools.
pub fn untracked(ranges: &[(GuestAddress, usize)]) -> GuestMemoryMmap {
    anonymous(ranges, false).expect("mapping test guest memory")
}

/// Records that `slice` (guest memory about to be written by the kernel through a raw
/// pointer, which vm-memory cannot see) is dirty. Free when tracking is off.
pub fn mark_written(slice: &VolatileSlice<'_, vm_memory::bitmap::BS<'_, DirtyBitmap>>) {
    slice.bitmap().mark_dirty(0, slice.len());
}

/// Whether any region of `mem` tracks dirty pages.
pub fn is_tracked(mem: &GuestMemoryMmap) -> bool {
    mem.iter().any(|r| r.bitmap().is_some())
}
