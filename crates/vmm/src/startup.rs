//! Start-up timing: how long from process start to the first KVM_RUN, and with
//! `--report-start-time` the process CPU at each step of the start and exit paths, so a
//! change to either can be measured step by step (docs/start-path.md).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Whether [`step`] records (`--report-start-time`); off, a step costs one atomic load.
static STEPS_ON: AtomicBool = AtomicBool::new(false);
/// (step, process CPU since exec when it ended), in the order they ended.
static STEPS: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());
/// Process CPU (ns) the first KVM_RUN's CPU figure counts from: 0 (exec), or a clone's
/// request (`count_cpu_from_now`), so a clone's figure leaves out what it did before.
static CPU_ORIGIN_NS: AtomicU64 = AtomicU64::new(0);

/// From now on the first KVM_RUN's CPU figure counts from here (a clone's request).
pub fn count_cpu_from_now() {
    CPU_ORIGIN_NS.store(process_cpu_time().as_nanos() as u64, Ordering::Relaxed);
}

/// Starts recording steps.
pub fn record_steps() {
    STEPS_ON.store(true, Ordering::Relaxed);
}

/// Notes that `name` has just ended (process CPU since exec), if steps are recorded.
pub fn step(name: &'static str) {
    if STEPS_ON.load(Ordering::Relaxed) {
        let cpu = process_cpu_time();
        STEPS.lock().unwrap_or_else(|p| p.into_inner()).push((name, cpu));
    }
}

/// The recorded steps as one line: each step's own CPU, µs (the first since exec).
pub fn steps_line() -> Option<String> {
    if !STEPS_ON.load(Ordering::Relaxed) {
        return None;
    }
    let steps = STEPS.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = Duration::ZERO;
    let parts: Vec<String> = steps
        .iter()
        .map(|&(name, cpu)| {
            let own = cpu.saturating_sub(last);
            last = cpu;
            format!("{name} {}", own.as_micros())
        })
        .collect();
    Some(format!("microvm: start steps, us of process CPU each: {}; total {}", parts.join(", "), last.as_micros()))
}

/// Times taken when the boot vCPU first enters the guest.
#[derive(Clone, Copy, Debug)]
pub struct FirstRun {
    /// Wall time since `StartupClock::new` (called first thing in `main`).
    pub wall: Duration,
    /// CPU time of the whole process since exec (CLOCK_PROCESS_CPUTIME_ID), or since a
    /// clone's request; read only when it is reported (`--report-start-time`): the
    /// clock is a system call, which a start that does not report need not make.
    pub cpu: Option<Duration>,
}

/// A moment on CLOCK_MONOTONIC, read with the system call where std's `Instant` reads the
/// vDSO. The vDSO's first use looks its symbols up, which in a start of the tiny guest
/// costs four page faults (the vDSO's pages, the kernel's clock page, two 64 KiB windows of
/// microvm's read-only data for the names it compares) for a clock a start reads three
/// times (main, the first KVM_RUN, the guest's end), where the system call costs ~0.3 µs
/// (docs/start-path.md). Code that reads the clock often (the event loop, timers) uses
/// `Instant`.
#[derive(Clone, Copy, Debug)]
pub struct StartInstant(Duration);

impl StartInstant {
    pub fn now() -> Self {
        StartInstant(clock(libc::CLOCK_MONOTONIC))
    }

    pub fn elapsed(self) -> Duration {
        clock(libc::CLOCK_MONOTONIC).saturating_sub(self.0)
    }

    /// The same moment as an `Instant`, for code that counts from it with `Instant`s
    /// (`-trace-boot`'s guest checkpoints); both clocks are CLOCK_MONOTONIC.
    pub fn as_instant(self) -> Instant {
        let now = Instant::now();
        now.checked_sub(self.elapsed()).unwrap_or(now)
    }
}

pub struct StartupClock {
    start: StartInstant,
    report: bool,
    first_run: OnceLock<FirstRun>,
}

impl StartupClock {
    pub fn new(start: StartInstant, report: bool) -> Self {
        StartupClock { start, report, first_run: OnceLock::new() }
    }

    /// Called by the boot vCPU just before its first KVM_RUN.
    pub fn mark_first_run(&self) {
        let origin = Duration::from_nanos(CPU_ORIGIN_NS.load(Ordering::Relaxed));
        let cpu = self.report.then(|| process_cpu_time().saturating_sub(origin));
        let mark = FirstRun { wall: self.start.elapsed(), cpu };
        step("to first KVM_RUN");
        if let (Ok(()), Some(cpu)) = (self.first_run.set(mark), cpu) {
            log::info!(
                target: devices::NOTICE,
                "microvm: first KVM_RUN after {} us wall (since main), {} us CPU (since exec){}",
                mark.wall.as_micros(),
                cpu.as_micros(),
                if origin.is_zero() { "" } else { "; a clone: both since its request" }
            );
        }
    }

    /// Wall time since process start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn first_run(&self) -> Option<FirstRun> {
        self.first_run.get().copied()
    }
}

fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Clock `id` by the system call (not the vDSO: see [`StartInstant`]); zero if it fails.
fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into the timespec we pass.
    let rc = unsafe { libc::syscall(libc::SYS_clock_gettime, id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_mark_is_kept() {
        let clock = StartupClock::new(StartInstant::now(), true);
        assert!(clock.first_run().is_none());
        clock.mark_first_run();
        let first = clock.first_run().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        clock.mark_first_run();
        assert_eq!(clock.first_run().unwrap().wall, first.wall);
        assert!(first.cpu.is_some_and(|cpu| cpu > Duration::ZERO));
    }

    #[test]
    fn the_start_instant_keeps_time_with_instant() {
        let start = StartInstant::now();
        std::thread::sleep(Duration::from_millis(5));
        let same = start.as_instant();
        let (by_syscall, by_instant) = (start.elapsed(), same.elapsed());
        assert!(by_syscall >= Duration::from_millis(5), "{by_syscall:?}");
        assert!(by_instant.abs_diff(by_syscall) < Duration::from_millis(2), "{by_instant:?} {by_syscall:?}");
    }

    #[test]
    fn a_start_that_does_not_report_reads_no_process_clock() {
        let clock = StartupClock::new(StartInstant::now(), false);
        clock.mark_first_run();
        let first = clock.first_run().unwrap();
        assert!(first.cpu.is_none() && first.wall > Duration::ZERO);
    }

    #[test]
    fn steps_are_reported_in_order_once_recorded() {
        step("before recording");
        record_steps();
        step("one");
        step("two");
        let line = steps_line().unwrap();
        assert!(line.starts_with("microvm: start steps, us of process CPU each: "), "{line}");
        let (one, two) = (line.find("one ").unwrap(), line.find("two ").unwrap());
        assert!(one < two && !line.contains("before recording"), "{line}");
    }
}
