//! QMP monitors on the main thread's event loop. Each `-qmp`/`-mon` gives one monitor: a
//! listening socket that accepts clients, or one connection (stdio, an inherited fd, a
//! socket microvm connected to). Every client is a `qmp::Connection`: the protocol
//! (framing, negotiation, replies, events) is the `qmp` crate's; this module moves bytes
//! between sockets and connections, and runs commands on the VM (`commands.rs`).
//!
//! Nothing here blocks: sockets are non-blocking, output waits in each connection's
//! buffer until epoll says the socket is writable, and a client whose buffer overflows
//! (it never reads) is dropped. So no client can stall the VM or the other clients.

mod balloon;
mod block;
mod commands;
mod hmp;
mod migration;
pub(crate) mod mux;
mod mux_core;
mod power;
mod readline;
pub(crate) mod sockets;
mod throttle;
mod vm_control;

pub use mux::Mux;
pub use sockets::SocketError;
pub use throttle::RateLimit;
pub use vm_control::{version_banner, Facts, VmControl};

use crate::config::{MonitorConfig, MonitorSocket};
use crate::control::{VmEvent, VmEventKind};
use event_manager::{EventOps, EventSet, Events};
use sockets::{Endpoint, Listener, Stream};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Clients one listening monitor serves at once; more are refused (closed at once).
/// QEMU serves one at a time; a few more let a supervisor and a debugging human share.
const MAX_CLIENTS_PER_MONITOR: usize = 8;

/// How long the last events (SHUTDOWN) may take to reach clients before microvm exits.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

struct Monitor {
    listener: Option<Listener>,
    pretty: bool,
    clients: usize,
}

struct Client {
    monitor: usize,
    conn: qmp::Connection<Stream>,
    /// Whether epoll currently watches this client for EPOLLOUT too.
    watching_output: bool,
}

/// Every monitor and client. Clients are keyed by their input descriptor.
pub struct MonitorServer {
    dispatcher: qmp::Dispatcher<VmControl>,
    monitors: Vec<Monitor>,
    clients: BTreeMap<RawFd, Client>,
    /// Connections made at set-up (wait=on, stdio, fd=, server=off), registered with
    /// epoll by `init`.
    pending: Vec<RawFd>,
}

impl MonitorServer {
    /// Opens every monitor. A listener with `wait=on` blocks until its first client.
    pub fn open(configs: &[MonitorConfig]) -> Result<MonitorServer, SocketError> {
        let mut server = MonitorServer {
            dispatcher: commands::dispatcher(),
            monitors: Vec::new(),
            clients: BTreeMap::new(),
            pending: Vec::new(),
        };
        for (index, config) in configs.iter().enumerate() {
            let wait = matches!(
                config.socket,
                MonitorSocket::UnixListen { wait: true, .. } | MonitorSocket::TcpListen { wait: true, .. }
            );
            let mut monitor = Monitor { listener: None, pretty: config.pretty, clients: 0 };
            match sockets::open(&config.socket)? {
                Endpoint::Listening(listener) => {
                    if wait {
                        let stream = listener
                            .accept_blocking()
                            .map_err(|source| SocketError::Io { what: "waiting for a client", source })?;
                        server.add_client(index, &mut monitor, stream);
                    }
                    monitor.listener = Some(listener);
                }
                Endpoint::Connected(stream) => {
                    server.add_client(index, &mut monitor, stream);
                }
            }
            server.monitors.push(monitor);
        }
        Ok(server)
    }

    pub fn is_empty(&self) -> bool {
        self.monitors.is_empty()
    }

    fn add_client(&mut self, index: usize, monitor: &mut Monitor, stream: Stream) -> Option<RawFd> {
        let fd = stream.input_fd();
        let conn = match qmp::Connection::new(stream, &vm_control::greeting(), monitor.pretty) {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("monitor: cannot greet a client: {e}");
                return None;
            }
        };
        monitor.clients += 1;
        self.clients.insert(fd, Client { monitor: index, conn, watching_output: false });
        self.pending.push(fd);
        Some(fd)
    }

    /// Registers every listener and the connections made at set-up.
    pub fn init(&mut self, ops: &mut EventOps) {
        for monitor in &self.monitors {
            if let Some(listener) = &monitor.listener {
                watch(ops, listener.as_raw_fd(), EventSet::IN);
            }
        }
        for fd in std::mem::take(&mut self.pending) {
            watch(ops, fd, EventSet::IN);
            self.flush(fd, ops);
        }
    }

    /// Serves an epoll event on one of the monitor descriptors; false if it is not ours.
    pub fn process(&mut self, events: &Events, ops: &mut EventOps, vm: &mut VmControl) -> bool {
        let fd = events.fd();
        if let Some(index) = self.monitors.iter().position(|m| m.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd))
        {
            self.accept(index, ops);
            return true;
        }
        let Some(client) = self.clients.get_mut(&fd) else { return false };
        let set = events.event_set();
        let readable = set.contains(EventSet::IN) || set.contains(EventSet::HANG_UP) || set.contains(EventSet::ERROR);
        if readable && !matches!(client.conn.on_readable(&self.dispatcher, vm), Ok(qmp::Status::Open)) {
            self.close(fd, ops);
            return true;
        }
        self.flush(fd, ops);
        true
    }

    fn accept(&mut self, index: usize, ops: &mut EventOps) {
        loop {
            let accepted = self.monitors[index].listener.as_ref().map(Listener::accept);
            let stream = match accepted {
                Some(Ok(Some(stream))) => stream,
                Some(Ok(None)) | None => return,
                Some(Err(e)) => {
                    log::warn!("monitor: cannot accept a client: {e}");
                    return;
                }
            };
            if self.monitors[index].clients >= MAX_CLIENTS_PER_MONITOR {
                continue; // Dropping the stream closes it.
            }
            let mut monitor = std::mem::replace(&mut self.monitors[index], Monitor::placeholder());
            let added = self.add_client(index, &mut monitor, stream);
            self.monitors[index] = monitor;
            let Some(fd) = added else { continue };
            self.pending.retain(|&p| p != fd);
            watch(ops, fd, EventSet::IN);
            self.flush(fd, ops);
        }
    }

    /// Writes what the client's socket takes; watches for EPOLLOUT while output waits.
    fn flush(&mut self, fd: RawFd, ops: &mut EventOps) {
        let Some(client) = self.clients.get_mut(&fd) else { return };
        if client.conn.flush().is_err() || client.conn.is_dead() {
            self.close(fd, ops);
            return;
        }
        let wants = client.conn.wants_write();
        if wants != client.watching_output {
            client.watching_output = wants;
            let set = if wants { EventSet::IN | EventSet::OUT } else { EventSet::IN };
            if client.conn.stream().output_fd() == fd {
                let _ = ops.modify(Events::new_raw(fd, set));
            }
        }
    }

    fn close(&mut self, fd: RawFd, ops: &mut EventOps) {
        if let Some(client) = self.clients.remove(&fd) {
            let _ = ops.remove(Events::new_raw(fd, EventSet::IN));
            self.monitors[client.monitor].clients -= 1;
        }
    }

    /// Sends `events` to every client in command mode.
    pub fn broadcast(&mut self, events: &[VmEvent], ops: &mut EventOps) {
        if events.is_empty() {
            return;
        }
        let fds: Vec<RawFd> = self.clients.keys().copied().collect();
        for fd in fds {
            if let Some(client) = self.clients.get_mut(&fd) {
                for event in events {
                    let _ = client.conn.send_event(&to_qmp(event));
                }
            }
            self.flush(fd, ops);
        }
    }

    /// At exit: gives every client's queued output (the SHUTDOWN event) a bounded time
    /// to leave, so clients see why microvm ended.
    pub fn flush_before_exit(&mut self) {
        let deadline = Instant::now() + FINAL_FLUSH_TIMEOUT;
        for client in self.clients.values_mut() {
            while client.conn.wants_write() && !client.conn.is_dead() && Instant::now() < deadline {
                if client.conn.flush().is_err() {
                    break;
                }
                if client.conn.wants_write() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

impl Monitor {
    fn placeholder() -> Monitor {
        Monitor { listener: None, pretty: false, clients: 0 }
    }
}

/// The monitors' chardevs as `query-chardev` lists them: a `-mon` under its chardev's id,
/// a `-qmp` as QEMU names it (`compat_monitorN`).
pub fn chardev_infos(configs: &[MonitorConfig]) -> Vec<crate::device_info::ChardevInfo> {
    let mut unnamed = 0;
    configs
        .iter()
        .map(|config| {
            let label = config.label.clone().unwrap_or_else(|| {
                unnamed += 1;
                format!("compat_monitor{}", unnamed - 1)
            });
            let filename = match &config.socket {
                MonitorSocket::UnixListen { path, .. } => format!("unix:{},server=on", path.display()),
                MonitorSocket::UnixConnect { path } => format!("unix:{}", path.display()),
                MonitorSocket::TcpListen { host, port, .. } => format!("tcp:{host}:{port},server=on"),
                MonitorSocket::TcpConnect { host, port } => format!("tcp:{host}:{port}"),
                MonitorSocket::Stdio => "stdio".into(),
                MonitorSocket::Fd(fd) => format!("fd:{fd}"),
            };
            crate::device_info::ChardevInfo { label, filename }
        })
        .collect()
}

fn watch(ops: &mut EventOps, fd: RawFd, set: EventSet) {
    if let Err(e) = ops.add(Events::new_raw(fd, set)) {
        log::error!("monitor: cannot watch fd {fd}: {e:?}");
    }
}

fn to_qmp(event: &VmEvent) -> qmp::Event {
    let (name, data) = match &event.kind {
        VmEventKind::Stop => ("STOP", None),
        VmEventKind::Resume => ("RESUME", None),
        VmEventKind::Shutdown { guest, reason } => {
            ("SHUTDOWN", Some(serde_json::json!({ "guest": guest, "reason": reason })))
        }
        VmEventKind::Powerdown => ("POWERDOWN", None),
        VmEventKind::Migration { status } => ("MIGRATION", Some(serde_json::json!({ "status": status }))),
        VmEventKind::BalloonChange { actual } => ("BALLOON_CHANGE", Some(serde_json::json!({ "actual": actual }))),
        VmEventKind::VserportChange { id, open } => {
            ("VSERPORT_CHANGE", Some(serde_json::json!({ "id": id, "open": open })))
        }
    };
    let since = event.at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut qmp_event = qmp::Event::new(name, data);
    qmp_event.timestamp =
        qmp::Timestamp { seconds: since.as_secs() as i64, microseconds: i64::from(since.subsec_micros()) };
    qmp_event
}
