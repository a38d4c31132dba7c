//! vhost-net: virtio-net whose rx and tx queues the host kernel's vhost_net
//! (/dev/vhost-net) moves between guest memory and the tap, with no copy
//! through microvm (`-netdev tap,vhost=on`). With `mq=on` and `queues=N`, as in
//! QEMU, one /dev/vhost-net per queue pair, each attached to its queue of the
//! multiqueue tap; the control queue stays in microvm (`net::ctrl`), on the device
//! thread, which attaches and detaches the tap queues as the guest enables pairs. The tap is opened as for the
//! userspace device (12-byte virtio-net headers, which the kernel passes
//! through: VHOST_NET_F_VIRTIO_NET_HDR is not asked for); the guest's
//! offload features still set the tap's offloads.

use super::{fetch_vring_bases_from, start_vrings_from, CallRelay, RingAddresses, VhostError};
use crate::guest_memory::GuestMemoryMmap;
use crate::state::StateError;
use crate::virtio::net::ctrl::{self, Layout};
use crate::virtio::net::{
    config_space, format_mac, offered_features, random_mac, tap_offloads, MultiqueueNetState, Tap, F_MRG_RXBUF,
    MAX_QUEUE_PAIRS,
};
use crate::virtio::net::{detach_after_first, DetachError};
use crate::virtio::{
    read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VirtioState, VIRTIO_F_VERSION_1,
};
use ::vhost::net::VhostNet as VhostNetOps;
use ::vhost::vhost_kern::net::Net as KernelNetBackend;
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

/// Features the kernel implements (the rest, offloads, MAC and status, are
/// the tap's or microvm's): offered only when the kernel has them.
const KERNEL_BITS: u64 =
    VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | 1 << VIRTIO_RING_F_INDIRECT_DESC | F_MRG_RXBUF;

pub const VHOST_NET_PATH: &str = "/dev/vhost-net";

#[derive(Debug, thiserror::Error)]
pub enum VhostNetError {
    #[error("{VHOST_NET_PATH} does not exist: load the vhost_net kernel module (modprobe vhost_net)")]
    NoDevice,
    #[error("cannot open {VHOST_NET_PATH}: {0}")]
    Open(std::io::Error),
    #[error("{VHOST_NET_PATH}: {op}: {source}")]
    Setup { op: &'static str, source: ::vhost::Error },
    #[error("invalid MAC address: it must be a unicast address, not all zeros")]
    InvalidMac,
    #[error("cannot create an eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("{given} queue pairs: between 1 and {MAX_QUEUE_PAIRS} are possible")]
    QueuePairs { given: usize },
    #[error(transparent)]
    DetachQueue(#[from] DetachError),
}

pub type KernelNet = KernelNetBackend<Arc<GuestMemoryMmap>>;

/// What a snapshot keeps of vhost-net beyond its queues (whose positions the kernel
/// held; see `fetch_vring_bases`): the MAC address the guest knows. The tap is the
/// restoring command line's. Frames the kernel had not delivered are lost, as on any
/// network. With `mq=on`, [`MultiqueueNetState`] instead.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VhostNetState {
    pub mac: [u8; 6],
}

/// One queue pair: its tap queue and the /dev/vhost-net that moves its frames.
struct VhostPair<B> {
    tap: Tap,
    backend: B,
    /// The tap queue is attached to its interface (see `Tap::set_queue_attached`).
    attached: bool,
    /// The kernel serves this pair's rings (its tap is its backend).
    running: bool,
}

pub struct VhostNet<B: VhostNetOps + Send = KernelNet> {
    pairs: Vec<VhostPair<B>>,
    layout: Layout,
    queue_sizes: Vec<u16>,
    /// Pairs the guest uses (VQ_PAIRS_SET); 1 from activation on.
    enabled: usize,
    /// Where the control queue is in the activation's queues, if negotiated.
    ctrl: Option<usize>,
    mac: [u8; 6],
    kernel_features: u64,
    features: u64,
    activation: Activation,
    calls: CallRelay,
}

impl VhostNet<KernelNet> {
    /// Opens /dev/vhost-net for `tap`: on the thread building the VM.
    pub fn open(tap: Tap, mac: Option<[u8; 6]>, mem: &GuestMemoryMmap) -> Result<Self, VhostNetError> {
        Self::new(tap, mac, open_kernel(mem)?)
    }

    /// `mq=on`: one /dev/vhost-net per queue of the multiqueue tap (as QEMU opens them).
    pub fn open_multiqueue(taps: Vec<Tap>, mac: Option<[u8; 6]>, mem: &GuestMemoryMmap) -> Result<Self, VhostNetError> {
        let pairs =
            taps.into_iter().map(|tap| Ok((tap, open_kernel(mem)?))).collect::<Result<Vec<_>, VhostNetError>>()?;
        Self::multiqueue(pairs, mac)
    }
}

fn open_kernel(mem: &GuestMemoryMmap) -> Result<KernelNet, VhostNetError> {
    KernelNetBackend::new(Arc::new(mem.clone())).map_err(|e| match e {
        ::vhost::Error::VhostOpen(e) if e.kind() == std::io::ErrorKind::NotFound => VhostNetError::NoDevice,
        ::vhost::Error::VhostOpen(e) => VhostNetError::Open(e),
        other => VhostNetError::Setup { op: "open", source: other },
    })
}

impl<B: VhostNetOps + Send> VhostNet<B> {
    pub fn new(tap: Tap, mac: Option<[u8; 6]>, backend: B) -> Result<Self, VhostNetError> {
        Self::with_pairs(vec![(tap, backend)], mac, Layout::SINGLE)
    }

    /// `mq=on` over the queues of one multiqueue tap, each with its backend. The tap
    /// queues but the first are detached until the guest enables their pairs.
    pub fn multiqueue(pairs: Vec<(Tap, B)>, mac: Option<[u8; 6]>) -> Result<Self, VhostNetError> {
        let layout = Layout::multiqueue(pairs.len()).ok_or(VhostNetError::QueuePairs { given: pairs.len() })?;
        detach_after_first(pairs.iter().map(|(tap, _)| tap))?;
        let mut net = Self::with_pairs(pairs, mac, layout)?;
        for pair in net.pairs.iter_mut().skip(1) {
            pair.attached = false;
        }
        Ok(net)
    }

    fn with_pairs(pairs: Vec<(Tap, B)>, mac: Option<[u8; 6]>, layout: Layout) -> Result<Self, VhostNetError> {
        let mac = match mac {
            Some(mac) if mac[0] & 1 != 0 || mac == [0; 6] => return Err(VhostNetError::InvalidMac),
            Some(mac) => mac,
            None => random_mac(),
        };
        let mut kernel_features = u64::MAX;
        for (_, backend) in &pairs {
            backend.set_owner().map_err(|source| VhostNetError::Setup { op: "VHOST_SET_OWNER", source })?;
            kernel_features &=
                backend.get_features().map_err(|source| VhostNetError::Setup { op: "VHOST_GET_FEATURES", source })?;
        }
        let ufo = pairs[0].0.supports_ufo();
        let features = (offered_features(ufo) & !(KERNEL_BITS & !kernel_features)) | layout.features();
        let calls = CallRelay::new(2 * pairs.len()).map_err(VhostNetError::EventFd)?;
        let activation = Activation::new().map_err(VhostNetError::EventFd)?;
        let pairs = pairs
            .into_iter()
            .map(|(tap, backend)| VhostPair { tap, backend, attached: true, running: false })
            .collect();
        Ok(VhostNet {
            pairs,
            queue_sizes: layout.queue_sizes(),
            layout,
            enabled: 1,
            ctrl: None,
            mac,
            kernel_features,
            features,
            activation,
            calls,
        })
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn tap_name(&self) -> &str {
        self.pairs[0].tap.name()
    }

    /// On the device thread: each enabled pair not yet running gets its vrings, then its
    /// tap queue as both queues' backend. Only enabled pairs: the kernel refuses a
    /// detached tap queue as a backend (its poll reports an error).
    fn start(&mut self) -> Result<(), VhostError> {
        let Some(ctx) = &self.activation.active else { return Ok(()) };
        let features = ctx.acked_features & self.kernel_features;
        let calls = self.calls.eventfds();
        let enabled = self.enabled.min(self.layout.pairs(ctx.acked_features));
        for (k, pair) in self.pairs.iter_mut().enumerate().take(enabled).filter(|(_, p)| !p.running) {
            let first = 2 * k;
            start_vrings_from(&pair.backend, ctx, first, features, &calls[first..first + 2], RingAddresses::Guest)?;
            for vring in 0..2 {
                pair.backend
                    .set_backend(vring, Some(pair.tap.file()))
                    .map_err(|source| VhostError::Ioctl { op: "VHOST_NET_SET_BACKEND", source })?;
            }
            pair.running = true;
        }
        Ok(())
    }

    /// On the device thread: detach the taps so the kernel stops touching the rings.
    fn stop(&mut self) {
        self.stop_from(0);
    }

    /// Stops the pairs from `first` on. The kernel's positions in their rings are
    /// brought back into the queues, where a later `start` takes them from (a pair the
    /// guest disables and enables again goes on where it was).
    fn stop_from(&mut self, first: usize) {
        for (k, pair) in self.pairs.iter_mut().enumerate().skip(first) {
            if !std::mem::take(&mut pair.running) {
                continue;
            }
            for vring in 0..2 {
                if let Err(e) = pair.backend.set_backend(vring, None) {
                    log::error!("vhost-net {}: cannot stop a queue: {e}", pair.tap.name());
                }
            }
            if first > 0 {
                if let Some(ctx) = self.activation.active.as_mut() {
                    if let Err(e) = fetch_vring_bases_from(&pair.backend, ctx, 2 * k, 2) {
                        log::error!("vhost-net {}: cannot read queue pair {k}'s positions: {e}", pair.tap.name());
                    }
                }
            }
        }
    }

    /// Attaches the tap queues of the pairs the guest enabled and detaches the others.
    fn sync_attached(&mut self) {
        let enabled = if self.activation.active.is_some() { self.enabled } else { 1 };
        for (k, pair) in self.pairs.iter_mut().enumerate().skip(1) {
            let wanted = k < enabled;
            if pair.attached != wanted {
                match pair.tap.set_queue_attached(wanted) {
                    Ok(()) => pair.attached = wanted,
                    Err(e) => log::warn!("vhost-net {}: cannot attach or detach tap queue {k}: {e}", pair.tap.name()),
                }
            }
        }
    }

    /// Answers the control queue's commands.
    fn process_ctrl(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let Some(index) = self.ctrl else { return };
        let _ = ctx.queue_events[index].read();
        let wanted = match ctrl::turn(ctx, index, self.layout) {
            Ok(wanted) => wanted,
            Err(e) => {
                log::warn!("vhost-net {}: {e}; the device needs a reset", self.pairs[0].tap.name());
                self.ctrl = None;
                ctx.interrupt.signal_needs_reset();
                None
            }
        };
        if let Some(n) = wanted {
            // Pairs turned off stop before their tap queues are detached; pairs turned
            // on start once theirs are attached.
            self.enabled = usize::from(n);
            self.stop_from(self.enabled);
            self.sync_attached();
            self.start_or_fail();
        }
    }

    /// [`Self::start`], a failure leaving the device needing a reset.
    fn start_or_fail(&mut self) {
        if let Err(e) = self.start() {
            log::error!("vhost-net {}: cannot start: {e}; the device needs a reset", self.tap_name());
            if let Some(ctx) = &self.activation.active {
                ctx.interrupt.signal_needs_reset();
            }
        }
    }
}

impl<B: VhostNetOps + Send> VirtioDevice for VhostNet<B> {
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
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&config_space(&self.mac, self.layout.max_pairs), offset, data);
    }
    fn activate(&mut self, mut ctx: ActivateContext) -> Result<(), ActivateError> {
        if ctx.acked_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(ActivateError::NoVersion1 { device: "vhost-net" });
        }
        for pair in &self.pairs {
            pair.tap.set_offload(tap_offloads(ctx.acked_features)).map_err(|source| ActivateError::TapOffload {
                device: "vhost-net",
                tap: pair.tap.name().to_string(),
                source,
            })?;
        }
        self.enabled = 1;
        self.ctrl = self.layout.ctrl_index(ctx.acked_features);
        // The control queue is served here: it publishes avail_event (EVENT_IDX), or
        // the driver would stop kicking it.
        let event_idx = ctx.acked_features & 1 << VIRTIO_RING_F_EVENT_IDX != 0;
        if let Some(queue) = self.ctrl.and_then(|i| ctx.queues.get_mut(i)) {
            queue.set_event_idx(event_idx);
        }
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.enabled = 1;
        self.ctrl = None;
        for pair in &self.pairs {
            if let Err(e) = pair.tap.set_offload(0) {
                log::warn!("vhost-net {}: cannot clear the tap's offloads: {e}", pair.tap.name());
            }
        }
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    /// Detaches the taps (the kernel stops moving frames into guest memory, which the
    /// VMM writes to the memory file next) and fetches where the kernel got to. The
    /// device thread attaches them again from there on its next turn (when the VM
    /// resumes). Runs on the caller's thread (the device thread being parked).
    fn save(&mut self) -> Result<VirtioState, StateError> {
        let vhost = |source| StateError::Vhost { device: "vhost-net", source };
        let mut stopped = false;
        for (k, pair) in self.pairs.iter_mut().enumerate() {
            if !std::mem::take(&mut pair.running) {
                continue;
            }
            for vring in 0..2 {
                pair.backend
                    .set_backend(vring, None)
                    .map_err(|source| vhost(VhostError::Ioctl { op: "VHOST_NET_SET_BACKEND", source }))?;
            }
            if let Some(ctx) = self.activation.active.as_mut() {
                fetch_vring_bases_from(&pair.backend, ctx, 2 * k, 2).map_err(vhost)?;
            }
            stopped = true;
        }
        if stopped {
            self.activation.wake();
        }
        self.calls.relay_pending(&self.activation);
        Ok(match self.layout.multiqueue {
            false => VirtioState::VhostNet(VhostNetState { mac: self.mac }),
            true => VirtioState::MultiqueueNet(MultiqueueNetState { mac: self.mac, pairs: self.enabled as u16 }),
        })
    }
    /// The kernel gets the restored positions when the device thread starts it.
    fn restore(&mut self, state: VirtioState) -> Result<(), StateError> {
        let (mac, pairs) = match state {
            VirtioState::VhostNet(saved) if !self.layout.multiqueue => (saved.mac, 1),
            VirtioState::MultiqueueNet(saved) if self.layout.multiqueue => (saved.mac, saved.pairs),
            other => {
                return Err(other.mismatch(if self.layout.multiqueue { "vhost-net (mq=on)" } else { "vhost-net" }))
            }
        };
        if !(1..=self.layout.max_pairs).contains(&pairs) {
            return Err(StateError::Invalid { device: "vhost-net", what: "enabled queue pairs" });
        }
        if mac != self.mac {
            log::info!("vhost-net {}: the guest keeps its MAC address {}", self.tap_name(), format_mac(&mac));
        }
        self.mac = mac;
        self.enabled = usize::from(pairs);
        Ok(())
    }
}

impl<B: VhostNetOps + Send> MutEventSubscriber for VhostNet<B> {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.calls.watch(ops, "vhost-net");
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            self.stop();
            // The data queues are the kernel's (reading their events here would steal
            // its kicks): only the control queue's event is watched.
            let ctrl = self.ctrl;
            let active = self.activation.on_wake_watching(ops, |i| Some(i) == ctrl);
            self.sync_attached();
            if active {
                self.start_or_fail();
                self.process_ctrl();
            }
            return;
        }
        if !self.calls.relay(&events, &self.activation) && Some(events.data() as usize) == self.ctrl {
            self.process_ctrl();
        }
    }
}

#[cfg(test)]
mod tests;
