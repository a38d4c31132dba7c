//! Character-device backends, QEMU's `-chardev`: where a console's output
//! goes and where its input comes from.
//!
//! A `Chardev` is driven by the device event loop and never blocks it:
//!
//! * Output is written without blocking. What the peer cannot take at once
//!   is kept in a buffer of at most `OUTPUT_BUFFER` bytes; when that is full
//!   `write_output` takes less than it was given and the device must wait
//!   (the chardev watches for the peer to become writable again). So nothing
//!   is lost while a peer is connected and reading; a connected peer that
//!   never reads holds the guest's output back, as with QEMU.
//! * Output with nobody to receive it is dropped (counted in
//!   `dropped_output`): a server socket with no client, a pty whose slave
//!   nobody has open, a closed stdout. The guest is never held up by an
//!   absent reader.
//! * Input is read only when the caller asks, with non-blocking reads; the
//!   caller decides when input is watched at all (`sync_watches`), so input
//!   the guest has no room for stays in the kernel's buffers.
//!
//! The fds to watch change over time (a client connects, a pty slave is
//! closed): `sync_watches` keeps them registered in an event-manager loop,
//! tagged with event data from `EVENT_DATA_BASE` on, and `handle_event`
//! takes the events so tagged. A chardev only closes an fd after removing
//! it from the loop, so a reused fd number never meets a stale registration.

use crate::terminal::RawTerminal;
use event_manager::{EventOps, EventSet, Events};
use std::collections::VecDeque;
use std::ffi::{CStr, OsStr};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent};
use vmm_sys_util::timerfd::TimerFd;

/// Most output kept for a connected peer that is momentarily not reading.
pub const OUTPUT_BUFFER: usize = 64 << 10;
/// Event data of the chardev's fds in the event loop: `EVENT_DATA_BASE` to
/// `EVENT_DATA_BASE + 3`. Devices tag their own fds with other values.
pub const EVENT_DATA_BASE: u32 = 0x4348_0000;
const TAG_INPUT: u32 = EVENT_DATA_BASE;
const TAG_OUTPUT: u32 = EVENT_DATA_BASE + 1;
const TAG_LISTENER: u32 = EVENT_DATA_BASE + 2;
const TAG_TIMER: u32 = EVENT_DATA_BASE + 3;
/// How often a pty nobody has open is checked for a new user (QEMU polls too:
/// the kernel sends no event when a pty slave is opened).
const PTY_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Largest write that cannot block on a pipe that poll() reports writable.
const PIPE_BUF: usize = 4096;

/// A backend, as `-chardev` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChardevBackend {
    /// Output discarded, no input.
    Null,
    /// Output to stdout, input from stdin (put in raw mode if a terminal).
    Stdio,
    /// A new pseudo-terminal; its path is printed on stderr.
    Pty,
    /// Output to a file, truncated first unless `append` (QEMU's `append=on`);
    /// no input.
    File { path: PathBuf, append: bool },
    /// A Unix socket. As `server`, listen and serve one client at a time;
    /// with `wait`, `open` blocks until the first client connects. Otherwise
    /// connect to `path` at start-up (no reconnection).
    Socket { path: PathBuf, server: bool, wait: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum ChardevError {
    #[error("chardev '{id}': cannot open {}: {source}", path.display())]
    File { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': cannot create a pseudo-terminal: {source}")]
    Pty { id: String, source: io::Error },
    #[error("chardev '{id}': cannot listen on unix socket {}: {source}", path.display())]
    Listen { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': {} exists and is not a socket", path.display())]
    NotASocket { id: String, path: PathBuf },
    #[error("chardev '{id}': waiting for a client on {} failed: {source}", path.display())]
    Accept { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': cannot connect to unix socket {}: {source}", path.display())]
    Connect { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': {what}: {source}")]
    Io { id: String, what: &'static str, source: io::Error },
}

/// How I/O on an endpoint is kept from blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IoMode {
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
struct Endpoint {
    fd: OwnedFd,
    mode: IoMode,
}

impl Endpoint {
    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn pollable(&self) -> bool {
        self.mode != IoMode::Direct
    }

    /// A non-blocking read: Err(WouldBlock) when nothing is there.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
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
    fn write(&self, data: &[u8]) -> io::Result<usize> {
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
    fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        if unsafe { libc::ioctl(self.raw(), libc::FIONREAD, &mut n) } != 0 {
            return 0;
        }
        usize::try_from(n).unwrap_or(0)
    }
}

/// Runs a read/write-like syscall again when a signal interrupted it.
fn retry(mut f: impl FnMut() -> isize) -> io::Result<usize> {
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
fn poll_now(fd: RawFd, events: libc::c_short) -> io::Result<libc::c_short> {
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
fn epoll_accepts(fd: RawFd) -> bool {
    let Ok(epoll) = Epoll::new() else { return false };
    epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, 0)).is_ok()
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: F_SETFL takes the flags as its argument.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An fd handed over to us (so O_NONBLOCK may be set on it), as an endpoint.
fn owned_endpoint(fd: OwnedFd) -> io::Result<Endpoint> {
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

fn socket_endpoints(stream: UnixStream) -> io::Result<(Endpoint, Endpoint)> {
    stream.set_nonblocking(true)?;
    let input = OwnedFd::from(stream.try_clone()?);
    Ok((Endpoint { fd: input, mode: IoMode::Socket }, Endpoint { fd: stream.into(), mode: IoMode::Socket }))
}

/// Stdin for input: a duplicate of fd 0, which shares its blocking file
/// description with the shell, so it is polled before each read.
fn stdin_endpoint() -> Option<Endpoint> {
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let mode = if epoll_accepts(fd.as_raw_fd()) { IoMode::PollFirst } else { IoMode::Direct };
    Some(Endpoint { fd, mode })
}

/// Stdout for output. A terminal or pipe is reopened through /proc so that
/// O_NONBLOCK goes on a description of our own, not on the shell's.
fn stdout_endpoint() -> Option<Endpoint> {
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

fn io_error<'a>(id: &'a str, what: &'static str) -> impl Fn(io::Error) -> ChardevError + 'a {
    move |source| ChardevError::Io { id: id.into(), what, source }
}

/// A non-blocking timer, armed: nobody has a new pty's slave open yet, so
/// it starts out looking for a user.
fn pty_timer() -> io::Result<TimerFd> {
    let mut timer = TimerFd::new()?;
    set_nonblocking(timer.as_raw_fd())?;
    timer.reset(PTY_POLL_INTERVAL, Some(PTY_POLL_INTERVAL))?;
    Ok(timer)
}

/// Creates a pseudo-terminal in raw mode; returns its master and the
/// slave's path. The slave is opened once to set raw mode and closed again,
/// which leaves the master hung up until someone opens the slave.
fn open_pty() -> io::Result<(OwnedFd, PathBuf)> {
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

/// What varies between backends beyond their input and output endpoints.
enum Kind {
    /// Null, stdio, file, or fds handed over: the endpoints are fixed.
    Plain,
    /// `connected`: someone has the slave open. When not, the master is not
    /// watched and `timer` polls for a new user.
    Pty { path: PathBuf, connected: bool, timer: TimerFd },
    /// A listening socket; the endpoints are the current client, if any.
    Server { path: PathBuf, listener: UnixListener },
    /// A connection made at start-up; once it ends, it stays ended.
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Watch {
    fd: RawFd,
    tag: u32,
    events: EventSet,
}

/// An open character device backend. See the module documentation.
pub struct Chardev {
    label: String,
    kind: Kind,
    /// Where input comes from; None: no input (any more).
    input: Option<Endpoint>,
    /// Where output goes; None: output is dropped.
    output: Option<Endpoint>,
    /// The input ended (EOF, error, peer gone): it is closed at the next
    /// `sync_watches`, once it is no longer watched.
    input_ended: bool,
    /// Likewise for the output.
    output_ended: bool,
    /// Output accepted but not yet taken by the peer.
    out_buf: VecDeque<u8>,
    dropped: u64,
    /// What is registered in the event loop now.
    registered: Vec<Watch>,
    /// A write error on a file was logged already.
    complained: bool,
    _raw_mode: Option<RawTerminal>,
}

impl Chardev {
    /// Opens `backend` for the chardev `id` (used in messages). A pty prints
    /// `char device redirected to /dev/pts/N (label ID)` on stderr; a server
    /// socket with `wait` blocks here until a client connects.
    pub fn open(id: &str, backend: &ChardevBackend) -> Result<Chardev, ChardevError> {
        let mut dev = Chardev::new(id, Kind::Plain);
        match backend {
            ChardevBackend::Null => {}
            ChardevBackend::Stdio => {
                dev.input = stdin_endpoint();
                dev.output = stdout_endpoint();
                dev._raw_mode = RawTerminal::enter(libc::STDIN_FILENO);
            }
            ChardevBackend::File { path, append } => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .append(*append)
                    .truncate(!*append)
                    // A FIFO without a reader fails now rather than blocking.
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                    .open(path)
                    .and_then(|f| owned_endpoint(f.into()));
                let file = file.map_err(|source| ChardevError::File { id: id.into(), path: path.clone(), source })?;
                dev.output = Some(file);
            }
            ChardevBackend::Pty => {
                let (master, path) = open_pty().map_err(|source| ChardevError::Pty { id: id.into(), source })?;
                let input = master.try_clone().map_err(io_error(id, "cannot duplicate the pty master"))?;
                let timer = pty_timer().map_err(io_error(id, "cannot set up a timerfd"))?;
                eprintln!("char device redirected to {} (label {id})", path.display());
                dev.input = Some(Endpoint { fd: input, mode: IoMode::NonBlocking });
                dev.output = Some(Endpoint { fd: master, mode: IoMode::NonBlocking });
                dev.kind = Kind::Pty { path, connected: false, timer };
            }
            ChardevBackend::Socket { path, server: true, wait } => {
                let listener = listen(id, path)?;
                // From here on, a failure leaves no socket file behind.
                let unlink = |e| {
                    let _ = std::fs::remove_file(path);
                    e
                };
                if *wait {
                    eprintln!("microvm: waiting for connection on: disconnected:unix:{},server=on", path.display());
                    let accepted = listener.accept().and_then(|(stream, _)| socket_endpoints(stream));
                    let (input, output) = accepted
                        .map_err(|source| ChardevError::Accept { id: id.into(), path: path.clone(), source })
                        .map_err(unlink)?;
                    dev.input = Some(input);
                    dev.output = Some(output);
                }
                listener
                    .set_nonblocking(true)
                    .map_err(io_error(id, "cannot make the listening socket non-blocking"))
                    .map_err(unlink)?;
                dev.kind = Kind::Server { path: path.clone(), listener };
            }
            ChardevBackend::Socket { path, server: false, .. } => {
                let connected = UnixStream::connect(path).and_then(socket_endpoints);
                let (input, output) =
                    connected.map_err(|source| ChardevError::Connect { id: id.into(), path: path.clone(), source })?;
                dev.input = Some(input);
                dev.output = Some(output);
                dev.kind = Kind::Client;
            }
        }
        Ok(dev)
    }

    /// A chardev over fds handed over by the caller (e.g. the two ends of
    /// pipes, or one end of a socketpair given twice, duplicated): input is
    /// read from `input`, output written to `output`. O_NONBLOCK is set on
    /// them. End of input, or a reader that went away, ends that direction
    /// for good.
    pub fn from_fds(id: &str, input: Option<OwnedFd>, output: Option<OwnedFd>) -> Result<Chardev, ChardevError> {
        let setup = |fd| owned_endpoint(fd).map_err(io_error(id, "unusable fd"));
        let mut dev = Chardev::new(id, Kind::Plain);
        dev.input = input.map(setup).transpose()?;
        dev.output = output.map(setup).transpose()?;
        Ok(dev)
    }

    fn new(id: &str, kind: Kind) -> Self {
        Chardev {
            label: id.to_string(),
            kind,
            input: None,
            output: None,
            input_ended: false,
            output_ended: false,
            out_buf: VecDeque::new(),
            dropped: 0,
            registered: Vec::new(),
            complained: false,
            _raw_mode: None,
        }
    }

    /// The chardev id.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The slave path of a pty backend.
    pub fn pty_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Pty { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether a peer is there: a socket client, a user of the pty. Backends
    /// without a peer (stdio, file, null) are always "connected".
    pub fn is_connected(&self) -> bool {
        match &self.kind {
            Kind::Pty { connected, .. } => *connected,
            Kind::Server { .. } | Kind::Client => self.input.is_some() || self.output.is_some(),
            Kind::Plain => true,
        }
    }

    /// Output bytes dropped because nobody was there to receive them.
    pub fn dropped_output(&self) -> u64 {
        self.dropped
    }

    /// Output accepted but not yet taken by the peer.
    pub fn pending_output(&self) -> usize {
        self.out_buf.len()
    }

    /// The fd input arrives on now, if any (the current socket client, the
    /// pty master while someone uses the slave, stdin).
    pub fn input_fd(&self) -> Option<RawFd> {
        if self.input_ended || matches!(self.kind, Kind::Pty { connected: false, .. }) {
            return None;
        }
        self.input.as_ref().filter(|i| i.pollable()).map(Endpoint::raw)
    }

    /// Reads the input available now, without blocking. Ok(0): nothing now
    /// (or no input at all). An error is returned only for an unexpected
    /// failure, after which the input is closed.
    pub fn read_input(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.input_ended || !self.pty_check_connected() {
            return Ok(0);
        }
        let Some(input) = &self.input else { return Ok(0) };
        match input.read(buf) {
            Ok(0) => {
                self.input_eof();
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => match self.kind {
                // EIO: the last user closed the slave.
                Kind::Pty { .. } => {
                    self.pty_hung_up();
                    Ok(0)
                }
                Kind::Server { .. } | Kind::Client => {
                    self.connection_closed(&e.to_string());
                    Ok(0)
                }
                Kind::Plain => {
                    self.input_ended = true;
                    Err(e)
                }
            },
        }
    }

    /// Queues `data` for output without blocking; returns how much was
    /// taken. Less than `data.len()` only when a connected peer is not
    /// keeping up and `OUTPUT_BUFFER` bytes are already waiting: offer the
    /// rest again after the chardev's next event. With nobody to receive it,
    /// all of `data` is taken and dropped.
    pub fn write_output(&mut self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        if !self.output_open() {
            self.dropped += data.len() as u64;
            return data.len();
        }
        let mut written = 0;
        if self.out_buf.is_empty() {
            while written < data.len() {
                let Some(output) = &self.output else { break };
                match output.write(&data[written..]) {
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // Gone (dropped from now on) or a failed file write
                        // (this data lost): either way, taken.
                        self.output_failed(e);
                        self.dropped += (data.len() - written) as u64;
                        return data.len();
                    }
                }
            }
        }
        let rest = &data[written..];
        let take = rest.len().min(OUTPUT_BUFFER.saturating_sub(self.out_buf.len()));
        self.out_buf.extend(&rest[..take]);
        written + take
    }

    /// Writes out what the peer can take of the buffered output.
    pub fn flush_output(&mut self) {
        while !self.out_buf.is_empty() {
            if !self.output_open() {
                self.dropped += self.out_buf.len() as u64;
                self.out_buf.clear();
                return;
            }
            let (front, _) = self.out_buf.as_slices();
            let Some(output) = &self.output else { return };
            match output.write(front) {
                Ok(0) => return,
                Ok(n) => drop(self.out_buf.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.dropped += self.out_buf.len() as u64;
                    self.out_buf.clear();
                    self.output_failed(e);
                    return;
                }
            }
        }
    }

    /// Handles an event of the event loop if it is one of the chardev's (its
    /// event data is in the `EVENT_DATA_BASE` range): accepts a client,
    /// flushes output, notices a peer that went away or came back. Returns
    /// false for anyone else's event. After it the caller should try its
    /// input and pending output again, then call `sync_watches`.
    pub fn handle_event(&mut self, events: &Events) -> bool {
        let tag = events.data();
        if !(TAG_INPUT..=TAG_TIMER).contains(&tag) {
            return false;
        }
        // An event reported before its fd was unregistered: nothing to do.
        if !self.registered.iter().any(|w| w.fd == events.fd() && w.tag == tag) {
            return true;
        }
        match tag {
            TAG_OUTPUT => {
                self.flush_output();
                if events.event_set().intersects(EventSet::HANG_UP | EventSet::ERROR) {
                    self.check_output_peer();
                }
            }
            TAG_LISTENER => self.accept(),
            TAG_TIMER => {
                if let Kind::Pty { timer, .. } = &mut self.kind {
                    let _ = timer.wait();
                }
                self.pty_check_connected();
            }
            // Input: the caller reads it.
            _ => {}
        }
        true
    }

    /// Brings the chardev's registrations in the event loop up to date:
    /// input is watched only if `want_input` (and there is input), output
    /// for writability while some is buffered (and for hang-ups always),
    /// the listener while no client is connected, a pty's timer. Ended
    /// endpoints are unregistered, then closed.
    pub fn sync_watches(&mut self, ops: &mut EventOps, want_input: bool) {
        let wanted = self.wanted(want_input);
        let mut kept = Vec::with_capacity(self.registered.len());
        for w in self.registered.drain(..) {
            if wanted.iter().any(|x| x.fd == w.fd && x.tag == w.tag) {
                kept.push(w);
            } else if let Err(e) = ops.remove(Events::with_data_raw(w.fd, w.tag, w.events)) {
                log::warn!("chardev '{}': cannot stop watching fd {}: {e:?}", self.label, w.fd);
            }
        }
        self.registered = kept;
        // Nothing ended is registered any more: close it.
        if self.input_ended {
            self.input = None;
            self.input_ended = false;
        }
        if self.output_ended {
            self.output = None;
            self.output_ended = false;
        }
        for w in self.wanted(want_input) {
            let events = Events::with_data_raw(w.fd, w.tag, w.events);
            match self.registered.iter_mut().find(|r| r.fd == w.fd && r.tag == w.tag) {
                Some(r) if r.events != w.events => match ops.modify(events) {
                    Ok(()) => r.events = w.events,
                    Err(e) => log::warn!("chardev '{}': cannot change the watch on fd {}: {e:?}", self.label, w.fd),
                },
                Some(_) => {}
                None => match ops.add(events) {
                    Ok(()) => self.registered.push(w),
                    Err(e) => log::warn!("chardev '{}': cannot watch fd {}: {e:?}", self.label, w.fd),
                },
            }
        }
    }

    fn wanted(&self, want_input: bool) -> Vec<Watch> {
        let mut wanted = Vec::with_capacity(3);
        let live = !matches!(self.kind, Kind::Pty { connected: false, .. });
        if let Some(input) = self.input.as_ref().filter(|i| i.pollable()) {
            if want_input && live && !self.input_ended {
                wanted.push(Watch { fd: input.raw(), tag: TAG_INPUT, events: EventSet::IN });
            }
        }
        if let Some(output) = self.output.as_ref().filter(|o| o.pollable()) {
            if live && !self.output_ended {
                // With nothing to write, registered for hang-ups and errors only.
                let events = if self.out_buf.is_empty() { EventSet::empty() } else { EventSet::OUT };
                wanted.push(Watch { fd: output.raw(), tag: TAG_OUTPUT, events });
            }
        }
        match &self.kind {
            Kind::Server { listener, .. } if self.input.is_none() && self.output.is_none() => {
                wanted.push(Watch { fd: listener.as_raw_fd(), tag: TAG_LISTENER, events: EventSet::IN });
            }
            Kind::Pty { timer, .. } => {
                wanted.push(Watch { fd: timer.as_raw_fd(), tag: TAG_TIMER, events: EventSet::IN });
            }
            _ => {}
        }
        wanted
    }

    /// Whether output can go anywhere now.
    fn output_open(&mut self) -> bool {
        self.output.is_some() && !self.output_ended && self.pty_check_connected()
    }

    /// For a pty believed unused, looks whether someone opened the slave
    /// since. True if the pty is in use (or this is not a pty).
    fn pty_check_connected(&mut self) -> bool {
        let Kind::Pty { connected, timer, path } = &mut self.kind else { return true };
        if *connected {
            return true;
        }
        let Some(master) = &self.output else { return false };
        match poll_now(master.raw(), 0) {
            Ok(revents) if revents & libc::POLLHUP == 0 => {
                *connected = true;
                if let Err(e) = timer.clear() {
                    log::warn!("chardev '{}': cannot stop the pty timer: {e}", self.label);
                }
                log::info!("chardev '{}': {} opened", self.label, path.display());
                true
            }
            _ => false,
        }
    }

    /// The last user of the pty slave closed it: drop output until the
    /// next one comes.
    fn pty_hung_up(&mut self) {
        let Kind::Pty { connected, timer, path } = &mut self.kind else { return };
        if !*connected {
            return;
        }
        *connected = false;
        if let Err(e) = timer.reset(PTY_POLL_INTERVAL, Some(PTY_POLL_INTERVAL)) {
            log::warn!("chardev '{}': cannot start the pty timer: {e}", self.label);
        }
        log::info!("chardev '{}': {} closed", self.label, path.display());
        self.dropped += self.out_buf.len() as u64;
        self.out_buf.clear();
    }

    /// The output fd reported a hang-up or error: find out whether the
    /// reader is really gone (the event may be stale).
    fn check_output_peer(&mut self) {
        let Some(output) = &self.output else { return };
        let revents = poll_now(output.raw(), 0).unwrap_or(libc::POLLERR);
        match self.kind {
            Kind::Pty { .. } if revents & libc::POLLHUP != 0 => self.pty_hung_up(),
            Kind::Pty { .. } => {}
            _ if revents & (libc::POLLHUP | libc::POLLERR) != 0 => self.output_gone("hung up"),
            _ => {}
        }
    }

    /// A write failed for good (or, on a file, for this data only).
    fn output_failed(&mut self, e: io::Error) {
        if self.output.as_ref().is_some_and(|o| o.mode == IoMode::Direct) {
            if !self.complained {
                log::warn!("chardev '{}': output lost: {e} (further errors not logged)", self.label);
                self.complained = true;
            }
            return;
        }
        match self.kind {
            Kind::Pty { .. } => self.pty_hung_up(),
            _ => self.output_gone(&e.to_string()),
        }
    }

    /// Nobody reads the output any more: drop it from now on. A socket
    /// client whose input has all been read is gone altogether; otherwise
    /// its input is still delivered before the connection is closed.
    fn output_gone(&mut self, why: &str) {
        self.output_ended = true;
        self.dropped += self.out_buf.len() as u64;
        self.out_buf.clear();
        match self.kind {
            Kind::Server { .. } | Kind::Client if self.input.as_ref().map_or(0, Endpoint::unread) == 0 => {
                self.connection_closed(why);
            }
            Kind::Plain => log::info!("chardev '{}': output closed ({why}); further output is dropped", self.label),
            _ => {}
        }
    }

    fn input_eof(&mut self) {
        match self.kind {
            Kind::Pty { .. } => self.pty_hung_up(),
            Kind::Server { .. } | Kind::Client => self.connection_closed("end of input"),
            Kind::Plain => self.input_ended = true,
        }
    }

    /// The socket peer went away: close the connection (a server listens
    /// for the next client once it is closed).
    fn connection_closed(&mut self, why: &str) {
        if self.input.is_none() && self.output.is_none() {
            return;
        }
        self.input_ended = self.input.is_some();
        self.output_ended = self.output.is_some();
        self.dropped += self.out_buf.len() as u64;
        self.out_buf.clear();
        match &self.kind {
            Kind::Server { path, .. } => {
                log::info!("chardev '{}': client of {} disconnected ({why})", self.label, path.display());
            }
            _ => log::info!("chardev '{}': connection closed ({why}); further output is dropped", self.label),
        }
    }

    fn accept(&mut self) {
        let Kind::Server { listener, path } = &self.kind else { return };
        if self.input.is_some() || self.output.is_some() {
            return;
        }
        match listener.accept().and_then(|(stream, _)| socket_endpoints(stream)) {
            Ok((input, output)) => {
                log::info!("chardev '{}': client connected to {}", self.label, path.display());
                self.input = Some(input);
                self.output = Some(output);
                self.input_ended = false;
                self.output_ended = false;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => log::warn!("chardev '{}': cannot accept a client on {}: {e}", self.label, path.display()),
        }
    }
}

impl Drop for Chardev {
    fn drop(&mut self) {
        if let Kind::Server { path, .. } = &self.kind {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a listening socket at `path`, replacing a stale socket left there
/// (as QEMU does) but nothing else.
fn listen(id: &str, path: &Path) -> Result<UnixListener, ChardevError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ChardevError::NotASocket { id: id.into(), path: path.to_path_buf() });
        }
        std::fs::remove_file(path).map_err(|source| ChardevError::Listen {
            id: id.into(),
            path: path.to_path_buf(),
            source,
        })?;
    }
    UnixListener::bind(path).map_err(|source| ChardevError::Listen { id: id.into(), path: path.to_path_buf(), source })
}
