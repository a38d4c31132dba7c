//! Microseconds on a kernel clock, as Firecracker's jailer passes its start times
//! (`--start-time-us` on CLOCK_MONOTONIC, `--start-time-cpu-us` on the process CPU clock)
//! and as the Firecracker front end reads them back for its `api_server` metrics.

pub fn now_us(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the struct we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}
