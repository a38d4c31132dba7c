//! Firecracker's hybrid vsock: a virtio-vsock device (virtio 1.2 §5.10) whose host side
//! is Unix sockets rather than the kernel's AF_VSOCK, so it needs no /dev/vhost-vsock.
//!
//! - A host process connects to the listener at `uds_path`, writes `CONNECT <port>\n`
//!   and, once the guest accepts, reads `OK <host port>\n`; the rest of the stream is
//!   the connection to the guest's listener on `<port>`.
//! - A guest connecting to host (CID 2) port P reaches the listener at `<uds_path>_P`.
//!
//! The device serves all three queues on the `virtio` thread: rx (0) carries our packets
//! to the guest, tx (1) the guest's, event (2) the transport reset a restored device owes.
//! Every host stream is a non-blocking socket in the same epoll set, watched for input only
//! while the guest can take its data (credit and rx buffers) and for output only while the
//! guest's data waits for a slow peer (at most [`conn::CONN_BUF`] a connection).

mod conn;
mod guest;
mod host;
pub mod packet;
#[cfg(test)]
mod tests;

use self::conn::{Conn, Key};
use self::packet::Header;
use super::vsock_event::post_transport_reset;
use super::{
    read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VirtioState, VIRTIO_F_VERSION_1,
};
use crate::noise::LineBudget;
use crate::oneshot_timer::{acknowledge_expiry, OneShotTimer};
use crate::state::StateError;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;
use virtio_bindings::virtio_ids::VIRTIO_ID_VSOCK;

/// rx, tx and event, as Firecracker's.
const QUEUE_SIZES: [u16; 3] = [256, 256, 256];
const RX: usize = 0;
const TX: usize = 1;
const EVENT: usize = 2;
/// Open connections at once; a REQUEST or CONNECT beyond is refused (RST, or the host
/// stream closed). With [`conn::CONN_BUF`] this bounds what the guest can make us buffer.
pub const MAX_CONNECTIONS: usize = 256;
/// Host connections that have not sent their `CONNECT` line yet; more are closed at once.
const MAX_HANDSHAKES: usize = 64;
/// Control packets (RESPONSE, RST, ...) owed to the guest beyond which the tx queue is left
/// until the guest takes them: a guest that posts no rx buffers cannot make the list grow.
const MAX_CONTROL: usize = 256;
/// How long a guest told that its host peer closed has to answer with its RST before the
/// device kills the connection: Firecracker's CONN_SHUTDOWN_TIMEOUT_MS.
pub const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2000);

#[derive(Debug, thiserror::Error)]
pub enum HybridVsockError {
    #[error("uds_path {path}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("guest_cid {0}: must be 3 or more and below 2^32 - 1")]
    Cid(u64),
    #[error("cannot create an eventfd: {0}")]
    EventFd(#[source] std::io::Error),
    #[error("cannot create the connections' close timer: {0}")]
    Timer(#[source] std::io::Error),
}

/// What a snapshot keeps beyond the queues: the CID and socket the guest had. Connections
/// are not kept (as in Firecracker): the restored device sends a transport reset and the
/// guest drops them.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HybridVsockState {
    pub cid: u64,
    pub uds_path: PathBuf,
}

/// A host connection before its `CONNECT <port>\n` line.
struct Handshake {
    stream: UnixStream,
    line: Vec<u8>,
}

pub struct HybridVsock {
    cid: u64,
    uds_path: PathBuf,
    listener: UnixListener,
    activation: Activation,
    conns: BTreeMap<Key, Conn>,
    by_fd: HashMap<RawFd, Key>,
    handshakes: HashMap<RawFd, Handshake>,
    /// Packets owed to the guest that carry no data, oldest first.
    control: VecDeque<Header>,
    /// Connections owed a credit update.
    credit_owed: VecDeque<Key>,
    /// Connections whose host peer may have data (`Conn::readable`), served in turn.
    ready: VecDeque<Key>,
    next_host_port: u32,
    /// The tx queue was left because `control` was full.
    tx_waiting: bool,
    reset_owed: bool,
    /// Connections of a reset device, dropped on the device thread once unwatched.
    retired: Vec<Conn>,
    /// Set once a corrupt ring stopped the device (until the driver resets it).
    broken: bool,
    /// Fires at the earliest `Conn::close_deadline` (made here, on the thread building the
    /// VM, so the device thread only arms it).
    close_timer: OneShotTimer,
    /// The deadline the timer is armed for, if it is.
    close_timer_at: Option<Instant>,
    payload: Vec<u8>,
    bad_packet_lines: LineBudget,
    ring_lines: LineBudget,
}

impl HybridVsock {
    /// Listens on `uds_path` (which must not exist, as in Firecracker); on the thread
    /// building the VM.
    pub fn new(cid: u64, uds_path: &Path) -> Result<Self, HybridVsockError> {
        if !(3..u64::from(u32::MAX)).contains(&cid) {
            return Err(HybridVsockError::Cid(cid));
        }
        let listen = |source| HybridVsockError::Listen { path: uds_path.to_owned(), source };
        let listener = UnixListener::bind(uds_path).map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        Ok(HybridVsock {
            cid,
            uds_path: uds_path.to_owned(),
            listener,
            activation: Activation::new().map_err(HybridVsockError::EventFd)?,
            conns: BTreeMap::new(),
            by_fd: HashMap::new(),
            handshakes: HashMap::new(),
            control: VecDeque::new(),
            credit_owed: VecDeque::new(),
            ready: VecDeque::new(),
            next_host_port: host::FIRST_HOST_PORT,
            tx_waiting: false,
            reset_owed: false,
            retired: Vec::new(),
            broken: false,
            close_timer: OneShotTimer::new().map_err(HybridVsockError::Timer)?,
            close_timer_at: None,
            payload: Vec::new(),
            bad_packet_lines: LineBudget::new(),
            ring_lines: LineBudget::new(),
        })
    }

    pub fn cid(&self) -> u64 {
        self.cid
    }

    pub fn uds_path(&self) -> &Path {
        &self.uds_path
    }

    /// Open connections (both directions), for tests and reports.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Bytes of guest data held for slow host peers, over every connection.
    pub fn buffered(&self) -> usize {
        self.conns.values().map(Conn::pending_guest_bytes).sum()
    }

    /// Drops a connection, unwatching its stream first (event-manager must forget an fd
    /// before it is closed and its number reused).
    /// True if there was one.
    fn remove(&mut self, key: Key, ops: &mut EventOps) -> bool {
        let Some(conn) = self.conns.remove(&key) else { return false };
        self.by_fd.remove(&conn.stream.as_raw_fd());
        unwatch(conn, ops);
        metrics::VSOCK.conns_removed.inc();
        true
    }

    /// Drops a connection the device gives up on (a broken peer, a bad packet) and tells
    /// the guest so; an RST for a connection that never was (a refused REQUEST) kills none.
    fn reset_conn(&mut self, key: Key, ops: &mut EventOps) {
        if self.remove(key, ops) {
            metrics::VSOCK.conns_killed.inc();
        }
        self.control.push_back(self.reply(key, packet::op::RST));
    }

    /// Ends a connection both sides closed: the guest waits for our RST to free its socket.
    fn close_conn(&mut self, key: Key, ops: &mut EventOps) {
        self.remove(key, ops);
        self.control.push_back(self.reply(key, packet::op::RST));
    }

    /// A header for a connection the device may no longer hold (an RST).
    fn reply(&self, key: Key, op: u16) -> Header {
        Header {
            src_cid: packet::HOST_CID,
            dst_cid: self.cid,
            src_port: key.host_port,
            dst_port: key.guest_port,
            kind: packet::TYPE_STREAM,
            op,
            ..Header::default()
        }
    }

    /// The close timer fired: every connection whose guest did not answer its host
    /// peer's close in time is killed (an RST tells the guest), and the timer is armed
    /// for the next deadline.
    fn on_close_timer(&mut self, ops: &mut EventOps) {
        acknowledge_expiry(self.close_timer.as_raw_fd());
        let now = Instant::now();
        let expired: Vec<Key> =
            self.conns.values().filter(|c| c.close_deadline.is_some_and(|d| d <= now)).map(|c| c.key).collect();
        for key in expired {
            self.reset_conn(key, ops);
        }
        self.close_timer_at = self.conns.values().filter_map(|c| c.close_deadline).min();
        let after = self.close_timer_at.map(|d| d.saturating_duration_since(now));
        if let Err(e) = self.close_timer.arm(after) {
            log::error!("hybrid vsock: cannot arm the close timer: {e}");
        }
    }

    /// Makes epoll watch what each connection needs now.
    fn sync_watches(&mut self, ops: &mut EventOps) {
        for conn in self.conns.values_mut() {
            let want = conn.interest();
            let result = match conn.watched {
                None if want.is_empty() => Ok(()),
                None => ops.add(Events::new(&conn.stream, want)),
                Some(now) if want.is_empty() => ops.remove(Events::new(&conn.stream, now)),
                Some(now) if now == want => Ok(()),
                Some(_) => ops.modify(Events::new(&conn.stream, want)),
            };
            match result {
                Ok(()) => conn.watched = (!want.is_empty()).then_some(want),
                Err(e) => {
                    metrics::VSOCK.conn_event_fails.inc();
                    log::error!("hybrid vsock: cannot watch a host connection: {e:?}")
                }
            }
        }
    }

    /// After any event: the guest's packets if it kicked tx (or tx was left for later),
    /// then our packets into its rx buffers, then the watches.
    fn serve(&mut self, tx: bool, ops: &mut EventOps) {
        if !self.broken && tx {
            self.process_tx(ops);
        }
        if !self.broken {
            self.fill_rx(ops);
        }
        if self.tx_waiting && self.control.len() < MAX_CONTROL {
            self.tx_waiting = false;
            if let Some(ctx) = &self.activation.active {
                super::come_back_later(&ctx.queue_events[TX]);
            }
        }
        self.sync_watches(ops);
    }

    /// Stops serving a corrupt ring until the driver resets the device.
    fn stop_serving(&mut self, why: std::fmt::Arguments) {
        if !self.broken {
            log::warn!("hybrid vsock: {why}; device needs reset");
            self.broken = true;
            if let Some(ctx) = &self.activation.active {
                ctx.interrupt.signal_needs_reset();
            }
        }
    }

    fn send_transport_reset(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        if self.reset_owed && post_transport_reset(ctx, EVENT, "hybrid vsock") {
            self.reset_owed = false;
        }
    }

    /// Which queue an event is, if it is one.
    fn queue_of(&self, fd: RawFd) -> Option<usize> {
        let ctx = self.activation.active.as_ref()?;
        ctx.queue_events.iter().position(|e| e.as_raw_fd() == fd)
    }
}

/// Firecracker's per-queue event counts and failures (the event queue has no count).
fn count_queue_event(queue: usize, read: bool) {
    let m = &metrics::VSOCK;
    match (queue, read) {
        (RX, true) => m.rx_queue_event_count.inc(),
        (RX, false) => m.rx_queue_event_fails.inc(),
        (TX, true) => m.tx_queue_event_count.inc(),
        (TX, false) => m.tx_queue_event_fails.inc(),
        (_, false) => m.ev_queue_event_fails.inc(),
        _ => {}
    }
}

/// Gives `conn` its close deadline (the guest was just told its host peer closed) and arms
/// `timer` for it unless it is armed already (for an earlier deadline: they only grow).
fn start_close_deadline(conn: &mut Conn, timer: &mut OneShotTimer, timer_at: &mut Option<Instant>) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    conn.close_deadline = Some(deadline);
    if timer_at.is_none() {
        match timer.arm(Some(CLOSE_TIMEOUT)) {
            Ok(()) => *timer_at = Some(deadline),
            Err(e) => log::error!("hybrid vsock: cannot arm the close timer: {e}"),
        }
    }
}

fn unwatch(conn: Conn, ops: &mut EventOps) {
    if let Some(now) = conn.watched {
        if let Err(e) = ops.remove(Events::new(&conn.stream, now)) {
            log::error!("hybrid vsock: cannot unwatch a host connection: {e:?}");
        }
    }
}

impl VirtioDevice for HybridVsock {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_SIZES
    }
    /// Stream sockets only (no VIRTIO_VSOCK_F_SEQPACKET), as Firecracker.
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }
    /// `struct virtio_vsock_config { le64 guest_cid; }`
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.cid.to_le_bytes(), offset, data);
    }
    /// The config space is read-only: a write is refused (Firecracker counts it).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {
        metrics::VSOCK.cfg_fails.inc();
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.activation.activate(ctx).inspect_err(|_| metrics::VSOCK.activate_fails.inc())
    }
    /// Every connection ends (the host peers see their streams close); the device thread
    /// unwatches and drops them on its next turn.
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.by_fd.clear();
        metrics::VSOCK.conns_removed.add(self.conns.len() as u64);
        self.retired.extend(std::mem::take(&mut self.conns).into_values());
        self.control.clear();
        self.credit_owed.clear();
        self.ready.clear();
        self.tx_waiting = false;
        self.reset_owed = false;
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    fn save(&mut self) -> Result<VirtioState, StateError> {
        Ok(VirtioState::HybridVsock(HybridVsockState { cid: self.cid, uds_path: self.uds_path.clone() }))
    }
    /// The restored device keeps the CID and socket of the restoring configuration
    /// (`vsock_override` may move the socket); the guest gets a transport reset, drops the
    /// saved VM's connections and reads the CID again.
    fn restore(&mut self, state: VirtioState) -> Result<(), StateError> {
        let VirtioState::HybridVsock(saved) = state else { return Err(state.mismatch("hybrid vsock")) };
        if saved.cid != self.cid {
            log::info!("hybrid vsock: the guest had CID {}; it is told to take {} now", saved.cid, self.cid);
        }
        self.reset_owed = self.activation.active.is_some();
        Ok(())
    }
}

impl MutEventSubscriber for HybridVsock {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        if let Err(e) = ops.add(Events::new(&self.listener, EventSet::IN)) {
            log::error!("hybrid vsock: cannot watch {}: {e:?}", self.uds_path.display());
        }
        if let Err(e) = ops.add(Events::new(&self.close_timer, EventSet::IN)) {
            log::error!("hybrid vsock: cannot watch the close timer: {e:?}");
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let fd = events.fd();
        if self.activation.is_wake_event(&events) {
            for conn in self.retired.drain(..) {
                unwatch(conn, ops);
            }
            if self.activation.on_wake(ops) {
                self.send_transport_reset();
                self.serve(true, ops);
            }
            return;
        }
        if fd == self.listener.as_raw_fd() {
            self.accept(ops);
            return;
        }
        if fd == self.close_timer.as_raw_fd() {
            self.on_close_timer(ops);
            self.serve(false, ops);
            return;
        }
        if self.handshakes.contains_key(&fd) {
            self.read_handshake(fd, ops);
            self.serve(false, ops);
            return;
        }
        if let Some(queue) = self.queue_of(fd) {
            if let Some(ctx) = &self.activation.active {
                count_queue_event(queue, ctx.queue_events[queue].read().is_ok());
            }
            if queue == EVENT {
                self.send_transport_reset();
            }
            self.serve(queue == TX, ops);
            return;
        }
        if let Some(&key) = self.by_fd.get(&fd) {
            self.host_event(key, events.event_set(), ops);
            self.serve(false, ops);
        }
    }
}
