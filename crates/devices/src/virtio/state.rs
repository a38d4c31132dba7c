//! What a snapshot keeps of a virtio device: its queues' positions (the transport saves
//! them, see `mmio/state.rs`) and each device kind's own state.

use super::balloon::BalloonDeviceState;
use super::block::BlockState;
use super::console::{ConsoleState, MultiportState};
use super::hvsock::HybridVsockState;
use super::net::{MultiqueueNetState, NetState};
use super::queue::Virtqueue;
use super::vhost::net::VhostNetState;
use super::vhost::vsock::VhostVsockState;
use serde::{Deserialize, Serialize};
use virtio_queue::{Queue, QueueState};

/// virtio-queue's `QueueState`, for serde: one virtqueue as the driver set it up and as
/// far as the device has gone. A packed ring (the transport's acked VIRTIO_F_RING_PACKED
/// says which) is saved in the same fields: its descriptor ring, driver and device event
/// structures in `desc_table`, `avail_ring`, `used_ring`, its positions as free-running
/// slot counters (`queue/packed.rs`), so the saved form did not change.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedQueue {
    pub max_size: u16,
    pub size: u16,
    pub ready: bool,
    pub desc_table: u64,
    pub avail_ring: u64,
    pub used_ring: u64,
    /// The next avail ring entry the device will take.
    pub next_avail: u16,
    /// The next used ring entry the device will fill.
    pub next_used: u16,
    pub event_idx_enabled: bool,
}

impl From<&Virtqueue> for SavedQueue {
    fn from(q: &Virtqueue) -> Self {
        match q {
            Virtqueue::Split(q) => SavedQueue::from(q),
            Virtqueue::Packed { ring, max_size } => SavedQueue {
                max_size: *max_size,
                size: ring.size(),
                ready: true,
                desc_table: ring.desc_table(),
                avail_ring: ring.driver_event(),
                used_ring: ring.device_event(),
                next_avail: ring.next_avail(),
                next_used: ring.next_used(),
                event_idx_enabled: ring.event_idx_enabled(),
            },
        }
    }
}

impl From<&Queue> for SavedQueue {
    fn from(q: &Queue) -> Self {
        let s = q.state();
        SavedQueue {
            max_size: s.max_size,
            size: s.size,
            ready: s.ready,
            desc_table: s.desc_table,
            avail_ring: s.avail_ring,
            used_ring: s.used_ring,
            next_avail: s.next_avail,
            next_used: s.next_used,
            event_idx_enabled: s.event_idx_enabled,
        }
    }
}

impl From<SavedQueue> for QueueState {
    fn from(s: SavedQueue) -> Self {
        QueueState {
            max_size: s.max_size,
            next_avail: s.next_avail,
            next_used: s.next_used,
            event_idx_enabled: s.event_idx_enabled,
            size: s.size,
            ready: s.ready,
            desc_table: s.desc_table,
            avail_ring: s.avail_ring,
            used_ring: s.used_ring,
        }
    }
}

/// A virtio device's own state, beside its transport's: one variant per device kind.
/// vhost-user-fs has none: it refuses to be saved (its state is virtiofsd's).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum VirtioState {
    Block(BlockState),
    Net(NetState),
    Console(ConsoleState),
    MultiportConsole(MultiportState),
    /// Nothing beyond the transport's queues.
    Rng,
    Balloon(BalloonDeviceState),
    VhostVsock(VhostVsockState),
    VhostNet(VhostNetState),
    Keyboard(super::input::KeyboardState),
    /// Firecracker's hybrid vsock.
    HybridVsock(HybridVsockState),
    /// virtio-net or vhost-net with `mq=on` (last: a variant's number is its saved form).
    MultiqueueNet(MultiqueueNetState),
}

impl VirtioState {
    pub fn kind(&self) -> &'static str {
        match self {
            VirtioState::Block(_) => "virtio-blk",
            VirtioState::Net(_) => "virtio-net",
            VirtioState::Console(_) => "virtio-console",
            VirtioState::MultiportConsole(_) => "virtio-serial",
            VirtioState::Rng => "virtio-rng",
            VirtioState::Balloon(_) => "virtio-balloon",
            VirtioState::VhostVsock(_) => "vhost-vsock",
            VirtioState::HybridVsock(_) => "hybrid vsock",
            VirtioState::VhostNet(_) => "vhost-net",
            VirtioState::Keyboard(_) => "virtio-keyboard",
            VirtioState::MultiqueueNet(_) => "virtio-net (mq=on)",
        }
    }

    /// `KindMismatch` for a device of kind `expected` handed this state.
    pub fn mismatch(&self, expected: &'static str) -> crate::state::StateError {
        crate::state::StateError::KindMismatch { expected, found: self.kind() }
    }
}
