//! Giving back the binary's start-up code once the VM has run a while: the VMM's own
//! footprint (docs/start-path.md, "Footprint").
//!
//! Why: on each fault in a file mapping the kernel maps the cached pages around the
//! faulting one too (fault-around, a 64 KiB window), so the start path, which runs a little
//! code spread over much of the binary, leaves ~1.4 MiB of the static binary's 2.7 MiB of
//! text resident (and ~0.4 MiB of its read-only data) in a VM that then only sits in
//! KVM_RUN. MADV_DONTNEED on the read-only segments unmaps those pages (the page cache
//! keeps them; nothing is written back or lost: they are the file's own bytes); whatever
//! runs afterwards maps its own windows again with one fault each. MADV_RANDOM does not
//! help: Linux 6.x faults around regardless of it (measured).
//!
//! When: `after_start.rs` says (100 ms after the VM starts to run). A VM that ends sooner,
//! like the start bench's, never pays the re-faults of its exit path; one that lives longer
//! pays them once.

use crate::noted_ranges::NotedRanges;

/// Read-only PT_LOAD segments a static or dynamic executable has (headers, text, rodata).
const MAX_RANGES: usize = 4;
const PAGE: usize = 4096;

/// (start, length) of each of the executable's read-only segments, page-aligned, written
/// before the handler is installed and only read by it.
static RANGES: NotedRanges<MAX_RANGES> = NotedRanges::new();

/// The executable (the first object `dl_iterate_phdr` reports): its PT_LOAD segments
/// that are not writable, whole pages only (a page shared with a writable segment would
/// lose its relocated bytes).
pub(crate) fn note_read_only_segments() {
    unsafe extern "C" fn first_object(info: *mut libc::dl_phdr_info, _: libc::size_t, _: *mut libc::c_void) -> i32 {
        // SAFETY: the C library passes a valid info whose dlpi_phdr holds dlpi_phnum headers.
        let info = unsafe { &*info };
        // SAFETY: as above.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let segments = headers.iter().filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
        RANGES.set(segments.map(|h| {
            let begin = (info.dlpi_addr as usize).wrapping_add(h.p_vaddr as usize);
            let (start, end) = (begin & !(PAGE - 1), (begin + h.p_memsz as usize) & !(PAGE - 1));
            (start, end.saturating_sub(start))
        }));
        1 // the executable only
    }
    // SAFETY: the callback only reads what it is given and writes atomics.
    unsafe { libc::dl_iterate_phdr(Some(first_object), std::ptr::null_mut()) };
}

/// Unmaps the noted read-only segments (madvise is async-signal-safe, and allowed on
/// every thread by the sandbox's common list, so SIGALRM's handler may call this).
pub(crate) fn release() {
    RANGES.for_each(|start, len| {
        // SAFETY: the range is whole pages of the executable's own read-only file
        // mapping: dropping them only makes the next access fault the file's bytes in.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    });
}
