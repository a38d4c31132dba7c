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

/// The send buffer of passt's end of the pair. passt (0.0~git20230309, Debian 12's) sends
/// to the guest with MSG_DONTWAIT and drops the frames the socket cannot take, and only
/// resends them when the guest has not acknowledged anything for 2 s (go-back-N), three
/// times at most before it resets the connection. With the default buffer (212,992 bytes,
/// three of its 64 KiB frames) a guest that drains its ring slower than passt fills its TCP
/// window loses most frames: in the rig, 64 MiB to the guest did not arrive in minutes, and
/// connections were reset. A buffer that holds a whole window keeps the frames waiting
/// instead. passt sets no size on an `--fd` socket itself (on sockets it accepts it asks
/// for the most `wmem_max` allows). Memory is only used by frames in flight.
pub const SOCKET_BUFFER: usize = 8 << 20;

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
    enlarge_send_buffer(&theirs, SOCKET_BUFFER);
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

/// Sets `fd`'s send buffer to `bytes`: beyond `net.core.wmem_max` where microvm may
/// (SO_SNDBUFFORCE, CAP_NET_ADMIN), else as far as that limit lets SO_SNDBUF go. The
/// kernel doubles the value for its bookkeeping. No error: the default still works, slowly.
pub fn enlarge_send_buffer(fd: &OwnedFd, bytes: usize) {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: setsockopt reads one c_int from a valid pointer; the fd is ours.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_SNDBUFFORCE) != 0 && set(libc::SO_SNDBUF) != 0 {
        log::debug!("passt socket: cannot enlarge its send buffer: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_buffer(fd: &OwnedFd) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes one c_int and its length into our variables.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v as usize
    }

    #[test]
    fn passts_end_holds_a_whole_window() {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let theirs: OwnedFd = theirs.into();
        let before = send_buffer(&theirs);
        enlarge_send_buffer(&theirs, SOCKET_BUFFER);
        let after = send_buffer(&theirs);
        // SAFETY: geteuid only reads the process's credentials.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(after, 2 * SOCKET_BUFFER, "SO_SNDBUFFORCE (the kernel doubles it)");
        } else {
            assert!(after >= before, "{before} -> {after}");
            return; // as far as wmem_max goes: a few frames more
        }
        // Frames of 64 KiB now wait in the socket instead of being dropped: 64 of them fit.
        let frame = vec![0u8; 64 * 1024];
        let sock = UnixStream::from(theirs);
        sock.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sent < 64 {
            match std::io::Write::write(&mut &sock, &frame) {
                Ok(n) if n == frame.len() => sent += 1,
                other => panic!("frame {sent}: {other:?} (buffer {after})"),
            }
        }
    }
}
