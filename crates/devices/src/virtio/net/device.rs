//! The virtio-net device model: queues, features, configuration space, and
//! the event handler that moves frames between the queues and the backend
//! (a tap or a socket, `backend.rs`; "tap" below means either). With `mq=on`
//! several queue pairs, each with its own tap queue (`datapath.rs`), and the
//! control queue (`ctrl.rs`).

use super::backend::Backend;
use super::ctrl::{self, Layout};
use super::mmds::{Detour, MmdsAttachment};
use super::pair::{Pair, TapWatch};
use super::rx::Scratch;
use super::tap::{detach_after_first, DetachError};
use super::tx::MAX_TX_PACKET;
use crate::rate_limiter::{Gate, LimiterConfig};
use crate::virtio::{read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice};
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use vmm_sys_util::eventfd::EventFd;

// What the device offers and shows: its features, config space and MAC address.
pub(crate) use super::features::*;

/// Queue indices within a pair (pair k's are 2k and 2k+1).
pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
/// Frames read from the tap per event before other events get a turn; the
/// tap stays readable (level-triggered), so the rest follow.
pub(super) const RX_BUDGET: usize = 256;
/// Event data of pair k's tap fd is TAP_EVENT + k (queue events carry their queue
/// index, which is far below).
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
    #[error("virtio-net: {given} queue pairs: between 1 and {MAX_QUEUE_PAIRS} are possible")]
    QueuePairs { given: usize },
    #[error("virtio-net: {0}")]
    DetachQueue(#[from] DetachError),
}

/// Things logged once per device, so a misbehaving guest or a broken tap
/// cannot flood the host log.
#[derive(Clone, Copy)]
pub(super) enum Complaint {
    TxMalformed = 0,
    TxWrite,
    RxMalformed,
    RxTooBig,
    RxBadFrame,
    TapQueue,
}

pub struct Net {
    /// One per queue pair; pair 0's is the only one without `mq=on`.
    pub(super) pairs: Vec<Pair>,
    layout: Layout,
    queue_sizes: Vec<u16>,
    /// Pairs the guest uses: 1 from activation on, until its VQ_PAIRS_SET.
    enabled: usize,
    /// Where the control queue is in the activation's queues, if negotiated.
    ctrl: Option<usize>,
    ctrl_broken: bool,
    mac: [u8; 6],
    features: u64,
    pub(super) activation: Activation,
    /// Queue events of an activation that was reset, kept open until the
    /// event loop has unregistered them: once closed, their fd numbers
    /// could no longer be removed from epoll and might be reused.
    retired_events: Vec<EventFd>,
    pub(super) mergeable: bool,
    /// Rate limits on frames to the guest and from it, over all pairs. A frame over
    /// the RX budget stays pending (its tap unwatched) and one over the TX budget in
    /// the ring, until the gate's timer fires.
    pub(super) rx_gate: Gate,
    pub(super) tx_gate: Gate,
    pub(super) rx_scratch: Scratch,
    pub(super) tx_buf: Vec<u8>,
    pub(super) complained: u32,
    /// Its `net_<iface_id>` metrics (Firecracker's per-interface section); see
    /// [`Net::count_as`].
    pub(super) metrics: Arc<metrics::NetMetrics>,
    /// Firecracker's MMDS, on an interface `PUT /mmds/config` lists.
    pub(super) mmds: Option<Detour>,
}

impl Net {
    /// A virtio-net device on `tap` (a `Tap` or another `Backend`), with the
    /// given MAC address or a random locally administered one (02:xx:xx:xx:xx:xx).
    pub fn new(tap: impl Into<Backend>, mac: Option<[u8; 6]>) -> Result<Net, NetError> {
        Net::with_pairs(vec![tap.into()], mac, Layout::SINGLE)
    }

    /// `mq=on`: one queue pair per queue of a multiqueue tap (`Tap::open_queues`; one
    /// backend of any kind gives one pair, as QEMU offers MQ with one pair), and the
    /// control queue. Every tap queue but the first is detached until the guest
    /// enables its pair.
    pub fn multiqueue(taps: Vec<Backend>, mac: Option<[u8; 6]>) -> Result<Net, NetError> {
        let layout = Layout::multiqueue(taps.len()).ok_or(NetError::QueuePairs { given: taps.len() })?;
        detach_after_first(taps.iter().filter_map(Backend::tap))?;
        let mut net = Net::with_pairs(taps, mac, layout)?;
        for pair in net.pairs.iter_mut().skip(1) {
            pair.attached = false;
        }
        Ok(net)
    }

    fn with_pairs(taps: Vec<Backend>, mac: Option<[u8; 6]>, layout: Layout) -> Result<Net, NetError> {
        let mac = match mac {
            Some(mac) if mac[0] & 1 != 0 || mac == [0; 6] => return Err(NetError::InvalidMac(format_mac(&mac))),
            Some(mac) => mac,
            None => random_mac(),
        };
        let first = &taps[0];
        Ok(Net {
            features: offloads_offered(first.has_vnet_hdr(), first.supports_ufo()) | layout.features(),
            pairs: taps.into_iter().map(Pair::new).collect(),
            queue_sizes: layout.queue_sizes(),
            layout,
            enabled: 1,
            ctrl: None,
            ctrl_broken: false,
            mac,
            activation: Activation::new().map_err(NetError::Event)?,
            retired_events: Vec::new(),
            mergeable: false,
            rx_gate: Gate::new(&LimiterConfig::default()),
            tx_gate: Gate::new(&LimiterConfig::default()),
            rx_scratch: Scratch::default(),
            tx_buf: Vec::with_capacity(MAX_TX_PACKET),
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
        self.pairs[0].tap.name()
    }

    /// Queue pairs the guest has enabled (1 until its driver asks for more).
    pub fn enabled_pairs(&self) -> usize {
        self.enabled
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

    fn serve_all(&mut self) {
        for k in 0..self.enabled {
            self.process_tx(k);
            self.process_rx(k);
        }
    }

    /// Answers the control queue's commands; pairs enabled or disabled there get
    /// their tap queues attached or detached at once.
    fn process_ctrl(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let Some(index) = self.ctrl.filter(|_| !self.ctrl_broken) else { return };
        let wanted = match ctrl::turn(ctx, index, self.layout) {
            Ok(wanted) => wanted,
            Err(e) => {
                log::warn!("virtio-net {}: {e}; the control queue is stopped until a reset", self.pairs[0].tap.name());
                self.ctrl_broken = true;
                ctx.interrupt.signal_needs_reset();
                None
            }
        };
        if let Some(n) = wanted {
            self.enabled = usize::from(n);
            self.sync_attached();
            self.serve_all();
        }
    }

    /// Attaches the tap queues of the enabled pairs and detaches the others (on the
    /// device thread). A pair turned off drops the frame it held for the guest.
    fn sync_attached(&mut self) {
        let enabled = if self.activation.active.is_some() { self.enabled } else { 1 };
        for (k, pair) in self.pairs.iter_mut().enumerate().skip(1) {
            let wanted = k < enabled;
            if !wanted {
                pair.rx_pending = None;
                pair.rx_paid = false;
            }
            if pair.attached == wanted {
                continue;
            }
            match pair.tap.set_queue_attached(wanted) {
                Ok(()) => pair.attached = wanted,
                Err(e) => {
                    if first_time(&mut self.complained, Complaint::TapQueue) {
                        log::warn!(
                            "virtio-net {}: cannot {} tap queue {k}: {e} (further failures are not logged)",
                            pair.tap.name(),
                            if wanted { "attach" } else { "detach" }
                        );
                    }
                }
            }
        }
    }

    /// Watches each tap for readable frames only while they can go somewhere,
    /// and for room to write only while a frame waits for it. A detached tap queue is
    /// not in the event loop at all: the kernel reports it as an error (tun's poll).
    fn update_tap_watch(&mut self, ops: &mut EventOps) {
        let active = self.activation.active.is_some();
        for (k, pair) in self.pairs.iter_mut().enumerate() {
            let data = TAP_EVENT + k as u32;
            let watched = match pair.watch {
                TapWatch::Gone => continue,
                TapWatch::Unregistered if !pair.attached || pair.failed => continue,
                TapWatch::Unregistered => match ops.add(Events::with_data(&pair.tap, data, EventSet::empty())) {
                    Ok(()) => EventSet::empty(),
                    Err(e) => {
                        log::error!("virtio-net {}: cannot watch tap queue {k}: {e:?}", pair.tap.name());
                        pair.watch = TapWatch::Gone;
                        continue;
                    }
                },
                TapWatch::Watching(set) => set,
            };
            pair.watch = TapWatch::Watching(watched);
            if pair.failed || !pair.attached {
                let _ = ops.remove(Events::new(&pair.tap, EventSet::empty()));
                pair.watch = if pair.failed { TapWatch::Gone } else { TapWatch::Unregistered };
                continue;
            }
            let mut set = EventSet::empty();
            if active && k < self.enabled && !pair.rx_broken && pair.rx_pending.is_none() {
                set |= EventSet::IN;
            }
            if pair.tap.tx_blocked() {
                set |= EventSet::OUT;
            }
            if set != watched {
                match ops.modify(Events::with_data(&pair.tap, data, set)) {
                    Ok(()) => pair.watch = TapWatch::Watching(set),
                    Err(e) => log::error!("virtio-net {}: cannot change the tap's watch: {e:?}", pair.tap.name()),
                }
            }
        }
    }

    fn unregister_retired(&mut self, ops: &mut EventOps) {
        for evt in self.retired_events.drain(..) {
            let _ = ops.remove(Events::new(&evt, EventSet::IN));
        }
    }

    /// Pair `k`'s tap reported `set`.
    fn tap_event(&mut self, k: usize, set: EventSet) {
        let pair = &mut self.pairs[k];
        if set.intersects(EventSet::ERROR | EventSet::HANG_UP) {
            log::error!("virtio-net {}: {}; the guest's network is down", pair.tap.name(), pair.tap.hang_up_reason());
            pair.failed = true;
            return;
        }
        if set.contains(EventSet::OUT) {
            if let Err(e) = pair.tap.flush() {
                log::error!("virtio-net {}: writing failed ({e}); the guest's network is down", pair.tap.name());
                pair.failed = true;
            }
            self.process_tx(k);
        }
        if set.contains(EventSet::IN) {
            self.metrics.rx_tap_event_count.inc();
            self.process_rx(k);
        }
    }

    /// The guest notified queue `queue`.
    fn queue_event(&mut self, queue: usize) {
        if let Some(evt) = self.activation.active.as_ref().and_then(|ctx| ctx.queue_events.get(queue)) {
            let _ = evt.read();
        }
        if Some(queue) == self.ctrl {
            self.process_ctrl();
            return;
        }
        // A disabled pair is not served: the driver must not use it (virtio 1.x §5.1.6.5.5).
        let k = queue / 2;
        if k >= self.enabled {
            return;
        }
        if queue % 2 == RX_QUEUE {
            self.metrics.rx_queue_event_count.inc();
            self.process_rx(k);
        } else {
            self.metrics.tx_queue_event_count.inc();
            self.process_tx(k);
        }
    }
}

pub(super) fn first_time(complained: &mut u32, what: Complaint) -> bool {
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
        &self.queue_sizes
    }

    fn active_queues(&self, acked_features: u64) -> usize {
        self.layout.active_queues(acked_features)
    }

    fn features(&self) -> u64 {
        self.features
    }

    /// struct virtio_net_config: mac, status, max_virtqueue_pairs.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&config_space(&self.mac, self.layout.max_pairs), offset, data);
    }

    fn activate(&mut self, mut ctx: ActivateContext) -> Result<(), ActivateError> {
        let acked = ctx.acked_features;
        let needed = self.layout.active_queues(acked);
        if ctx.queues.len() != needed || ctx.queue_events.len() != needed {
            self.metrics.activate_fails.inc();
            return Err(ActivateError::QueueCount { device: "virtio-net", given: ctx.queues.len(), needed });
        }
        let event_idx = acked & F_EVENT_IDX != 0;
        for queue in &mut ctx.queues {
            queue.set_event_idx(event_idx);
        }
        for pair in &self.pairs {
            pair.tap.set_offload(tap_offloads(acked)).map_err(|source| ActivateError::TapOffload {
                device: "virtio-net",
                tap: pair.tap.name().to_string(),
                source,
            })?;
        }
        self.mergeable = acked & F_MRG_RXBUF != 0;
        self.pairs.iter_mut().for_each(Pair::clear);
        // Only the first pair until the driver's VQ_PAIRS_SET (virtio 1.x §5.1.6.5.5).
        self.enabled = 1;
        self.ctrl = self.layout.ctrl_index(acked);
        self.ctrl_broken = false;
        self.activation.activate(ctx)
    }

    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }

    fn save(&mut self) -> Result<crate::virtio::VirtioState, crate::state::StateError> {
        Ok(match self.layout.multiqueue {
            false => crate::virtio::VirtioState::Net(super::NetState { mac: self.mac }),
            true => crate::virtio::VirtioState::MultiqueueNet(super::MultiqueueNetState {
                mac: self.mac,
                pairs: self.enabled as u16,
            }),
        })
    }

    fn restore(&mut self, state: crate::virtio::VirtioState) -> Result<(), crate::state::StateError> {
        use crate::virtio::VirtioState;
        let (mac, pairs) = match state {
            VirtioState::Net(saved) if !self.layout.multiqueue => (saved.mac, 1),
            VirtioState::MultiqueueNet(saved) if self.layout.multiqueue => (saved.mac, saved.pairs),
            other => {
                return Err(other.mismatch(if self.layout.multiqueue { "virtio-net (mq=on)" } else { "virtio-net" }))
            }
        };
        if !(1..=self.layout.max_pairs).contains(&pairs) {
            return Err(crate::state::StateError::Invalid { device: "virtio-net", what: "enabled queue pairs" });
        }
        if mac != self.mac {
            log::info!("virtio-net {}: the guest keeps its MAC address {}", self.tap_name(), format_mac(&mac));
        }
        self.mac = mac;
        self.enabled = usize::from(pairs);
        // The device thread attaches the enabled pairs' tap queues on its next turn.
        self.activation.wake();
        Ok(())
    }

    fn reset(&mut self) -> bool {
        if let Some(ctx) = self.activation.active.take() {
            self.retired_events.extend(ctx.queue_events);
        }
        self.activation.deactivate();
        self.pairs.iter_mut().for_each(Pair::clear);
        self.enabled = 1;
        self.ctrl = None;
        self.rx_gate.waker.cancel();
        self.tx_gate.waker.cancel();
        self.mergeable = false;
        for pair in &self.pairs {
            if let Err(e) = pair.tap.set_offload(0) {
                log::warn!("virtio-net {}: cannot clear the tap's offloads: {e}", pair.tap.name());
            }
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
        // errors and hang-ups (the interface deleted) still arrive. The detached
        // queues of a multiqueue tap wait until their pairs are enabled.
        self.update_tap_watch(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        self.unregister_retired(ops);
        let tap = events.data().checked_sub(TAP_EVENT).map(|k| k as usize).filter(|&k| k < self.pairs.len());
        if self.activation.is_wake_event(&events) {
            let active = self.activation.on_wake(ops);
            self.sync_attached();
            if active {
                self.serve_all();
                self.process_ctrl();
            }
        } else if self.rx_gate.waker.is_expiry(&events) {
            (0..self.enabled).for_each(|k| self.process_rx(k));
        } else if self.tx_gate.waker.is_expiry(&events) {
            (0..self.enabled).for_each(|k| self.process_tx(k));
        } else if let Some(k) = tap {
            self.tap_event(k, events.event_set());
        } else {
            self.queue_event(events.data() as usize);
        }
        if self.mmds.as_ref().is_some_and(|m| m.answered) {
            self.process_rx(0);
        }
        self.update_tap_watch(ops);
        // A limit that blocked for the first time made its refill timer.
        self.rx_gate.waker.watch(ops);
        self.tx_gate.waker.watch(ops);
    }
}
