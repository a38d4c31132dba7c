//! Where QMP monitors talk: listening sockets (Unix, TCP), connected sockets (ones microvm
//! connected to with `server=off`, or one it inherited with `fd=N`), and stdio. Opened at
//! set-up, so a path that cannot be created fails before the guest runs.

use crate::config::MonitorSocket;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("monitor: cannot listen on {what}: {source}")]
    Listen { what: String, source: io::Error },
    #[error("monitor: cannot connect to {what}: {source}")]
    Connect { what: String, source: io::Error },
    #[error("monitor: {} exists and is not a socket; not replacing it", .0.display())]
    NotASocket(PathBuf),
    #[error("monitor: fd {0} is not an open socket")]
    BadFd(i32),
    #[error("monitor: {what}: {source}")]
    Io { what: &'static str, source: io::Error },
}

pub enum Listener {
    /// The path is removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

/// One client connection.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    /// Standard input and output; never set non-blocking (the descriptions are shared
    /// with whoever started microvm), so each read and write first polls.
    Stdio,
}

/// What a monitor starts with: a listener waiting for clients, or one connection.
pub enum Endpoint {
    Listening(Listener),
    Connected(Stream),
}

pub fn open(socket: &MonitorSocket) -> Result<Endpoint, SocketError> {
    match socket {
        MonitorSocket::UnixListen { path, .. } => {
            remove_stale_socket(path)?;
            let listener = UnixListener::bind(path)
                .map_err(|source| SocketError::Listen { what: format!("unix socket {}", path.display()), source })?;
            nonblocking(&listener)?;
            Ok(Endpoint::Listening(Listener::Unix(listener, path.clone())))
        }
        MonitorSocket::TcpListen { host, port, .. } => {
            let listener = TcpListener::bind((host.as_str(), *port))
                .map_err(|source| SocketError::Listen { what: format!("tcp {host}:{port}"), source })?;
            nonblocking(&listener)?;
            Ok(Endpoint::Listening(Listener::Tcp(listener)))
        }
        MonitorSocket::UnixConnect { path } => {
            let stream = UnixStream::connect(path)
                .map_err(|source| SocketError::Connect { what: format!("unix socket {}", path.display()), source })?;
            nonblocking(&stream)?;
            Ok(Endpoint::Connected(Stream::Unix(stream)))
        }
        MonitorSocket::TcpConnect { host, port } => {
            let stream = TcpStream::connect((host.as_str(), *port))
                .map_err(|source| SocketError::Connect { what: format!("tcp {host}:{port}"), source })?;
            nonblocking(&stream)?;
            Ok(Endpoint::Connected(Stream::Tcp(stream)))
        }
        MonitorSocket::Stdio => Ok(Endpoint::Connected(Stream::Stdio)),
        MonitorSocket::Fd(fd) => Ok(Endpoint::Connected(Stream::Unix(inherited_socket(*fd)?))),
    }
}

/// QEMU replaces whatever is at a listening socket's path; microvm only replaces a stale
/// socket, so a typo cannot delete a user's file.
fn remove_stale_socket(path: &Path) -> Result<(), SocketError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .map_err(|source| SocketError::Listen { what: format!("unix socket {}", path.display()), source }),
        Ok(_) => Err(SocketError::NotASocket(path.to_owned())),
        Err(_) => Ok(()),
    }
}

/// Takes ownership of an inherited descriptor after checking it is a socket.
fn inherited_socket(fd: i32) -> Result<UnixStream, SocketError> {
    // SAFETY: fstat only writes the stat buffer we pass; an invalid fd gives EBADF.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    };
    if fd < 3 || !is_socket {
        return Err(SocketError::BadFd(fd));
    }
    // SAFETY: the fd is open, is a socket, and the user handed it to microvm with
    // `fd=N`: nothing else in this process owns it.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    nonblocking(&stream)?;
    Ok(stream)
}

fn nonblocking<T: AsRawFd>(fd: &T) -> Result<(), SocketError> {
    // SAFETY: fcntl on a descriptor we own, changing only its status flags.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        let source = io::Error::last_os_error();
        return Err(SocketError::Io { what: "cannot make a socket non-blocking", source });
    }
    Ok(())
}

impl Listener {
    /// A client waiting to be accepted, if any.
    pub fn accept(&self) -> io::Result<Option<Stream>> {
        let accepted = match self {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
        };
        match accepted {
            Ok(stream) => {
                stream.set_nonblocking()?;
                Ok(Some(stream))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Blocks until the first client connects (`wait=on`).
    pub fn accept_blocking(&self) -> io::Result<Stream> {
        let fd = self.as_raw_fd();
        loop {
            poll_one(fd, libc::POLLIN, -1)?;
            if let Some(stream) = self.accept()? {
                return Ok(stream);
            }
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix(l, _) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Polls one descriptor; true if `events` are ready within `timeout_ms` (-1: forever).
fn poll_one(fd: RawFd, events: libc::c_short, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd, events, revents: 0 };
    loop {
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Stream {
    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(true),
            Stream::Tcp(s) => s.set_nonblocking(true),
            Stream::Stdio => Ok(()),
        }
    }

    /// The descriptor epoll watches for input.
    pub fn input_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Stdio => libc::STDIN_FILENO,
        }
    }

    /// The descriptor output goes to (differs from the input one only for stdio).
    pub fn output_fd(&self) -> RawFd {
        match self {
            Stream::Stdio => libc::STDOUT_FILENO,
            other => other.input_fd(),
        }
    }
}

/// Largest write that never blocks on a writable pipe (POSIX PIPE_BUF on Linux).
const STDIO_WRITE_CHUNK: usize = 4096;

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Stdio => {
                if !poll_one(libc::STDIN_FILENO, libc::POLLIN, 0)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                // SAFETY: reads into our buffer from stdin; raw, because Rust's buffered
                // Stdin could hold input that poll() no longer reports.
                let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(n as usize)
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Stdio => {
                if !poll_one(libc::STDOUT_FILENO, libc::POLLOUT, 0)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let chunk = &buf[..buf.len().min(STDIO_WRITE_CHUNK)];
                // SAFETY: writes from our buffer to stdout; raw, so that Rust's stdout
                // buffer (the serial console's path) does not mix with monitor output.
                let n = unsafe { libc::write(libc::STDOUT_FILENO, chunk.as_ptr().cast(), chunk.len()) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(n as usize)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
