//! The process's global allocator: a bump arena in `.bss` first, the C library's malloc
//! once it is full.
//!
//! Why: musl's allocator (mallocng, the static binary's) maps a new group for the first
//! allocation of each size class and unmaps it as soon as its last slot is freed, and sets
//! up its metadata with brk and mmap on the first call. A start of the tiny guest made
//! about twenty such calls for a few dozen kilobytes of short-lived buffers (the command
//! line, kvm-ioctls' CPUID and MSR buffers, linux-loader's ELF reads): each mmap/munmap
//! pair with its page fault costs ~7 µs of process CPU on the project's machine
//! (docs/start-path.md). Served from a static array, the same allocations cost no system
//! call, only the first touch of each page.
//!
//! The arena is a bump pointer: freeing the most recent allocation gives its room back
//! (temporaries are usually freed in that order), any other free leaves its room unused.
//! So the arena only ever hands out [`ARENA_SIZE`] bytes in all; after that, and for any
//! allocation larger than [`ARENA_MAX_ALLOCATION`], every call goes to the C library's
//! malloc as before. A long-running VM therefore keeps at most [`ARENA_SIZE`] bytes it
//! no longer uses, and its data paths (which do not allocate per request) are unchanged.
//! No system call is added, so no thread's seccomp filter changes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes the arena hands out in all: what a start of the tiny guest allocates (~20 KiB),
/// with room for a command line with devices. Pages never touched cost no memory.
pub const ARENA_SIZE: usize = 64 * 1024;
/// Larger requests go straight to malloc: one of them would use up the arena.
pub const ARENA_MAX_ALLOCATION: usize = 16 * 1024;
/// The largest alignment the arena serves (a page): a request needing more goes to malloc.
const ARENA_ALIGN: usize = 4096;

/// A bump arena of `N` bytes in front of [`System`].
///
/// Not page-aligned, and its offset after the bytes: in `.bss` the statics that follow
/// the arena (the logger's, the metrics', the C library's) then start on its last page,
/// with `next` among them. Page-aligned, with `next` in a padded page of its own, the
/// arena pushed them onto one page more; a clone of the clone server writes those
/// statics and `next` after its fork, and each such page is one it owns (copied on
/// write): 104 KiB of `Private_Dirty` per idle clone instead of 88 before the arena, 96
/// laid out as now (docs/snapshot.md, "Clones"), and 4 page faults more at every start.
#[repr(C)]
pub struct StartArena<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

// SAFETY: the bytes are only reached through ranges handed out once each, reserved by the
// atomic compare-and-swap on `next`; two threads never receive overlapping live ranges.
unsafe impl<const N: usize> Sync for StartArena<N> {}

impl<const N: usize> StartArena<N> {
    pub const fn new() -> Self {
        StartArena { bytes: UnsafeCell::new([0; N]), next: AtomicUsize::new(0) }
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    /// The offset of `ptr` in the arena, if it points into it.
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        let offset = (ptr as usize).wrapping_sub(self.base());
        (offset < N).then_some(offset)
    }

    /// Reserves `layout` at the end of the used part, if it fits.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if layout.size() > ARENA_MAX_ALLOCATION || layout.align() > ARENA_ALIGN {
            return None;
        }
        let base = self.base();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            // Aligned as an address: the arena itself is only 8-byte aligned.
            let at = (base + next).checked_add(layout.align() - 1)? & !(layout.align() - 1);
            let start = at - base;
            let end = start.checked_add(layout.size()).filter(|&end| end <= N)?;
            match self.next.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
                // SAFETY: start + size <= N, so the pointer stays inside the array.
                Ok(_) => return Some(unsafe { self.bytes.get().cast::<u8>().add(start) }),
                Err(now) => next = now,
            }
        }
    }

    /// Moves the end of the used part from `from` to `to` if the block ending at `from`
    /// is still the last one (no other allocation came after it).
    fn move_end(&self, from: usize, to: usize) -> bool {
        to <= N && self.next.compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Bytes handed out so far (the high-water mark less what was given back).
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

impl<const N: usize> Default for StartArena<N> {
    fn default() -> Self {
        Self::new()
    }
}

// Not inlined (`#[inline(never)]`): with LTO the bump and its compare-and-swap loop would
// otherwise be copied into every allocation site (+390 KB of text, measured).
// SAFETY: every block handed out is either a fresh range of the arena reserved by `bump`
// (aligned as asked, inside the array, given to nobody else until freed) or malloc's;
// `dealloc` and `realloc` tell the two apart by address and send malloc's back to it.
unsafe impl<const N: usize> GlobalAlloc for StartArena<N> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout has a non-zero size, as `System` requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            // Room given back may hold old bytes.
            Some(ptr) => {
                // SAFETY: `bump` reserved `layout.size()` bytes at `ptr` for this caller.
                unsafe { ptr.write_bytes(0, layout.size()) };
                ptr
            }
            // SAFETY: as in `alloc`.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset_of(ptr) {
            // Only the last block gives its room back; a failed swap just leaves it.
            Some(offset) => {
                self.move_end(offset + layout.size(), offset);
            }
            // SAFETY: not in the arena, so `System` handed it out with this layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(offset) = self.offset_of(ptr) else {
            // SAFETY: malloc's block, as the caller's contract describes it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The last block grows or shrinks in place (a Vec pushed to during start-up).
        if new_size <= ARENA_MAX_ALLOCATION && self.move_end(offset + layout.size(), offset + new_size) {
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size`, rounded to the alignment, is a valid
        // layout size; the alignment is the block's own.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (it is larger than the old one).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least `layout.size()` long and do not overlap
            // (the new one was reserved while the old one was still live).
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
            // SAFETY: the old block, with its own layout, no longer used.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn in_arena<const N: usize>(a: &StartArena<N>, p: *mut u8) -> bool {
        a.offset_of(p).is_some()
    }

    #[test]
    fn small_blocks_come_from_the_arena_aligned_and_in_order() {
        let a: Box<StartArena<8192>> = Box::default();
        // SAFETY: non-zero sizes; the blocks are freed below with the same layouts.
        unsafe {
            let p = a.alloc(layout(3, 1));
            let q = a.alloc(layout(16, 16));
            assert!(in_arena(&a, p) && in_arena(&a, q));
            assert_eq!(q as usize % 16, 0);
            assert_eq!(a.used(), (q as usize - p as usize) + 16);
            // The last one gives its room back (not its alignment padding); the first,
            // no longer last, does not.
            a.dealloc(q, layout(16, 16));
            assert_eq!(a.used(), q as usize - p as usize);
            let r = a.alloc(layout(8, 8));
            assert_eq!(r, q, "the room given back is used again");
            a.dealloc(p, layout(3, 1));
            assert_eq!(a.used(), (q as usize - p as usize) + 8, "a block freed out of order keeps its room");
            a.dealloc(r, layout(8, 8));
            assert_eq!(a.used(), q as usize - p as usize);
        }
    }

    #[test]
    fn the_arena_pads_nothing_that_would_push_the_next_statics_onto_another_page() {
        type Global = StartArena<ARENA_SIZE>;
        assert_eq!(std::mem::align_of::<Global>(), std::mem::align_of::<AtomicUsize>());
        assert_eq!(std::mem::size_of::<Global>(), ARENA_SIZE + std::mem::size_of::<AtomicUsize>());
        assert_eq!(std::mem::offset_of!(Global, next), ARENA_SIZE, "the offset follows the bytes");
    }

    #[test]
    fn alignment_is_of_the_address_whatever_the_arena_starts_on() {
        let a: Box<StartArena<16384>> = Box::default();
        // A Box (and .bss) aligns the arena to 8 bytes only.
        // SAFETY: non-zero sizes, freed with their layouts.
        unsafe {
            let p = a.alloc(layout(1, 1));
            let page = a.alloc(layout(64, 4096));
            let wide = a.alloc(layout(32, 32));
            assert!(in_arena(&a, p) && in_arena(&a, page) && in_arena(&a, wide));
            assert_eq!((page as usize % 4096, wide as usize % 32), (0, 0));
            a.dealloc(wide, layout(32, 32));
            a.dealloc(page, layout(64, 4096));
            a.dealloc(p, layout(1, 1));
        }
    }

    #[test]
    fn large_or_overaligned_blocks_and_a_full_arena_go_to_malloc() {
        let a: Box<StartArena<8192>> = Box::default();
        // SAFETY: non-zero sizes, each block freed with its own layout.
        unsafe {
            let big = a.alloc(layout(ARENA_MAX_ALLOCATION + 1, 8));
            let aligned = a.alloc(layout(64, 8192));
            assert!(!in_arena(&a, big) && !in_arena(&a, aligned));
            assert_eq!(a.used(), 0);
            let most = a.alloc(layout(8000, 8));
            let over = a.alloc(layout(256, 8));
            assert!(in_arena(&a, most) && !in_arena(&a, over), "no room: malloc's");
            over.write_bytes(0xa5, 256);
            for (p, l) in [(big, layout(ARENA_MAX_ALLOCATION + 1, 8)), (aligned, layout(64, 8192))] {
                a.dealloc(p, l);
            }
            a.dealloc(over, layout(256, 8));
            a.dealloc(most, layout(8000, 8));
            assert_eq!(a.used(), 0);
        }
    }

    #[test]
    fn the_last_block_grows_in_place_others_move_with_their_bytes() {
        let a: Box<StartArena<8192>> = Box::default();
        // SAFETY: non-zero sizes; every pointer is used with the layout it has.
        unsafe {
            let p = a.alloc(layout(4, 4));
            p.copy_from_nonoverlapping([1u8, 2, 3, 4].as_ptr(), 4);
            let grown = a.realloc(p, layout(4, 4), 100);
            assert_eq!(grown, p, "the last block grows where it is");
            assert_eq!(a.used(), 100);
            let other = a.alloc(layout(8, 8));
            let moved = a.realloc(grown, layout(100, 4), 200);
            assert_ne!(moved, grown);
            assert!(in_arena(&a, moved));
            assert_eq!(std::slice::from_raw_parts(moved, 4), [1, 2, 3, 4]);
            // Past the largest arena block: malloc's, bytes kept.
            let out = a.realloc(moved, layout(200, 4), ARENA_MAX_ALLOCATION + 8);
            assert!(!in_arena(&a, out));
            assert_eq!(std::slice::from_raw_parts(out, 4), [1, 2, 3, 4]);
            a.dealloc(out, layout(ARENA_MAX_ALLOCATION + 8, 4));
            a.dealloc(other, layout(8, 8));
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_where_room_was_given_back() {
        let a: Box<StartArena<8192>> = Box::default();
        // SAFETY: non-zero sizes, freed with their layouts.
        unsafe {
            let p = a.alloc(layout(64, 8));
            p.write_bytes(0xff, 64);
            a.dealloc(p, layout(64, 8));
            let z = a.alloc_zeroed(layout(64, 8));
            assert_eq!(z, p);
            assert!(std::slice::from_raw_parts(z, 64).iter().all(|&b| b == 0));
            a.dealloc(z, layout(64, 8));
        }
    }

    #[test]
    fn threads_never_get_overlapping_blocks() {
        static ARENA: StartArena<ARENA_SIZE> = StartArena::new();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut blocks = Vec::new();
                    for _ in 0..200 {
                        // SAFETY: a non-zero size; filled and checked only by this thread.
                        let p = unsafe { ARENA.alloc(layout(24, 8)) };
                        // SAFETY: the block is 24 bytes, this thread's alone.
                        unsafe { p.write_bytes(t, 24) };
                        blocks.push(p as usize);
                    }
                    blocks
                })
            })
            .collect();
        let all: Vec<Vec<usize>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (t, blocks) in all.iter().enumerate() {
            for &p in blocks {
                // SAFETY: each block is 24 live bytes, written above by thread `t`.
                let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, 24) };
                assert!(bytes.iter().all(|&b| b == t as u8), "block {p:#x} shared");
            }
        }
    }
}
