//! The fds a chardev reads and writes, and how each is kept from blocking
//! the event loop (see the parent module).

use event_manager::EventSet;
use std::ffi::{CStr, OsStr};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent};
use vmm_sys_util::timerfd::TimerFd;

use super::PTY_POLL_INTERVAL;

/// Largest write that cannot block on a pipe that poll() reports writable.
const PIPE_BUF: usize = 4096;

/// How I/O on an endpoint is kept from blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IoMode {
    /// O_NONBLOCK is set on a file description only we use.
    NonBlocking,
    /// A socket: recv/send with MSG_DONTWAIT (and MSG_NOSIGNAL).
    Socket,
    /// A blocking description shared with others (our stdin, or a stdout we
    /// could not reopen): poll before each read or write, and write at most
    /// PIPE_BUF bytes at a time.
    PollFirst,
    /// A regular file or a device like /dev/null: I/O never waits for a
    /// peer, and epoll cannot watch it.
    Direct,
}

/// One fd of a backend.
pub(super) struct Endpoint {
    pub(super) fd: OwnedFd,
    pub(super) mode: IoMode,
}

impl Endpoint {
    pub(super) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub(super) fn pollable(&self) -> bool {
        self.mode != IoMode::Direct
    }

    /// A non-blocking read: Err(WouldBlock) when nothing is there.
    pub(super) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.raw();
        if self.mode == IoMode::PollFirst && poll_now(fd, libc::POLLIN)? == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        retry(|| match self.mode {
            // SAFETY: recv writes at most buf.len() bytes into buf.
            IoMode::Socket => unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) },
            // SAFETY: read writes at most buf.len() bytes into buf.
            _ => unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) },
        })
    }

    /// A non-blocking write: Err(WouldBlock) when the peer takes nothing now.
    pub(super) fn write(&self, data: &[u8]) -> io::Result<usize> {
        let fd = self.raw();
        let mut data = data;
        if self.mode == IoMode::PollFirst {
            if poll_now(fd, libc::POLLOUT)? == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            data = &data[..data.len().min(PIPE_BUF)];
        }
        retry(|| match self.mode {
            // SAFETY: send reads at most data.len() bytes from data.
            IoMode::Socket => unsafe {
                libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            },
            // SAFETY: write reads at most data.len() bytes from data.
            _ => unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) },
        })
    }

    /// Bytes waiting to be read (sockets, pipes, ttys); 0 if unknown.
    pub(super) fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        if unsafe { libc::ioctl(self.raw(), libc::FIONREAD, &mut n) } != 0 {
            return 0;
        }
        usize::try_from(n).unwrap_or(0)
    }
}

/// Runs a read/write-like syscall again when a signal interrupted it.
pub(super) fn retry(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = f();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// poll() with a zero timeout; returns the revents (hang-ups and errors
/// are always reported, whatever `events` asks).
pub(super) fn poll_now(fd: RawFd, events: libc::c_short) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd { fd, events, revents: 0 };
    loop {
        // SAFETY: polls one pollfd that we own, without waiting.
        if unsafe { libc::poll(&mut pfd, 1, 0) } >= 0 {
            return Ok(pfd.revents);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether epoll can watch `fd` (it refuses regular files and the like).
pub(super) fn epoll_accepts(fd: RawFd) -> bool {
    let Ok(epoll) = Epoll::new() else { return false };
    epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, 0)).is_ok()
}

pub(super) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: F_SETFL takes the flags as its argument.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An fd handed over to us (so O_NONBLOCK may be set on it), as an endpoint.
pub(super) fn owned_endpoint(fd: OwnedFd) -> io::Result<Endpoint> {
    let file = File::from(fd);
    let file_type = file.metadata()?.file_type();
    let fd = OwnedFd::from(file);
    if file_type.is_file() || !epoll_accepts(fd.as_raw_fd()) {
        return Ok(Endpoint { fd, mode: IoMode::Direct });
    }
    set_nonblocking(fd.as_raw_fd())?;
    let mode = if file_type.is_socket() { IoMode::Socket } else { IoMode::NonBlocking };
    Ok(Endpoint { fd, mode })
}

/// The two endpoints of a connected stream socket (Unix or TCP).
pub(super) fn socket_endpoints(stream: impl Into<OwnedFd>) -> io::Result<(Endpoint, Endpoint)> {
    let output: OwnedFd = stream.into();
    set_nonblocking(output.as_raw_fd())?;
    let input = output.try_clone()?;
    Ok((Endpoint { fd: input, mode: IoMode::Socket }, Endpoint { fd: output, mode: IoMode::Socket }))
}

/// Stdin for input: a duplicate of fd 0, which shares its blocking file
/// description with the shell, so it is polled before each read.
pub(super) fn stdin_endpoint() -> Option<Endpoint> {
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let mode = if epoll_accepts(fd.as_raw_fd()) { IoMode::PollFirst } else { IoMode::Direct };
    Some(Endpoint { fd, mode })
}

/// Stdout for output. A terminal or pipe is reopened through /proc so that
/// O_NONBLOCK goes on a description of our own, not on the shell's.
pub(super) fn stdout_endpoint() -> Option<Endpoint> {
    let dup = io::stdout().as_fd().try_clone_to_owned().ok()?;
    let file = File::from(dup);
    let file_type = file.metadata().ok()?.file_type();
    let dup = OwnedFd::from(file);
    if file_type.is_socket() {
        return Some(Endpoint { fd: dup, mode: IoMode::Socket });
    }
    if file_type.is_file() {
        return Some(Endpoint { fd: dup, mode: IoMode::Direct });
    }
    let reopened =
        OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open("/proc/self/fd/1");
    let (fd, mode) = match reopened {
        Ok(file) => (OwnedFd::from(file), IoMode::NonBlocking),
        Err(_) => (dup, IoMode::PollFirst),
    };
    let mode = if epoll_accepts(fd.as_raw_fd()) { mode } else { IoMode::Direct };
    Some(Endpoint { fd, mode })
}

/// A non-blocking timer, armed: nobody has a new pty's slave open yet, so
/// it starts out looking for a user.
pub(super) fn pty_timer() -> io::Result<TimerFd> {
    let mut timer = TimerFd::new()?;
    set_nonblocking(timer.as_raw_fd())?;
    timer.reset(PTY_POLL_INTERVAL, Some(PTY_POLL_INTERVAL))?;
    Ok(timer)
}

/// Creates a pseudo-terminal in raw mode; returns its master and the
/// slave's path. The slave is opened once to set raw mode and closed again,
/// which leaves the master hung up until someone opens the slave.
pub(super) fn open_pty() -> io::Result<(OwnedFd, PathBuf)> {
    // SAFETY: posix_openpt opens a new master; we own the returned fd.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor nobody else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: grantpt and unlockpt act on the master we just opened.
    if unsafe { libc::grantpt(fd) } != 0 || unsafe { libc::unlockpt(fd) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes a NUL-terminated name of at most name.len() bytes.
    let err = unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let path = PathBuf::from(OsStr::from_bytes(unsafe { CStr::from_ptr(name.as_ptr()) }.to_bytes()));
    let slave = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&path)?;
    // SAFETY: termios is plain data, filled in by tcgetattr.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes into `termios`; cfmakeraw edits it; tcsetattr reads it.
    unsafe {
        if libc::tcgetattr(slave.as_raw_fd(), &mut termios) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut termios);
        if libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &termios) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    drop(slave);
    set_nonblocking(master.as_raw_fd())?;
    Ok((master, path))
}
