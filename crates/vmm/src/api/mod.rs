//! Firecracker's API socket once the VM runs: one more subscriber of the controller, next
//! to the QMP monitors. The protocol is the `fc-api` crate's; this module moves bytes
//! between the socket and its connections and runs each request on the same `VmControl`
//! handlers the QMP commands use (`handlers.rs`).
//!
//! The Firecracker front end (crates/cli) serves the socket before boot and hands it here,
//! with the connections it has open (the one that sent `InstanceStart` among them), when
//! the VM starts. Nothing here blocks: a client that does not read is dropped once its
//! queued answers pass `fc_api::connection::MAX_QUEUED_OUTPUT`.

mod handlers;
pub mod metrics;
pub mod rate_limits;
pub mod snapshot;

pub use handlers::{instance_info, version};
pub use metrics::{MetricsSink, RequestCount};

use crate::monitor::VmControl;
use event_manager::{EventOps, EventSet, Events};
use fc_api::model::{Balloon, MachineConfig};
use fc_api::Connection;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// Clients served at once; more are closed on accept. Firecracker's SDKs open one or two.
const MAX_CLIENTS: usize = 16;

/// What the pre-boot configuration decided, for the answers after boot.
pub struct ApiFacts {
    /// `--id`, reported by `GET /`.
    pub id: String,
    /// `GET /machine-config`.
    pub machine_config: MachineConfig,
    /// `GET /vm/config`: the configuration as Firecracker's `FullVmConfiguration`.
    pub vm_config: serde_json::Value,
    /// `PUT /balloon`'s configuration; `amount_mib` follows `PATCH /balloon`.
    pub balloon: Option<Balloon>,
    /// The MMDS data store, kept across boot and shared with the interfaces that serve it.
    pub mmds: fc_api::mmds::Mmds,
    /// `PUT /metrics` / `--metrics-path`: written at start, every period, on `FlushMetrics`
    /// and at the end (`metrics.rs`).
    pub metrics: Option<MetricsSink>,
}

/// The API socket of a running VM, and the metrics' timer.
pub struct ApiServer {
    /// None with `--no-api`, where only the metrics are served.
    listener: Option<UnixListener>,
    /// Removed when the server goes (at exit), as Firecracker leaves no socket behind.
    path: Option<PathBuf>,
    max_payload: usize,
    clients: BTreeMap<RawFd, Client>,
    facts: ApiFacts,
    /// Whether `init` has applied the boot-time balloon size.
    started: bool,
    accepted: u64,
}

struct Client {
    conn: Connection<UnixStream>,
    watching_output: bool,
    /// Accept order, to close the oldest idle client when full.
    serial: u64,
}

impl ApiServer {
    /// Takes over the pre-boot server's listener (non-blocking) and open connections.
    pub fn new(
        listener: UnixListener,
        path: PathBuf,
        connections: Vec<Connection<UnixStream>>,
        max_payload: usize,
        facts: ApiFacts,
    ) -> ApiServer {
        let clients: BTreeMap<RawFd, Client> = connections
            .into_iter()
            .zip(0..)
            .map(|(conn, serial)| (conn.stream().as_raw_fd(), Client { conn, watching_output: false, serial }))
            .collect();
        let accepted = clients.len() as u64;
        ApiServer { listener: Some(listener), path: Some(path), max_payload, clients, facts, started: false, accepted }
    }

    /// `--no-api`: no socket, only the metrics' periodic lines (if `facts` has them).
    pub fn without_socket(facts: ApiFacts) -> ApiServer {
        ApiServer {
            listener: None,
            path: None,
            max_payload: 0,
            clients: BTreeMap::new(),
            facts,
            started: false,
            accepted: 0,
        }
    }

    /// Registers the listener and the handed-over clients, and answers what they already
    /// sent (requests pipelined after `InstanceStart`).
    pub fn init(&mut self, ops: &mut EventOps, vm: &mut VmControl) {
        if !self.started {
            self.started = true;
            handlers::apply_boot_balloon(vm, &self.facts);
            if let Some(sink) = &mut self.facts.metrics {
                if let Err(e) = sink.start() {
                    log::warn!("metrics: cannot write the metrics: {e}");
                }
            }
        }
        if let Some(sink) = &self.facts.metrics {
            watch(ops, sink.timer_fd(), EventSet::IN);
        }
        if let Some(listener) = &self.listener {
            watch(ops, listener.as_raw_fd(), EventSet::IN);
        }
        let fds: Vec<RawFd> = self.clients.keys().copied().collect();
        for fd in fds {
            watch(ops, fd, EventSet::IN);
            self.serve(fd, ops, vm);
        }
    }

    /// Serves an epoll event on one of the API's descriptors; false if it is not ours.
    pub fn process(&mut self, events: &Events, ops: &mut EventOps, vm: &mut VmControl) -> bool {
        let fd = events.fd();
        if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
            self.accept(ops);
            return true;
        }
        if let Some(sink) = self.facts.metrics.as_mut().filter(|s| s.timer_fd() == fd) {
            sink.on_timer();
            return true;
        }
        let Some(client) = self.clients.get_mut(&fd) else { return false };
        let set = events.event_set();
        if set.intersects(EventSet::IN | EventSet::HANG_UP | EventSet::ERROR) {
            if let Err(e) = client.conn.on_readable() {
                log::debug!("API client dropped: {e}");
                self.close(fd, ops);
                return true;
            }
        }
        self.serve(fd, ops, vm);
        true
    }

    /// Answers every complete request of one client, then writes, then drops it if done.
    fn serve(&mut self, fd: RawFd, ops: &mut EventOps, vm: &mut VmControl) {
        let Some(client) = self.clients.get_mut(&fd) else { return };
        let mut result = Ok(());
        while let Some(request) = client.conn.next_request() {
            let answer = match request {
                Ok(request) => {
                    let counted = RequestCount::of(&request);
                    let latency = metrics::api_latency(&request).map(|gauge| (gauge, std::time::Instant::now()));
                    let answer = handlers::handle(request, vm, &mut self.facts);
                    counted.inspect(|c| c.answered(answer.status));
                    if let Some((gauge, started)) = latency {
                        ::metrics::record_latency(gauge, started);
                    }
                    answer
                }
                Err(answer) => answer,
            };
            result = client.conn.respond(&answer);
            if result.is_err() {
                break;
            }
        }
        let result = result.and_then(|()| client.conn.flush());
        if result.is_err() || client.conn.is_done() {
            self.close(fd, ops);
            return;
        }
        let wants = client.conn.wants_write();
        if wants != client.watching_output {
            client.watching_output = wants;
            let set = if wants { EventSet::IN | EventSet::OUT } else { EventSet::IN };
            let _ = ops.modify(Events::new_raw(fd, set));
        }
    }

    fn accept(&mut self, ops: &mut EventOps) {
        loop {
            let Some(listener) = &self.listener else { return };
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("API: cannot accept a client: {e}");
                    return;
                }
            };
            if self.clients.len() >= MAX_CLIENTS {
                // Client libraries keep idle keep-alive connections (Python's pools up to
                // 20): the oldest idle one goes, else the new one is refused.
                let idle = self.clients.iter().filter(|(_, c)| c.conn.is_idle()).min_by_key(|(_, c)| c.serial);
                match idle.map(|(&fd, _)| fd) {
                    Some(fd) => self.close(fd, ops),
                    None => continue, // Dropping the stream closes it.
                }
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            let serial = self.accepted;
            self.accepted += 1;
            let conn = Connection::new(stream, self.max_payload);
            self.clients.insert(fd, Client { conn, watching_output: false, serial });
            watch(ops, fd, EventSet::IN);
        }
    }

    fn close(&mut self, fd: RawFd, ops: &mut EventOps) {
        // The stream closes only after epoll forgets it: a closed fd cannot be removed.
        if let Some(client) = self.clients.remove(&fd) {
            let _ = ops.remove(Events::new_raw(fd, EventSet::IN));
            drop(client);
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // The last line: what happened since the previous one, and how the VM ended.
        if let Some(sink) = self.facts.metrics.as_mut().filter(|_| self.started) {
            if let Err(e) = sink.flush() {
                log::warn!("metrics: cannot write the metrics: {e}");
            }
        }
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn watch(ops: &mut EventOps, fd: RawFd, set: EventSet) {
    if let Err(e) = ops.add(Events::new_raw(fd, set)) {
        log::error!("API: cannot watch fd {fd}: {e:?}");
    }
}
