//! The process entry point: the C library calls `main` (the crate is `#![no_main]`), which
//! does what microvm needs of the Rust runtime's start-up and no more, then runs
//! [`crate::run_main`].
//!
//! Why not std's start-up: before `main` it installs a stack-overflow handler (an
//! alternate signal stack mapped with a guard page, SIGSEGV and SIGBUS handlers: nine
//! system calls and a page fault on every start, and the same altstack for every thread
//! spawned later) and unmaps it again at exit; ~40 µs of process CPU of the tiny guest's
//! start on the project's machine (docs/start-path.md). What it is for, a message naming
//! the thread whose stack overflowed, is a diagnostic only: the guard pages stay, so an
//! overflow still ends the process, with SIGSEGV instead of that message and SIGABRT.
//! What is kept, as std does it: descriptors 0-2 opened on /dev/null if closed (or
//! /dev/kvm could become stdout), SIGPIPE ignored (a closed socket is an error, not
//! death), the arguments, and stdout flushed at the end.
//!
//! `std::env::args` is empty in this process (std reads them at start-up only on glibc):
//! the arguments are the ones passed to [`crate::run_main`].

use std::ffi::{c_char, c_int, CStr, OsString};
use std::os::unix::ffi::OsStringExt;

/// The process's exit status: `std::process::ExitCode`'s interface, with the value
/// readable (std's is opaque, and a `no_main` program returns a C `int`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCode(u8);

impl ExitCode {
    pub const SUCCESS: ExitCode = ExitCode(0);
    pub const FAILURE: ExitCode = ExitCode(1);
}

impl From<u8> for ExitCode {
    fn from(status: u8) -> Self {
        ExitCode(status)
    }
}

// The C library's entry calls this (not in the unit tests, whose harness has its own).
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    sanitize_standard_fds();
    // SAFETY: SIG_IGN for SIGPIPE: no handler runs, only the disposition changes.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: the C library passes argc valid, NUL-terminated strings in argv.
    let args = unsafe { arguments(argc, argv) };
    let ExitCode(status) = crate::run_main(args);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    c_int::from(status)
}

/// `argv` as owned strings.
#[cfg_attr(test, allow(dead_code))]
///
/// # Safety
/// `argv` holds `argc` pointers to NUL-terminated strings that live across the call.
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            // SAFETY: i < argc, so the pointer is one of the C library's strings.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect()
}

/// Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed, as std's start-up
/// does: otherwise the first file microvm opens would take its number, and output
/// meant for stdout or stderr would go there.
#[cfg_attr(test, allow(dead_code))]
fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: polls the three entries of `fds`, without waiting.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if rc < 0 {
        return;
    }
    for fd in fds.iter().filter(|fd| fd.revents & libc::POLLNVAL != 0) {
        // SAFETY: a constant NUL-terminated path; the descriptor is kept for good.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if null >= 0 && null != fd.fd {
            // SAFETY: both descriptors are open (or the dup fails harmlessly).
            unsafe {
                libc::dup2(null, fd.fd);
                libc::close(null);
            }
        }
    }
}
