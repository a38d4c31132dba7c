//! Firecracker's `signals` metrics for the signals that end the process: SIGBUS, SIGSEGV,
//! SIGILL, SIGXFSZ and SIGXCPU. With a metrics destination set, a handler records the
//! signal (`metrics::SIGNALS`, a gauge at 1) and writes one last line,
//! `{"utc_timestamp_ms": T, "signals": {"sigsegv": 1}}`, as Firecracker's handlers do, then
//! lets the process die of it: the handler is installed with SA_RESETHAND, so a fault
//! (SIGBUS, SIGSEGV, SIGILL), re-executed on return, meets the default action and dies by
//! its signal (with its core, if any); the resource limits (SIGXFSZ, SIGXCPU), whose
//! return would let the process run on, end it with `_exit(128 + signal)`, as Firecracker
//! exits on them. Only `write`, `clock_gettime`, `rt_sigreturn` and `exit_group` are
//! called, all on every thread's allowlist.
//!
//! Installed only once metrics have a destination (Firecracker's front end): the handler
//! replaces the Rust runtime's SIGSEGV/SIGBUS one, whose "has overflowed its stack" line
//! the QEMU front end keeps.

use crate::sigsys::{now_ms, Line};

/// The signals handled, with their field in the `signals` section.
const FATAL: [(libc::c_int, &str); 5] = [
    (libc::SIGBUS, "sigbus"),
    (libc::SIGSEGV, "sigsegv"),
    (libc::SIGILL, "sigill"),
    (libc::SIGXFSZ, "sigxfsz"),
    (libc::SIGXCPU, "sigxcpu"),
];

/// The dying line for `field`.
fn metrics_line(now_ms: u64, field: &str) -> Line {
    let mut line = Line::new();
    line.push(b"{\"utc_timestamp_ms\":");
    line.push_number(now_ms);
    line.push(b",\"signals\":{\"");
    line.push(field.as_bytes());
    line.push(b"\":1}}\n");
    line
}

fn gauge(sig: libc::c_int) -> Option<&'static metrics::Gauge> {
    let s = &metrics::SIGNALS;
    match sig {
        libc::SIGBUS => Some(&s.sigbus),
        libc::SIGSEGV => Some(&s.sigsegv),
        libc::SIGILL => Some(&s.sigill),
        libc::SIGXFSZ => Some(&s.sigxfsz),
        libc::SIGXCPU => Some(&s.sigxcpu),
        _ => None,
    }
}

extern "C" fn on_fatal(sig: libc::c_int) {
    if let Some(gauge) = gauge(sig) {
        gauge.set(1);
    }
    let field = FATAL.iter().find(|(s, _)| *s == sig).map_or("unknown", |(_, f)| f);
    if let Some(fd) = metrics::last_line_fd() {
        let line = metrics_line(now_ms(), field);
        // SAFETY: writes `len` initialised bytes of our buffer to the metrics descriptor.
        let _ = unsafe { libc::write(fd, line.buf.as_ptr().cast(), line.len) };
    }
    if sig == libc::SIGXFSZ || sig == libc::SIGXCPU {
        // SAFETY: _exit has no preconditions.
        unsafe { libc::_exit(128 + sig) };
    }
    // A fault: returning re-executes the faulting instruction under the default action.
}

/// Installs the handler for the five signals, once per process (again is harmless).
pub fn install_handlers() -> std::io::Result<()> {
    for (sig, _) in FATAL {
        // SAFETY: a zeroed sigaction is valid; we fill the handler, the flags (reset to the
        // default on entry; Rust's per-thread alternate stacks, where a stack overflow's
        // fault must run) and an empty mask.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal as *const () as usize;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn the_dying_line_names_the_signal() {
        let line = metrics_line(1_700_000_000_123, "sigbus");
        assert_eq!(
            std::str::from_utf8(&line.buf[..line.len]).unwrap(),
            "{\"utc_timestamp_ms\":1700000000123,\"signals\":{\"sigbus\":1}}\n"
        );
    }

    /// A process that faults writes the line, then dies by SIGSEGV; one over its file size
    /// limit writes it and exits with 128 + SIGXFSZ. The test runs itself again as each.
    #[test]
    fn a_fatal_signal_writes_the_metrics_line_then_ends_the_process() {
        const CHILD: &str = "MICROVM_TEST_FATAL_SIGNAL";
        if let Ok(which) = std::env::var(CHILD) {
            let (path, sig) = which.split_once(':').unwrap();
            let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            metrics::set_last_line_fd(Some(std::os::fd::AsRawFd::as_raw_fd(&file)));
            let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: setrlimit reads our struct; no core file for the expected death.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
            install_handlers().unwrap();
            if sig == "segv" {
                // SAFETY: deliberately not safe: a read of address 0 faults, which is the test.
                unsafe { std::ptr::read_volatile(std::ptr::null::<u8>()) };
            } else {
                // SAFETY: raise sends this thread a signal; the handler ends the process.
                unsafe { libc::raise(libc::SIGXFSZ) };
            }
            unreachable!("the process survived its signal");
        }
        for (sig, field) in [("segv", "sigsegv"), ("xfsz", "sigxfsz")] {
            let path = std::env::temp_dir().join(format!("microvm-fatal-{sig}-{}", std::process::id()));
            std::fs::write(&path, "").unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "fatal::tests::a_fatal_signal_writes_the_metrics_line_then_ends_the_process"])
                .env(CHILD, format!("{}:{sig}", path.display()))
                .output()
                .unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            match sig {
                "segv" => assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}"),
                _ => assert_eq!(out.status.code(), Some(128 + libc::SIGXFSZ), "{out:?}"),
            }
            assert!(text.ends_with(&format!(",\"signals\":{{\"{field}\":1}}}}\n")), "{text}");
        }
    }
}
