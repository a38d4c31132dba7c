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
pub use metrics::MetricsSink;

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
    /// The MMDS data store, kept across boot.
    pub mmds: fc_api::mmds::MmdsStore,
    /// `PUT /metrics` / `--metrics-path`, written on `FlushMetrics`.
    pub metrics: Option<MetricsSink>,
}

/// The API socket of a running VM.
pub struct ApiServer {
    listener: UnixListener,
    /// Removed when the server goes (at exit), as Firecracker leaves no socket behind.
    path: PathBuf,
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
        ApiServer { listener, path, max_payload, clients, facts, started: false, accepted }
    }

    /// Registers the listener and the handed-over clients, and answers what they already
    /// sent (requests pipelined after `InstanceStart`).
    pub fn init(&mut self, ops: &mut EventOps, vm: &mut VmControl) {
        if !self.started {
            self.started = true;
            handlers::apply_boot_balloon(vm, &self.facts);
        }
        watch(ops, self.listener.as_raw_fd(), EventSet::IN);
        let fds: Vec<RawFd> = self.clients.keys().copied().collect();
        for fd in fds {
            watch(ops, fd, EventSet::IN);
            self.serve(fd, ops, vm);
        }
    }

    /// Serves an epoll event on one of the API's descriptors; false if it is not ours.
    pub fn process(&mut self, events: &Events, ops: &mut EventOps, vm: &mut VmControl) -> bool {
        let fd = events.fd();
        if fd == self.listener.as_raw_fd() {
            self.accept(ops);
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
                Ok(request) => handlers::handle(request, vm, &mut self.facts),
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
            let stream = match self.listener.accept() {
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
        let _ = std::fs::remove_file(&self.path);
    }
}

fn watch(ops: &mut EventOps, fd: RawFd, set: EventSet) {
    if let Err(e) = ops.add(Events::new_raw(fd, set)) {
        log::error!("API: cannot watch fd {fd}: {e:?}");
    }
}
