//! Start-up work that waits until the VM has run a while ([`AFTER`] after it starts to
//! run): what a VM that ends sooner (the start bench's, a failed boot, a function that
//! returns at once) would pay for and never use.
//! - The binary's start-up code pages go back (`resident_text.rs`: the VMM's footprint).
//! - `mem-merge=on` (QEMU's default) offers guest RAM to KSM (MADV_MERGEABLE). QEMU
//!   advises when it allocates RAM; here the advice, its registration with KSM and the
//!   matching work at exit cost ~20 µs of the tiny guest's ~2 ms start (docs/start-path.md),
//!   and KSM's scanner (by default 100 pages every 20 ms, `/sys/kernel/mm/ksm/`) would not
//!   have merged anything of a VM in its first 100 ms anyway.
//!
//! In solo mode (`solo.rs`) from a SIGALRM handler: the only thread is in KVM_RUN, and the
//! signal makes it return EINTR, which the run loop already takes as "go on". With threads,
//! the main loop does it itself ([`run_now`]) once its wait times out (`run.rs`): no
//! signal, which could interrupt another thread's blocking call.

use crate::noted_ranges::NotedRanges;
use devices::guest_memory::GuestMemoryMmap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

/// How long after the VM starts to run the deferred work is done.
pub const AFTER: Duration = Duration::from_millis(100);

/// Guest RAM regions there is room to note (microvm maps one, or two around the 32-bit
/// gap); a VM with more is advised at once instead.
const MAX_REGIONS: usize = 4;

/// (start, length) of each guest RAM region to offer KSM, written before the work is
/// armed and only read by it.
static MERGEABLE: NotedRanges<MAX_REGIONS> = NotedRanges::new();

/// The errno of a refused advice (0: none), for [`log_refusal`]: the advice may run in a
/// signal handler, which cannot log.
static REFUSED: AtomicI32 = AtomicI32::new(0);

/// Notes what to do: `mem`'s regions for KSM when `merge` (`-machine mem-merge=on`).
/// Called on the only thread before it arms the work, or before the main loop runs.
pub(crate) fn note(mem: &GuestMemoryMmap, merge: bool) {
    crate::resident_text::note_read_only_segments();
    let regions = || mem.iter().filter(|_| merge).map(|r| (r.as_ptr() as usize, r.len() as usize));
    if regions().count() > MAX_REGIONS {
        regions().for_each(|(start, len)| advise_mergeable(start, len));
        log_refusal();
        return;
    }
    MERGEABLE.set(regions());
}

/// Solo mode: installs the SIGALRM handler and arms a one-shot timer of [`AFTER`].
/// Called on the only thread, after [`note`] and before its filter.
pub(crate) fn arm() -> std::io::Result<()> {
    vmm_sys_util::signal::register_signal_handler(libc::SIGALRM, on_alarm)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
    let value = libc::timeval { tv_sec: 0, tv_usec: AFTER.as_micros() as libc::suseconds_t };
    let timer = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: value };
    // SAFETY: setitimer reads `timer` and writes nothing (null old value).
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Does the noted work now (the main loop of a VM with threads).
pub(crate) fn run_now() {
    run();
    log_refusal();
}

/// A refused advice (a host without KSM, guest RAM on hugetlbfs), at debug level: the
/// advice is a hint, so nothing else happens (QEMU ignores the result). Solo mode calls
/// it once the guest has ended.
pub(crate) fn log_refusal() {
    let errno = REFUSED.swap(0, Ordering::Relaxed);
    if errno != 0 {
        log::debug!("mem-merge: MADV_MERGEABLE refused: {}", std::io::Error::from_raw_os_error(errno));
    }
}

extern "C" fn on_alarm(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    preserving_errno(run);
}

/// Runs `f` and puts errno back: the code a signal interrupted may be between a failed
/// call and its reading of errno.
fn preserving_errno(f: impl FnOnce()) {
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno };
    f();
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// madvise only (async-signal-safe; the main and solo filters allow both advices).
fn run() {
    crate::resident_text::release();
    MERGEABLE.for_each(advise_mergeable);
}

/// Advice only, as in QEMU: a host without KSM, or a shared mapping (which KSM skips),
/// changes nothing, so a failure is not an error; its errno is kept for [`log_refusal`].
fn advise_mergeable(start: usize, len: usize) {
    if let Err(errno) = madvise_mergeable(start, len) {
        REFUSED.store(errno, Ordering::Relaxed);
    }
}

/// The advice; `Err(errno)` if refused.
fn madvise_mergeable(start: usize, len: usize) -> Result<(), i32> {
    // SAFETY: the range is a guest RAM region the VM maps for as long as it runs (a
    // restore's memory file is mapped over the same range); the advice does not change
    // its contents.
    if unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_MERGEABLE) } == 0 {
        return Ok(());
    }
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
    Err(unsafe { *libc::__errno_location() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_advice_gives_its_errno() {
        // Not page-aligned: EINVAL whether or not the host has KSM.
        assert_eq!(madvise_mergeable(1, 4096), Err(libc::EINVAL));
    }

    #[test]
    fn the_alarms_work_leaves_errno_as_it_was() {
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = libc::EAGAIN };
        // SAFETY: closing no descriptor; it fails with EBADF.
        preserving_errno(|| assert_eq!(unsafe { libc::close(-1) }, -1));
        // SAFETY: as above.
        assert_eq!(unsafe { *libc::__errno_location() }, libc::EAGAIN);
    }
}
