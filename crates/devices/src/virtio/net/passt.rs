//! `-netdev user`: user-mode networking by passt (passt.top), a separate
//! process that confines itself (its own seccomp filter, namespaces, no
//! capabilities, the user nobody when started as root). It gets its end of
//! a socket pair with `--fd` and speaks QEMU's stream framing on it, so the
//! device sees a `StreamSocket`; microvm's own threads gain no system call.
//!
//! Lifetime: passt runs in the foreground as microvm's child, quits when
//! its socket closes (`--one-off`: microvm ended or the device was
//! dropped), and gets SIGTERM should microvm's main thread die first
//! (PR_SET_PDEATHSIG). The main thread's filter has no wait call, so a
//! passt that quits while microvm runs stays a zombie until microvm ends.

use super::backend::StreamSocket;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The program, found on PATH.
pub const PASST: &str = "passt";

#[derive(Debug, thiserror::Error)]
pub enum PasstError {
    #[error("-netdev user needs passt, which is not installed (apt install passt, dnf install passt)")]
    NotInstalled,
    #[error("cannot start passt: {0}")]
    Spawn(#[source] io::Error),
    #[error("cannot create the socket pair for passt: {0}")]
    Pair(#[source] io::Error),
}

/// A running passt and microvm's end of its socket.
pub struct Passt {
    pub pid: u32,
    pub socket: StreamSocket,
}

/// Starts passt with `args` (its options, already translated from QEMU's),
/// connected to microvm by a socket pair. `name` labels the stream in logs.
pub fn spawn(args: &[String], name: &str) -> Result<Passt, PasstError> {
    let (ours, theirs) = UnixStream::pair().map_err(PasstError::Pair)?;
    let theirs: OwnedFd = theirs.into();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(PASST);
    cmd.args(["--foreground", "--one-off", "--quiet", "--stderr", "--fd", &fd.to_string()]);
    // SAFETY: geteuid only reads the process's credentials.
    if unsafe { libc::geteuid() } == 0 {
        // What passt does as root anyway (nobody's ids, numeric: a host without
        // /etc/passwd has no name to look up); said explicitly, it does not warn.
        cmd.args(["--runas", "65534:65534"]);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls on its own state.
    unsafe {
        cmd.pre_exec(move || {
            // Our end of the pair is close-on-exec (std sockets are): passt's
            // must survive exec.
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PasstError::NotInstalled,
        _ => PasstError::Spawn(e),
    })?;
    drop(theirs);
    let socket = StreamSocket::from_fd(ours.into(), name.to_string()).map_err(PasstError::Spawn)?;
    Ok(Passt { pid: child.id(), socket })
}
