//! vhost-vsock: AF_VSOCK between the guest and the host, served by the
//! host kernel's vhost_vsock module (/dev/vhost-vsock). The kernel serves
//! the rx and tx queues; the event queue (transport resets, used only on
//! migration) is the VMM's: after a restore the device posts one transport reset on
//! it, so the guest drops the connections of the saved VM (their host ends are gone)
//! and reads its CID again (the restoring command line may give another, e.g. for
//! clones running side by side).

use super::{fetch_vring_bases, start_vrings, CallRelay, RingAddresses, VhostError};
use crate::guest_memory::GuestMemoryMmap;
use crate::state::StateError;
use crate::virtio::vsock_event::post_transport_reset;
use crate::virtio::{
    read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VirtioState, VIRTIO_F_VERSION_1,
};
use ::vhost::vhost_kern::vsock::Vsock;
use ::vhost::vsock::VhostVsock as VhostVsockOps;
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_VSOCK;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

/// rx, tx (the kernel's) and event (the VMM's).
const QUEUE_SIZES: [u16; 3] = [256, 256, 128];
const KERNEL_QUEUES: usize = 2;
const EVENT_QUEUE: usize = 2;
/// VIRTIO_VSOCK_F_SEQPACKET (virtio 1.2 §5.10.3).
const VSOCK_F_SEQPACKET: u64 = 1 << 1;
/// What the guest may negotiate, of what the kernel offers: nothing that
/// needs the VMM's help (no IOMMU, no dirty logging).
const OFFERABLE: u64 =
    VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | 1 << VIRTIO_RING_F_INDIRECT_DESC | VSOCK_F_SEQPACKET;

/// The device node, for messages.
pub const VHOST_VSOCK_PATH: &str = "/dev/vhost-vsock";

#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    #[error("{VHOST_VSOCK_PATH} does not exist: load the vhost_vsock kernel module (modprobe vhost_vsock)")]
    NoDevice,
    #[error("cannot open {VHOST_VSOCK_PATH}: {0}")]
    Open(std::io::Error),
    #[error("guest-cid={0} is already in use by another VM on this host")]
    CidInUse(u64),
    #[error("guest-cid={cid}: {source}")]
    Cid { cid: u64, source: ::vhost::Error },
    #[error("{VHOST_VSOCK_PATH}: {op}: {source}")]
    Setup { op: &'static str, source: ::vhost::Error },
    #[error("cannot create an eventfd: {0}")]
    EventFd(std::io::Error),
}

/// The kernel's vhost-vsock instance of a VM (tests use a fake).
pub type KernelVsock = Vsock<Arc<GuestMemoryMmap>>;

pub struct VhostVsock<B: VhostVsockOps + Send = KernelVsock> {
    cid: u64,
    backend: B,
    /// What the guest is offered.
    features: u64,
    activation: Activation,
    /// The kernel signals used buffers on these (rx, tx); see `vhost/mod.rs`.
    calls: CallRelay,
    running: bool,
    /// Restored from a snapshot: a transport reset event is owed to the guest.
    reset_owed: bool,
}

/// What a snapshot keeps of vhost-vsock beyond its queues (whose positions the kernel
/// held; see `fetch_vring_bases`): the CID the guest had, for information. The restored
/// device keeps the CID of the restoring command line; the transport reset tells the
/// guest to read it.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VhostVsockState {
    pub cid: u64,
}

impl VhostVsock<KernelVsock> {
    /// Opens /dev/vhost-vsock and claims `cid`: on the thread building the VM.
    pub fn open(cid: u64, mem: &GuestMemoryMmap) -> Result<Self, VsockError> {
        let backend = Vsock::new(Arc::new(mem.clone())).map_err(|e| match e {
            ::vhost::Error::VhostOpen(e) if e.kind() == std::io::ErrorKind::NotFound => VsockError::NoDevice,
            ::vhost::Error::VhostOpen(e) => VsockError::Open(e),
            other => VsockError::Setup { op: "open", source: other },
        })?;
        Self::new(cid, backend)
    }
}

impl<B: VhostVsockOps + Send> VhostVsock<B> {
    pub fn new(cid: u64, backend: B) -> Result<Self, VsockError> {
        backend.set_owner().map_err(|source| VsockError::Setup { op: "VHOST_SET_OWNER", source })?;
        let kernel = backend.get_features().map_err(|source| VsockError::Setup { op: "VHOST_GET_FEATURES", source })?;
        backend.set_guest_cid(cid).map_err(|e| match e {
            ::vhost::Error::IoctlError(io) if io.raw_os_error() == Some(libc::EADDRINUSE) => VsockError::CidInUse(cid),
            source => VsockError::Cid { cid, source },
        })?;
        let calls = CallRelay::new(KERNEL_QUEUES).map_err(VsockError::EventFd)?;
        let activation = Activation::new().map_err(VsockError::EventFd)?;
        Ok(VhostVsock {
            cid,
            backend,
            features: kernel & OFFERABLE,
            activation,
            calls,
            running: false,
            reset_owed: false,
        })
    }

    /// On the device thread: the driver set DRIVER_OK; give the kernel the rings.
    fn start(&mut self) -> Result<(), VhostError> {
        let Some(ctx) = &self.activation.active else { return Ok(()) };
        start_vrings(
            &self.backend,
            ctx,
            ctx.acked_features & self.features,
            self.calls.eventfds(),
            RingAddresses::Guest,
        )?;
        self.backend.start().map_err(|source| VhostError::Ioctl { op: "VHOST_VSOCK_SET_RUNNING", source })?;
        self.running = true;
        Ok(())
    }

    /// Posts the owed transport reset in the guest's next event buffer; without one
    /// (the guest has not posted any yet) it stays owed until the guest kicks the queue.
    fn send_transport_reset(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        if self.reset_owed && post_transport_reset(ctx, EVENT_QUEUE, "vhost-vsock") {
            self.reset_owed = false;
        }
    }

    /// On the device thread: the driver reset the device.
    fn stop(&mut self) {
        if std::mem::take(&mut self.running) {
            if let Err(e) = self.backend.stop() {
                log::error!("vhost-vsock: cannot stop the kernel's device: {e}");
            }
        }
    }
}

impl<B: VhostVsockOps + Send> VirtioDevice for VhostVsock<B> {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        self.features | VIRTIO_F_VERSION_1
    }
    /// `struct virtio_vsock_config { le64 guest_cid; }`
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.cid.to_le_bytes(), offset, data);
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        if ctx.acked_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(ActivateError::NoVersion1 { device: "vhost-vsock" });
        }
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        // The device thread stops the kernel's device when it sees the wake-up.
        self.activation.deactivate();
        self.reset_owed = false;
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    /// Stops the kernel's device, so that the rings stay as saved while the VMM writes
    /// guest memory, and fetches where the kernel got to. The device thread starts it
    /// again from there on its next turn (when the VM resumes). Runs on the caller's
    /// thread (the VMM's main thread, the device thread being parked).
    fn save(&mut self) -> Result<VirtioState, StateError> {
        let vhost = |source| StateError::Vhost { device: "vhost-vsock", source };
        if std::mem::take(&mut self.running) {
            self.backend.stop().map_err(|source| vhost(VhostError::Ioctl { op: "VHOST_VSOCK_SET_RUNNING", source }))?;
            if let Some(ctx) = self.activation.active.as_mut() {
                fetch_vring_bases(&self.backend, ctx, KERNEL_QUEUES).map_err(vhost)?;
            }
            self.activation.wake();
        }
        self.calls.relay_pending(&self.activation);
        Ok(VirtioState::VhostVsock(VhostVsockState { cid: self.cid }))
    }
    /// The kernel gets the restored positions when the device thread starts it (the
    /// activation's wake-up); the transport reset follows.
    fn restore(&mut self, state: VirtioState) -> Result<(), StateError> {
        let VirtioState::VhostVsock(saved) = state else { return Err(state.mismatch("vhost-vsock")) };
        if saved.cid != self.cid {
            log::info!("vhost-vsock: the guest had CID {}; it is told to take {} now", saved.cid, self.cid);
        }
        self.reset_owed = self.activation.active.is_some();
        Ok(())
    }
}

impl<B: VhostVsockOps + Send> MutEventSubscriber for VhostVsock<B> {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.calls.watch(ops, "vhost-vsock");
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            self.stop();
            if self.activation.on_wake_watching(ops, |i| i == EVENT_QUEUE) {
                if let Err(e) = self.start() {
                    log::error!("vhost-vsock: cannot start the kernel's device: {e}; the device needs a reset");
                    if let Some(ctx) = &self.activation.active {
                        ctx.interrupt.signal_needs_reset();
                    }
                }
                self.send_transport_reset();
            }
            return;
        }
        if self.calls.relay(&events, &self.activation) {
            return;
        }
        if let Some(ctx) = &self.activation.active {
            // The event queue: buffers stay posted until a restore owes the guest an event.
            let _ = ctx.queue_events[EVENT_QUEUE].read();
        }
        self.send_transport_reset();
    }
}

#[cfg(test)]
mod tests;
