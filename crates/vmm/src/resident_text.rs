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
//! When: [`RELEASE_AFTER`] after the VM starts to run. In solo mode (`solo.rs`) from a
//! SIGALRM handler: the only thread is in KVM_RUN, and the signal makes it return EINTR,
//! which the run loop already takes as "go on". With threads, the main loop does it
//! itself ([`release_now`]) once its wait times out (`run.rs`): no signal, which could
//! interrupt another thread's blocking call. A VM that ends sooner, like the start
//! bench's, never pays the re-faults of its exit path; one that lives longer pays them
//! once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long after the first KVM_RUN the start-up code is given back.
pub const RELEASE_AFTER: Duration = Duration::from_millis(100);

/// Read-only PT_LOAD segments a static or dynamic executable has (headers, text, rodata).
const MAX_RANGES: usize = 4;
const PAGE: usize = 4096;

/// (start, length) of each of the executable's read-only segments, page-aligned, written
/// before the handler is installed and only read by it.
static RANGES: [(AtomicUsize, AtomicUsize); MAX_RANGES] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_RANGES];

/// Notes the executable's read-only segments, installs the SIGALRM handler and arms a
/// one-shot timer of [`RELEASE_AFTER`]. Called on the only thread, before its filter.
pub(crate) fn release_later() -> std::io::Result<()> {
    note_read_only_segments();
    vmm_sys_util::signal::register_signal_handler(libc::SIGALRM, on_alarm)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
    let value = libc::timeval { tv_sec: 0, tv_usec: RELEASE_AFTER.as_micros() as libc::suseconds_t };
    let timer = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: value };
    // SAFETY: setitimer reads `timer` and writes nothing (null old value).
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The executable (the first object `dl_iterate_phdr` reports): its PT_LOAD segments
/// that are not writable, whole pages only (a page shared with a writable segment would
/// lose its relocated bytes).
fn note_read_only_segments() {
    unsafe extern "C" fn first_object(info: *mut libc::dl_phdr_info, _: libc::size_t, _: *mut libc::c_void) -> i32 {
        // SAFETY: the C library passes a valid info whose dlpi_phdr holds dlpi_phnum headers.
        let info = unsafe { &*info };
        // SAFETY: as above.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let segments = headers.iter().filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0);
        for (slot, h) in RANGES.iter().zip(segments) {
            let begin = (info.dlpi_addr as usize).wrapping_add(h.p_vaddr as usize);
            let (start, end) = (begin & !(PAGE - 1), (begin + h.p_memsz as usize) & !(PAGE - 1));
            slot.0.store(start, Ordering::Relaxed);
            slot.1.store(end.saturating_sub(start), Ordering::Relaxed);
        }
        1 // the executable only
    }
    // SAFETY: the callback only reads what it is given and writes atomics.
    unsafe { libc::dl_iterate_phdr(Some(first_object), std::ptr::null_mut()) };
}

/// Unmaps the executable's read-only segments now (the main loop of a VM with threads).
pub(crate) fn release_now() {
    note_read_only_segments();
    release();
}

extern "C" fn on_alarm(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    release();
}

/// Unmaps the noted read-only segments (madvise is async-signal-safe, and allowed on
/// every thread by the sandbox's common list, so SIGALRM's handler may call this).
fn release() {
    for (start, len) in &RANGES {
        let (start, len) = (start.load(Ordering::Relaxed), len.load(Ordering::Relaxed));
        if len > 0 {
            // SAFETY: the range is whole pages of the executable's own read-only file
            // mapping: dropping them only makes the next access fault the file's bytes in.
            unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        }
    }
}
