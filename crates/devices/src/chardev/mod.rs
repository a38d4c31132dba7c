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

mod backend;
mod endpoint;
mod listener;
mod pty;
mod snapshot;

use crate::terminal::RawTerminal;
use backend::io_error;
pub use backend::{ChardevBackend, ChardevError};
use endpoint::*;
use event_manager::{EventOps, EventSet, Events};
use listener::{tcp_addr, Listener};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
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

/// What varies between backends beyond their input and output endpoints.
enum Kind {
    /// Null, stdio, file, or fds handed over: the endpoints are fixed.
    Plain,
    /// `connected`: someone has the slave open. When not, the master is not
    /// watched and `timer` polls for a new user.
    Pty { path: PathBuf, connected: bool, timer: TimerFd },
    /// A listening socket; the endpoints are the current client, if any.
    Server { listener: Listener },
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
    /// `logfile=`: a copy of the output.
    log: Option<File>,
    /// Clients a server socket has accepted so far.
    clients: u64,
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
                log::info!(target: crate::NOTICE, "char device redirected to {} (label {id})", path.display());
                dev.input = Some(Endpoint { fd: input, mode: IoMode::NonBlocking });
                dev.output = Some(Endpoint { fd: master, mode: IoMode::NonBlocking });
                dev.kind = Kind::Pty { path, connected: false, timer };
            }
            ChardevBackend::Socket { path, server: true, wait } => {
                dev.serve(id, Listener::unix(id, path)?, *wait)?;
            }
            ChardevBackend::Tcp { host, port, server: true, wait } => {
                dev.serve(id, Listener::tcp(id, host, *port)?, *wait)?;
            }
            ChardevBackend::Tcp { host, port, server: false, .. } => {
                let addr = tcp_addr(host, *port);
                let connected = std::net::TcpStream::connect(&addr).and_then(|s| {
                    let _ = s.set_nodelay(true);
                    socket_endpoints(s)
                });
                let (input, output) =
                    connected.map_err(|source| ChardevError::TcpConnect { id: id.into(), addr, source })?;
                dev.input = Some(input);
                dev.output = Some(output);
                dev.kind = Kind::Client;
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

    /// Becomes the server of `listener`; with `wait`, blocks until the
    /// first client connects (a failure removes a Unix socket file again,
    /// with the listener).
    fn serve(&mut self, id: &str, listener: Listener, wait: bool) -> Result<(), ChardevError> {
        if wait {
            log::info!(
                target: crate::NOTICE,
                "microvm: waiting for connection on: disconnected:{},server=on",
                listener.describe()
            );
            let accepted = listener.accept().and_then(socket_endpoints);
            let (input, output) = accepted.map_err(|source| ChardevError::Accept {
                id: id.into(),
                path: listener.describe().into(),
                source,
            })?;
            self.input = Some(input);
            self.output = Some(output);
            self.clients += 1;
        }
        listener.set_nonblocking().map_err(io_error(id, "cannot make the listening socket non-blocking"))?;
        self.kind = Kind::Server { listener };
        Ok(())
    }

    /// `logfile=PATH[,logappend=on]`: a copy of all output goes to `path`
    /// (truncated first unless `append`), whether or not a peer takes it.
    pub fn set_logfile(&mut self, path: &Path, append: bool) -> Result<(), ChardevError> {
        let file = OpenOptions::new().write(true).create(true).append(append).truncate(!append).open(path);
        let file =
            file.map_err(|source| ChardevError::LogFile { id: self.label.clone(), path: path.into(), source })?;
        self.log = Some(file);
        Ok(())
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
            log: None,
            clients: 0,
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

    /// Whether the backend is open in QEMU's sense (it sent CHR_EVENT_OPENED
    /// and no CLOSED since), which is what a virtserialport reports to the
    /// guest as "host connected": a pty while someone has its slave open; a
    /// socket while its connection is up; any other backend while it has an
    /// input or output left (so `null` never is, as in QEMU).
    pub fn is_open(&self) -> bool {
        match &self.kind {
            Kind::Pty { connected, .. } => *connected,
            _ => (self.input.is_some() && !self.input_ended) || (self.output.is_some() && !self.output_ended),
        }
    }

    /// How many clients a server socket has accepted: a new number is a new
    /// peer even if the last one left and this one came within one turn.
    pub fn clients_accepted(&self) -> u64 {
        self.clients
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
        let taken = self.send_output(data);
        if let Some(log) = &mut self.log {
            use std::io::Write;
            if let Err(e) = log.write_all(&data[..taken]) {
                log::warn!("chardev '{}': cannot write its log file: {e}; logging stops", self.label);
                self.log = None;
            }
        }
        taken
    }

    fn send_output(&mut self, data: &[u8]) -> usize {
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
            Kind::Server { listener } if self.input.is_none() && self.output.is_none() => {
                wanted.push(Watch { fd: listener.raw(), tag: TAG_LISTENER, events: EventSet::IN });
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
            Kind::Server { listener } => {
                log::info!("chardev '{}': client of {} disconnected ({why})", self.label, listener.describe());
            }
            _ => log::info!("chardev '{}': connection closed ({why}); further output is dropped", self.label),
        }
    }
}

#[cfg(test)]
mod tests;
