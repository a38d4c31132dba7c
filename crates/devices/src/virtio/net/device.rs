//! The virtio-net device model: queues, features, configuration space, and
//! the event handler that moves frames between the queues and the backend
//! (a tap or a socket, `backend.rs`; "tap" below means either).

use super::backend::{Backend, RX_BUFFER_LEN};
use super::mmds::{Detour, MmdsAttachment};
use super::rx::{self, Delivery, Scratch};
use super::tap::VNET_HDR_LEN;
use super::tx::{self, MAX_TX_PACKET};
use crate::rate_limiter::{Gate, LimiterConfig};
use crate::virtio::{
    come_back_later, read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, CHAINS_PER_TURN,
};
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use vmm_sys_util::eventfd::EventFd;

// What the device offers and shows: its features, config space and MAC address.
pub(crate) use super::features::*;

pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
const QUEUE_SIZE: u16 = 256;
/// Frames read from the tap per event before other events get a turn; the
/// tap stays readable (level-triggered), so the rest follow.
const RX_BUDGET: usize = 256;
/// Event data of the tap fd (queue events carry their queue index).
const TAP_EVENT: u32 = 0x7461_7000;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(
        "invalid MAC address {0}: it must be a unicast address (lowest bit of the first byte clear), not all zeros"
    )]
    InvalidMac(String),
    #[error("virtio-net: cannot create an eventfd: {0}")]
    Event(std::io::Error),
    #[error("virtio-net: cannot create a rate limiter's timer: {0}")]
    Timer(#[source] std::io::Error),
}

/// Things logged once per device, so a misbehaving guest or a broken tap
/// cannot flood the host log.
#[derive(Clone, Copy)]
enum Complaint {
    TxMalformed = 0,
    TxWrite,
    RxMalformed,
    RxTooBig,
    RxBadFrame,
}

/// The tap fd in the event loop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TapWatch {
    /// Not registered yet (before `init`).
    Unregistered,
    /// Registered, asking for these events (readable while frames can go
    /// to the guest; writable while a stream socket holds part of a frame).
    Watching(EventSet),
    /// The tap failed or disappeared: unregistered for good.
    Gone,
}

pub struct Net {
    tap: Backend,
    mac: [u8; 6],
    features: u64,
    activation: Activation,
    /// Queue events of an activation that was reset, kept open until the
    /// event loop has unregistered them: once closed, their fd numbers
    /// could no longer be removed from epoll and might be reused.
    retired_events: Vec<EventFd>,
    mergeable: bool,
    tap_watch: TapWatch,
    /// Set when the tap cannot be read any more; the event handler then
    /// unregisters it.
    tap_failed: bool,
    rx_buf: Vec<u8>,
    /// Length of a frame read from the tap and not yet delivered: the guest
    /// had no buffers. While it is there, the tap is not read.
    rx_pending: Option<usize>,
    /// The pending frame has been charged to the RX rate limit (it may still wait for
    /// buffers: it is not charged twice).
    rx_paid: bool,
    /// Rate limits on frames to the guest and from it. A frame over the RX budget stays
    /// pending (the tap unwatched) and one over the TX budget in the ring, until the
    /// gate's timer fires.
    rx_gate: Gate,
    tx_gate: Gate,
    rx_scratch: Scratch,
    rx_broken: bool,
    tx_buf: Vec<u8>,
    tx_broken: bool,
    complained: u32,
    /// Its `net_<iface_id>` metrics (Firecracker's per-interface section); see
    /// [`Net::count_as`].
    metrics: Arc<metrics::NetMetrics>,
    /// Firecracker's MMDS, on an interface `PUT /mmds/config` lists.
    mmds: Option<Detour>,
}

impl Net {
    /// A virtio-net device on `tap` (a `Tap` or another `Backend`), with the
    /// given MAC address or a random locally administered one (02:xx:xx:xx:xx:xx).
    pub fn new(tap: impl Into<Backend>, mac: Option<[u8; 6]>) -> Result<Net, NetError> {
        let tap = tap.into();
        let mac = match mac {
            Some(mac) if mac[0] & 1 != 0 || mac == [0; 6] => return Err(NetError::InvalidMac(format_mac(&mac))),
            Some(mac) => mac,
            None => random_mac(),
        };
        Ok(Net {
            features: offloads_offered(tap.has_vnet_hdr(), tap.supports_ufo()),
            tap,
            mac,
            activation: Activation::new().map_err(NetError::Event)?,
            retired_events: Vec::new(),
            mergeable: false,
            tap_watch: TapWatch::Unregistered,
            tap_failed: false,
            rx_buf: vec![0; RX_BUFFER_LEN],
            rx_pending: None,
            rx_paid: false,
            rx_gate: Gate::new(&LimiterConfig::default()),
            tx_gate: Gate::new(&LimiterConfig::default()),
            rx_scratch: Scratch::default(),
            rx_broken: false,
            tx_buf: Vec::with_capacity(MAX_TX_PACKET),
            tx_broken: false,
            complained: 0,
            metrics: metrics::NET_DEVICES.register(""),
            mmds: None,
        })
    }

    /// Counts this device under `iface_id` too: its own `net_<iface_id>` section in
    /// Firecracker's metrics (until then it counts in the aggregate `net` only).
    pub fn count_as(&mut self, iface_id: &str) {
        self.metrics = metrics::NET_DEVICES.register(iface_id);
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn tap_name(&self) -> &str {
        self.tap.name()
    }

    /// Sets the RX and TX rate limits (at start, or Firecracker's `PATCH
    /// /network-interfaces`), with full buckets. Called off the device thread at run
    /// time: that thread is woken to serve what waited for the old limits.
    pub fn set_limits(&mut self, rx: &LimiterConfig, tx: &LimiterConfig) {
        self.rx_gate.set(rx);
        self.tx_gate.set(tx);
        self.activation.wake();
    }

    /// Serves the MMDS on this interface (before the guest runs).
    pub fn set_mmds(&mut self, attachment: &MmdsAttachment) {
        self.mmds = Some(Detour::new(attachment));
    }

    fn process_tx(&mut self) {
        let Net { activation, tap, tx_buf, tx_broken, complained, tx_gate, mmds, .. } = self;
        let Some(ctx) = activation.active.as_mut() else { return };
        if *tx_broken || tx_gate.blocked() {
            return;
        }
        let mem = &ctx.mem;
        let queue = &mut ctx.queues[TX_QUEUE];
        let mut used = false;
        let mut failure = None;
        let mut served = 0;
        let _ = queue.disable_notification(mem);
        loop {
            if tap.tx_blocked() {
                // The socket is full: the chains wait in the ring (kicks
                // stay off) until it is writable again.
                break;
            }
            if served == CHAINS_PER_TURN {
                // Kicks stay off: the device comes back for the rest on the next turn.
                come_back_later(&ctx.queue_events[TX_QUEUE]);
                break;
            }
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    failure = Some(format!("bad TX avail ring ({e})"));
                    break;
                }
            };
            let Some(chain) = chain else {
                // Re-enable notifications, and look again: the guest may have
                // added a chain while they were off.
                match queue.enable_notification(mem) {
                    Ok(true) => {
                        let _ = queue.disable_notification(mem);
                        continue;
                    }
                    Ok(false) => break,
                    Err(e) => {
                        failure = Some(format!("cannot enable TX notifications ({e})"));
                        break;
                    }
                }
            };
            let head = chain.head_index();
            if !tx_gate.admit(1, || tx::frame_len(&chain)) {
                // Left in the ring, kicks off, until the gate's timer fires.
                queue.go_to_previous_position();
                break;
            }
            served += 1;
            match tx::gather(mem, chain, tx_buf) {
                Ok(()) if mmds.as_mut().is_some_and(|m| m.take(tx_buf)) => {}
                Ok(()) => {
                    self.metrics.tx_count.inc();
                    if let Err(e) = tap.write(tx_buf) {
                        self.metrics.tap_write_fails.inc();
                        self.metrics.tx_fails.inc();
                        if first_time(complained, Complaint::TxWrite) {
                            log::warn!(
                                "virtio-net {}: writing to the tap failed ({e}); frame dropped (further failures are not logged)",
                                tap.name()
                            );
                        }
                    } else {
                        // The frame without its virtio-net header, as the guest sent it.
                        self.metrics.tx_packets_count.inc();
                        self.metrics.tx_bytes_count.add(tx_buf.len().saturating_sub(VNET_HDR_LEN) as u64);
                    }
                }
                Err(why) => {
                    self.metrics.tx_malformed_frames.inc();
                    if first_time(complained, Complaint::TxMalformed) {
                        log::warn!(
                            "virtio-net {}: malformed TX chain ({why}); dropped (further malformed chains are not logged)",
                            tap.name()
                        );
                    }
                }
            }
            if let Err(e) = queue.add_used(mem, head, 0) {
                failure = Some(format!("cannot return TX chain {head} ({e})"));
                break;
            }
            used = true;
        }
        if used && queue.needs_notification(mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
        if let Some(why) = failure {
            // The guest's ring is corrupt: stop serving TX until a reset.
            log::warn!("virtio-net {}: {why}; TX stopped, the device needs a reset", tap.name());
            *tx_broken = true;
            ctx.interrupt.signal_needs_reset();
        }
    }

    fn process_rx(&mut self) {
        let Net {
            activation,
            tap,
            mergeable,
            rx_buf,
            rx_pending,
            rx_paid,
            rx_gate,
            rx_scratch,
            rx_broken,
            tap_failed,
            complained,
            mmds,
            ..
        } = self;
        let Some(ctx) = activation.active.as_mut() else { return };
        if *rx_broken {
            return;
        }
        let mem = &ctx.mem;
        let queue = &mut ctx.queues[RX_QUEUE];
        let mut used = false;
        let mut failure = None;
        let mut budget = RX_BUDGET;
        loop {
            if rx_pending.is_none() {
                // The MMDS's answers first: they wait in the VMM, not in the tap.
                *rx_pending = mmds.as_mut().and_then(|m| m.next_rx(rx_buf));
            }
            let len = match *rx_pending {
                Some(len) => len,
                None => {
                    // Frames a stream socket's reader already holds are taken
                    // past the budget (at most a buffer's worth): no readable
                    // event would bring the device back for them.
                    if (budget == 0 && !tap.has_buffered_frame()) || *tap_failed {
                        break;
                    }
                    budget = budget.saturating_sub(1);
                    match tap.read(rx_buf) {
                        Ok(n) if n < VNET_HDR_LEN + 14 || n > rx_buf.len() => {
                            if first_time(complained, Complaint::RxBadFrame) {
                                log::warn!(
                                    "virtio-net {}: the tap gave a frame of {n} bytes; dropped (further such frames are not logged)",
                                    tap.name()
                                );
                            }
                            continue;
                        }
                        Ok(n) => {
                            *rx_pending = Some(n);
                            n
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            self.metrics.tap_read_fails.inc();
                            log::error!(
                                "virtio-net {}: reading the tap failed ({e}); the guest receives nothing more",
                                tap.name()
                            );
                            *tap_failed = true;
                            break;
                        }
                    }
                }
            };
            if !*rx_paid {
                if !rx_gate.admit(1, || len.saturating_sub(VNET_HDR_LEN) as u64) {
                    // Pending, the tap unwatched, until the gate's timer fires.
                    break;
                }
                *rx_paid = true;
            }
            let mut malformed = 0;
            let delivery = rx::deliver(mem, queue, &mut rx_buf[..len], *mergeable, rx_scratch, &mut malformed);
            if malformed > 0 {
                used = true;
                if first_time(complained, Complaint::RxMalformed) {
                    log::warn!(
                        "virtio-net {}: malformed RX chain (device-readable buffer, outside guest memory, looping, or \
                         smaller than the {VNET_HDR_LEN}-byte header); returned empty (further ones are not logged)",
                        tap.name()
                    );
                }
            }
            match delivery {
                Delivery::Delivered(_) => {
                    self.metrics.rx_count.inc();
                    self.metrics.rx_packets_count.inc();
                    self.metrics.rx_bytes_count.add(len.saturating_sub(VNET_HDR_LEN) as u64);
                    *rx_pending = None;
                    *rx_paid = false;
                    used = true;
                }
                Delivery::TooBig { capacity } => {
                    self.metrics.rx_fails.inc();
                    *rx_pending = None;
                    *rx_paid = false;
                    if first_time(complained, Complaint::RxTooBig) {
                        let how = if *mergeable { "the RX ring holds" } else { "an RX chain holds (no MRG_RXBUF)" };
                        log::warn!(
                            "virtio-net {}: a {len}-byte frame does not fit: {how} {capacity} bytes; dropped (further drops are not logged)",
                            tap.name()
                        );
                    }
                }
                Delivery::NoBuffers { seen_avail } => match rx::wait_for_buffers(mem, queue, seen_avail) {
                    Ok(true) => continue,
                    // The frame stays pending and the tap unwatched until the
                    // guest posts buffers and notifies.
                    Ok(false) => break,
                    Err(why) => {
                        failure = Some(why);
                        break;
                    }
                },
                Delivery::Broken(why) => {
                    failure = Some(why);
                    break;
                }
            }
        }
        if used && queue.needs_notification(mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
        if let Some(why) = failure {
            log::warn!("virtio-net {}: {why}; RX stopped, the device needs a reset", tap.name());
            *rx_broken = true;
            ctx.interrupt.signal_needs_reset();
        }
    }

    /// Watches the tap for readable frames only while they can go somewhere,
    /// and for room to write only while a frame waits for it.
    fn update_tap_watch(&mut self, ops: &mut EventOps) {
        let TapWatch::Watching(watched) = self.tap_watch else { return };
        if self.tap_failed {
            let _ = ops.remove(Events::new(&self.tap, EventSet::empty()));
            self.tap_watch = TapWatch::Gone;
            return;
        }
        let mut set = EventSet::empty();
        if self.activation.active.is_some() && !self.rx_broken && self.rx_pending.is_none() {
            set |= EventSet::IN;
        }
        if self.tap.tx_blocked() {
            set |= EventSet::OUT;
        }
        if set != watched {
            match ops.modify(Events::with_data(&self.tap, TAP_EVENT, set)) {
                Ok(()) => self.tap_watch = TapWatch::Watching(set),
                Err(e) => log::error!("virtio-net {}: cannot change the tap's watch: {e:?}", self.tap.name()),
            }
        }
    }

    fn unregister_retired(&mut self, ops: &mut EventOps) {
        for evt in self.retired_events.drain(..) {
            let _ = ops.remove(Events::new(&evt, EventSet::IN));
        }
    }
}

fn first_time(complained: &mut u32, what: Complaint) -> bool {
    let bit = 1u32 << what as u32;
    let first = *complained & bit == 0;
    *complained |= bit;
    first
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        self.features
    }

    /// struct virtio_net_config: mac, status, max_virtqueue_pairs.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&config_space(&self.mac), offset, data);
    }

    fn activate(&mut self, mut ctx: ActivateContext) -> Result<(), ActivateError> {
        if ctx.queues.len() != 2 || ctx.queue_events.len() != 2 {
            self.metrics.activate_fails.inc();
            return Err(ActivateError::Backend(format!("virtio-net: {} queues given, 2 needed", ctx.queues.len())));
        }
        let acked = ctx.acked_features;
        let event_idx = acked & F_EVENT_IDX != 0;
        for queue in &mut ctx.queues {
            queue.set_event_idx(event_idx);
        }
        self.tap.set_offload(tap_offloads(acked)).map_err(|e| {
            ActivateError::Backend(format!("virtio-net: cannot set the offloads of tap {}: {e}", self.tap.name()))
        })?;
        self.mergeable = acked & F_MRG_RXBUF != 0;
        self.rx_pending = None;
        self.rx_paid = false;
        self.rx_broken = false;
        self.tx_broken = false;
        self.activation.activate(ctx)
    }

    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }

    fn save(&mut self) -> Result<crate::virtio::VirtioState, crate::state::StateError> {
        Ok(crate::virtio::VirtioState::Net(super::NetState { mac: self.mac }))
    }

    fn restore(&mut self, state: crate::virtio::VirtioState) -> Result<(), crate::state::StateError> {
        let crate::virtio::VirtioState::Net(saved) = state else { return Err(state.mismatch("virtio-net")) };
        if saved.mac != self.mac {
            log::info!("virtio-net {}: the guest keeps its MAC address {}", self.tap.name(), format_mac(&saved.mac));
        }
        self.mac = saved.mac;
        Ok(())
    }

    fn reset(&mut self) -> bool {
        if let Some(ctx) = self.activation.active.take() {
            self.retired_events.extend(ctx.queue_events);
        }
        self.activation.deactivate();
        self.rx_pending = None;
        self.rx_paid = false;
        self.rx_gate.waker.cancel();
        self.tx_gate.waker.cancel();
        self.mergeable = false;
        if let Err(e) = self.tap.set_offload(0) {
            log::warn!("virtio-net {}: cannot clear the tap's offloads: {e}", self.tap.name());
        }
        true
    }
}

impl MutEventSubscriber for Net {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.rx_gate.waker.watch(ops);
        self.tx_gate.waker.watch(ops);
        // Registered from the start, reading only once the guest is there:
        // errors and hang-ups (the interface deleted) still arrive.
        match ops.add(Events::with_data(&self.tap, TAP_EVENT, EventSet::empty())) {
            Ok(()) => self.tap_watch = TapWatch::Watching(EventSet::empty()),
            Err(e) => {
                log::error!("virtio-net {}: cannot watch the tap: {e:?}", self.tap.name());
                self.tap_watch = TapWatch::Gone;
            }
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        self.unregister_retired(ops);
        if self.activation.is_wake_event(&events) {
            if self.activation.on_wake(ops) {
                self.process_tx();
                self.process_rx();
            }
        } else if self.rx_gate.waker.is_expiry(&events) {
            self.process_rx();
        } else if self.tx_gate.waker.is_expiry(&events) {
            self.process_tx();
        } else if events.fd() == self.tap.as_raw_fd() {
            if events.event_set().intersects(EventSet::ERROR | EventSet::HANG_UP) {
                log::error!(
                    "virtio-net {}: {}; the guest's network is down",
                    self.tap.name(),
                    self.tap.hang_up_reason()
                );
                self.tap_failed = true;
            } else {
                if events.event_set().contains(EventSet::OUT) {
                    if let Err(e) = self.tap.flush() {
                        log::error!(
                            "virtio-net {}: writing failed ({e}); the guest's network is down",
                            self.tap.name()
                        );
                        self.tap_failed = true;
                    }
                    self.process_tx();
                }
                if events.event_set().contains(EventSet::IN) {
                    self.metrics.rx_tap_event_count.inc();
                    self.process_rx();
                }
            }
        } else {
            let queue = events.data() as usize;
            if let Some(evt) = self.activation.active.as_ref().and_then(|ctx| ctx.queue_events.get(queue)) {
                let _ = evt.read();
            }
            match queue {
                RX_QUEUE => {
                    self.metrics.rx_queue_event_count.inc();
                    self.process_rx();
                }
                TX_QUEUE => {
                    self.metrics.tx_queue_event_count.inc();
                    self.process_tx();
                }
                _ => {}
            }
        }
        if self.mmds.as_ref().is_some_and(|m| m.answered) {
            self.process_rx();
        }
        self.update_tap_watch(ops);
        // A limit that blocked for the first time made its refill timer.
        self.rx_gate.waker.watch(ops);
        self.tx_gate.waker.watch(ops);
    }
}
