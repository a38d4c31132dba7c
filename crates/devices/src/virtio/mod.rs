//! virtio devices over the virtio-mmio transport (virtio 1.x, register
//! layout version 2).
//!
//! A device is shared, behind one mutex, by two parties: the `MmioTransport`
//! on the bus (vCPU threads: feature negotiation, queue set-up, config space)
//! and the device event loop (queue notifications arriving on ioeventfds,
//! backend fds). The transport hands the negotiated queues over in
//! `VirtioDevice::activate`; from then on the data path never touches a vCPU
//! thread: the guest's notify write is an ioeventfd, the device's interrupt
//! an irqfd.

mod activation;
pub mod balloon;
pub mod block;
pub mod console;
pub(crate) mod errors;
pub mod hvsock;
pub mod input;
pub mod mmio;
pub mod net;
pub mod ninep;
pub mod queue;
pub mod rng;
mod state;
#[cfg(any(test, feature = "test-util"))]
pub mod test_driver;
pub mod vhost;
mod vsock_event;

pub use activation::{Activation, QueueTurn};
pub use errors::ActivateError;
pub use state::{SavedQueue, VirtioState};

use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Virtqueue;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use vmm_sys_util::eventfd::EventFd;

/// Most descriptor chains a device serves from one queue in one turn of the shared device
/// thread's loop. A guest that keeps one queue full cannot hold the thread: the device
/// re-notifies itself ([`come_back_later`]) and the other devices' ready events are served
/// before its next batch.
pub const CHAINS_PER_TURN: usize = 64;

/// Makes the event loop call the device for `queue_event`'s queue again on its next turn.
pub fn come_back_later(queue_event: &EventFd) {
    if let Err(e) = queue_event.write(1) {
        log::error!("virtio: cannot re-notify a queue left for the next turn: {e}");
    }
}

/// Feature bit every modern device offers and requires.
pub const VIRTIO_F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;

/// The device status bits (virtio 1.x §2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
}

/// Interrupt status bits of a virtio-mmio device.
const INT_VRING: u32 = virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_VRING;
const INT_CONFIG: u32 = virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_CONFIG;

/// A device's interrupt line: the status bits the guest reads and acks, and
/// the irqfd that makes KVM inject the GSI.
pub struct Interrupt {
    status: AtomicU32,
    irq: EventFd,
    /// Set by a device that stopped serving (e.g. a corrupt ring): the
    /// transport then reports DEVICE_NEEDS_RESET in its status register.
    needs_reset: AtomicBool,
}

impl Interrupt {
    pub fn new(irq: EventFd) -> Self {
        Interrupt { status: AtomicU32::new(0), irq, needs_reset: AtomicBool::new(false) }
    }

    /// The device put buffers in a used ring.
    pub fn signal_used_queue(&self) {
        self.raise(INT_VRING);
    }

    /// The device changed its configuration space or status (e.g. it needs a reset).
    pub fn signal_config_change(&self) {
        self.raise(INT_CONFIG);
    }

    /// The device cannot go on until the driver resets it (virtio 1.x §2.1.2).
    pub fn signal_needs_reset(&self) {
        self.needs_reset.store(true, Ordering::SeqCst);
        self.signal_config_change();
    }

    pub fn needs_reset(&self) -> bool {
        self.needs_reset.load(Ordering::SeqCst)
    }

    fn raise(&self, bit: u32) {
        self.status.fetch_or(bit, Ordering::SeqCst);
        if let Err(e) = self.irq.write(1) {
            log::error!("virtio: cannot inject interrupt: {e}");
        }
    }

    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// A restored device's interrupt: the saved status bits and reset request. A pending
    /// interrupt is raised once more, so the guest does not miss it whatever the
    /// restored irqchip holds (a spurious one costs the driver a status read).
    pub fn restore(&self, status: u32, needs_reset: bool) {
        self.status.store(status, Ordering::SeqCst);
        self.needs_reset.store(needs_reset, Ordering::SeqCst);
        if status != 0 {
            if let Err(e) = self.irq.write(1) {
                log::error!("virtio: cannot inject interrupt: {e}");
            }
        }
    }

    /// Device reset: no pending interrupt, no pending reset request.
    pub fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
        self.needs_reset.store(false, Ordering::SeqCst);
    }
}

/// What a device gets when the driver sets DRIVER_OK.
pub struct ActivateContext {
    pub mem: GuestMemoryMmap,
    pub acked_features: u64,
    /// One per queue, in queue-index order, already validated.
    pub queues: Vec<Virtqueue>,
    /// The ioeventfds the guest's notifications arrive on, one per queue.
    pub queue_events: Vec<EventFd>,
    pub interrupt: std::sync::Arc<Interrupt>,
}

/// A virtio device model, independent of the transport.
pub trait VirtioDevice: Send {
    /// VIRTIO_ID_* of the device.
    fn device_type(&self) -> u32;
    /// Largest size of each queue; the count is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// How many of those queues the driver sets up with `acked_features` (the first ones):
    /// devices with optional queues (the balloon's statistics and reporting queues) say
    /// fewer than all. Only these must be ready at DRIVER_OK and are handed over.
    fn active_queues(&self, _acked_features: u64) -> usize {
        self.queue_max_sizes().len()
    }
    /// Features offered (VIRTIO_F_VERSION_1 included).
    fn features(&self) -> u64;
    /// Reads of the device-specific configuration space. Bytes beyond it read 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes to the configuration space; most devices ignore them.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// Takes over the queues: from now on the device serves them.
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError>;
    /// The driver wrote 0 to the status register after activation: drop the
    /// queues. Returns false if the device cannot be reset, in which case the
    /// transport marks it DEVICE_NEEDS_RESET forever.
    fn reset(&mut self) -> bool;
    /// The queues the device took at activation, as far as it has served them; None
    /// before activation. The transport saves their positions after `save`.
    fn active_queues_now(&self) -> Option<&[Virtqueue]>;
    /// The device's own state, for a snapshot, with the VM paused and the device thread
    /// parked (no request in flight). No default: a new device cannot forget it.
    fn save(&mut self) -> Result<VirtioState, crate::state::StateError>;
    /// Loads what `save` returned into a device built from the same command line. The
    /// transport calls it after re-activating the device (if it was active) with the
    /// restored queues; `KindMismatch` if the state is another kind's.
    fn restore(&mut self, state: VirtioState) -> Result<(), crate::state::StateError>;
}

/// Copies `data.len()` bytes of `config` at `offset` into `data`, zero
/// beyond its end: config space reads of any width at any offset are safe.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else { return };
    if let Some(src) = config.get(start..) {
        let n = src.len().min(data.len());
        data[..n].copy_from_slice(&src[..n]);
    }
}

/// `VirtioDevice::save` and `restore` of a device kind whose state a snapshot cannot
/// hold: both refuse with `StateError::Unsupported`, naming the device and why.
macro_rules! unsaveable {
    ($device:literal, $why:literal) => {
        fn save(&mut self) -> Result<$crate::virtio::VirtioState, $crate::state::StateError> {
            Err($crate::state::StateError::Unsupported { device: $device, why: $why })
        }
        fn restore(&mut self, _state: $crate::virtio::VirtioState) -> Result<(), $crate::state::StateError> {
            Err($crate::state::StateError::Unsupported { device: $device, why: $why })
        }
    };
}
pub(crate) use unsaveable;
