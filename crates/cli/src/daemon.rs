//! `-daemonize`, as QEMU does it: the process forks before any set-up; the parent waits
//! on a pipe and exits 0 only when the child reports that set-up is complete (monitor
//! sockets listening, pty paths printed), or non-zero with the child's one-line error.
//! The child starts a new session, forks once more so it can never reacquire a terminal,
//! and at readiness points stdin, stdout and stderr at /dev/null.
//!
//! Unlike QEMU, the daemon does not chdir to `/`: relative paths on the command line
//! (a pidfile, a monitor socket) must still name the same files when they are removed
//! at exit.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The first byte the child sends: set-up succeeded.
const READY: u8 = b'0';
/// The first byte the child sends before its error line.
const FAILED: u8 = b'1';

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("-daemonize: cannot {what}: {source}")]
    Sys { what: &'static str, source: io::Error },
}

fn sys(what: &'static str) -> impl FnOnce(io::Error) -> DaemonError {
    move |source| DaemonError::Sys { what, source }
}

/// The daemon's end of the pipe to the waiting parent.
pub struct Daemon {
    parent: File,
}

/// What the original process does after `daemonize`: it exits with this status.
pub enum Outcome {
    /// This process is the daemon: go on with set-up, then call `ready` or `failed`.
    Child(Daemon),
    /// This process was the parent; the daemon reported (or died); exit with this.
    ParentExit(u8),
}

fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: called while the process is single-threaded (before any set-up), so the
    // child is a complete copy; no locks can be held by other threads.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// Forks. Must be called before any thread exists.
pub fn daemonize() -> Result<Outcome, DaemonError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(sys("create a pipe")(io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    if fork().map_err(sys("fork"))? > 0 {
        drop(write_end);
        return Ok(Outcome::ParentExit(wait_for_child(File::from(read_end))));
    }
    drop(read_end);
    // SAFETY: setsid has no preconditions; this child is not a group leader.
    if unsafe { libc::setsid() } < 0 {
        return Err(sys("start a new session")(io::Error::last_os_error()));
    }
    if fork().map_err(sys("fork"))? > 0 {
        // The session leader's only job was to make the daemon a non-leader.
        // SAFETY: _exit ends this intermediate process without running destructors
        // (which would touch state the daemon still owns).
        unsafe { libc::_exit(0) };
    }
    Ok(Outcome::Child(Daemon { parent: File::from(write_end) }))
}

/// The parent: relays the daemon's verdict. EOF without one means the daemon died.
fn wait_for_child(mut pipe: File) -> u8 {
    let mut report = Vec::new();
    let _ = pipe.read_to_end(&mut report);
    match report.split_first() {
        Some((&READY, _)) => 0,
        Some((&FAILED, line)) => {
            eprint!("{}", String::from_utf8_lossy(line));
            1
        }
        _ => {
            eprintln!("microvm: the daemon ended before it was ready");
            1
        }
    }
}

impl Daemon {
    /// Set-up is complete: detach from the terminal and release the parent with 0.
    pub fn ready(mut self) -> Result<(), DaemonError> {
        let null = File::options().read(true).write(true).open("/dev/null").map_err(sys("open /dev/null"))?;
        for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            // SAFETY: dup2 onto a standard descriptor from one we own.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                return Err(sys("redirect standard I/O")(io::Error::last_os_error()));
            }
        }
        // If the parent is gone there is nobody to tell.
        let _ = self.parent.write_all(&[READY]);
        Ok(())
    }

    /// Set-up failed: the parent prints `line` and exits non-zero.
    pub fn failed(mut self, line: &str) {
        let _ = self.parent.write_all(&[FAILED]);
        let _ = writeln!(self.parent, "{line}");
    }
}
