//! vhost-net: virtio-net whose rx and tx queues the host kernel's vhost_net
//! (/dev/vhost-net) moves between guest memory and the tap, with no copy
//! through microvm (`-netdev tap,vhost=on`). The tap is opened as for the
//! userspace device (12-byte virtio-net headers, which the kernel passes
//! through: VHOST_NET_F_VIRTIO_NET_HDR is not asked for); the guest's
//! offload features still set the tap's offloads.

use super::{fetch_vring_bases, start_vrings, CallRelay, RingAddresses, VhostError};
use crate::guest_memory::GuestMemoryMmap;
use crate::state::StateError;
use crate::virtio::net::{config_space, format_mac, offered_features, random_mac, tap_offloads, Tap, F_MRG_RXBUF};
use crate::virtio::{
    read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VirtioState, VIRTIO_F_VERSION_1,
};
use ::vhost::net::VhostNet as VhostNetOps;
use ::vhost::vhost_kern::net::Net as KernelNetBackend;
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

const QUEUE_SIZES: [u16; 2] = [256, 256];
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
}

pub type KernelNet = KernelNetBackend<Arc<GuestMemoryMmap>>;

/// What a snapshot keeps of vhost-net beyond its queues (whose positions the kernel
/// held; see `fetch_vring_bases`): the MAC address the guest knows. The tap is the
/// restoring command line's. Frames the kernel had not delivered are lost, as on any
/// network.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VhostNetState {
    pub mac: [u8; 6],
}

pub struct VhostNet<B: VhostNetOps + Send = KernelNet> {
    tap: Tap,
    mac: [u8; 6],
    backend: B,
    kernel_features: u64,
    features: u64,
    activation: Activation,
    calls: CallRelay,
    running: bool,
}

impl VhostNet<KernelNet> {
    /// Opens /dev/vhost-net for `tap`: on the thread building the VM.
    pub fn open(tap: Tap, mac: Option<[u8; 6]>, mem: &GuestMemoryMmap) -> Result<Self, VhostNetError> {
        let backend = KernelNetBackend::new(Arc::new(mem.clone())).map_err(|e| match e {
            ::vhost::Error::VhostOpen(e) if e.kind() == std::io::ErrorKind::NotFound => VhostNetError::NoDevice,
            ::vhost::Error::VhostOpen(e) => VhostNetError::Open(e),
            other => VhostNetError::Setup { op: "open", source: other },
        })?;
        Self::new(tap, mac, backend)
    }
}

impl<B: VhostNetOps + Send> VhostNet<B> {
    pub fn new(tap: Tap, mac: Option<[u8; 6]>, backend: B) -> Result<Self, VhostNetError> {
        let mac = match mac {
            Some(mac) if mac[0] & 1 != 0 || mac == [0; 6] => return Err(VhostNetError::InvalidMac),
            Some(mac) => mac,
            None => random_mac(),
        };
        backend.set_owner().map_err(|source| VhostNetError::Setup { op: "VHOST_SET_OWNER", source })?;
        let kernel_features =
            backend.get_features().map_err(|source| VhostNetError::Setup { op: "VHOST_GET_FEATURES", source })?;
        let features = offered_features(tap.supports_ufo()) & !(KERNEL_BITS & !kernel_features);
        let calls = CallRelay::new(QUEUE_SIZES.len()).map_err(VhostNetError::EventFd)?;
        let activation = Activation::new().map_err(VhostNetError::EventFd)?;
        Ok(VhostNet { tap, mac, backend, kernel_features, features, activation, calls, running: false })
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn tap_name(&self) -> &str {
        self.tap.name()
    }

    /// On the device thread: vrings, then the tap as both queues' backend.
    fn start(&mut self) -> Result<(), VhostError> {
        let Some(ctx) = &self.activation.active else { return Ok(()) };
        start_vrings(
            &self.backend,
            ctx,
            ctx.acked_features & self.kernel_features,
            self.calls.eventfds(),
            RingAddresses::Guest,
        )?;
        for queue in 0..QUEUE_SIZES.len() {
            self.backend
                .set_backend(queue, Some(self.tap.file()))
                .map_err(|source| VhostError::Ioctl { op: "VHOST_NET_SET_BACKEND", source })?;
        }
        self.running = true;
        Ok(())
    }

    /// On the device thread: detach the tap so the kernel stops touching the rings.
    fn stop(&mut self) {
        if std::mem::take(&mut self.running) {
            for queue in 0..QUEUE_SIZES.len() {
                if let Err(e) = self.backend.set_backend(queue, None) {
                    log::error!("vhost-net {}: cannot stop queue {queue}: {e}", self.tap.name());
                }
            }
        }
    }
}

impl<B: VhostNetOps + Send> VirtioDevice for VhostNet<B> {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_NET
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        self.features
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&config_space(&self.mac), offset, data);
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        if ctx.acked_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(ActivateError::Backend("vhost-net: the driver did not accept VERSION_1".into()));
        }
        self.tap.set_offload(tap_offloads(ctx.acked_features)).map_err(|e| {
            ActivateError::Backend(format!("vhost-net: cannot set the offloads of tap {}: {e}", self.tap.name()))
        })?;
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        if let Err(e) = self.tap.set_offload(0) {
            log::warn!("vhost-net {}: cannot clear the tap's offloads: {e}", self.tap.name());
        }
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    /// Detaches the tap (the kernel stops moving frames into guest memory, which the
    /// VMM writes to the memory file next) and fetches where the kernel got to. The
    /// device thread attaches it again from there on its next turn (when the VM
    /// resumes). Runs on the caller's thread (the device thread being parked).
    fn save(&mut self) -> Result<VirtioState, StateError> {
        let vhost = |source| StateError::Vhost { device: "vhost-net", source };
        if std::mem::take(&mut self.running) {
            for queue in 0..QUEUE_SIZES.len() {
                self.backend
                    .set_backend(queue, None)
                    .map_err(|source| vhost(VhostError::Ioctl { op: "VHOST_NET_SET_BACKEND", source }))?;
            }
            if let Some(ctx) = self.activation.active.as_mut() {
                fetch_vring_bases(&self.backend, ctx, QUEUE_SIZES.len()).map_err(vhost)?;
            }
            self.activation.wake();
        }
        self.calls.relay_pending(&self.activation);
        Ok(VirtioState::VhostNet(VhostNetState { mac: self.mac }))
    }
    /// The kernel gets the restored positions when the device thread starts it.
    fn restore(&mut self, state: VirtioState) -> Result<(), StateError> {
        let VirtioState::VhostNet(saved) = state else { return Err(state.mismatch("vhost-net")) };
        if saved.mac != self.mac {
            log::info!("vhost-net {}: the guest keeps its MAC address {}", self.tap.name(), format_mac(&saved.mac));
        }
        self.mac = saved.mac;
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
            // Both queues are the kernel's: no queue event is watched here.
            if self.activation.on_wake_watching(ops, |_| false) {
                if let Err(e) = self.start() {
                    log::error!("vhost-net {}: cannot start: {e}; the device needs a reset", self.tap.name());
                    if let Some(ctx) = &self.activation.active {
                        ctx.interrupt.signal_needs_reset();
                    }
                }
            }
            return;
        }
        self.calls.relay(&events, &self.activation);
    }
}

#[cfg(test)]
mod tests;
