//! What a virtio-mmio slot saves (its registers, every queue, the device's own state):
//! plain data, apart from the save and restore code (`state.rs`) so the saved-state
//! types of the whole bus (`crate::state`) can name it without depending on the transport.

use crate::virtio::{SavedQueue, VirtioState};
use serde::{Deserialize, Serialize};

/// One virtio-mmio slot as saved.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TransportState {
    /// VIRTIO_ID_* of the device: a restore into another kind is refused with it.
    pub device_type: u32,
    pub status: u32,
    pub device_features_sel: u32,
    pub driver_features_sel: u32,
    pub acked_features: u64,
    pub queue_sel: u32,
    /// The driver set DRIVER_OK and the device took the queues.
    pub activated: bool,
    pub interrupt_status: u32,
    pub needs_reset: bool,
    /// Every queue of the device, in index order. For an activated device the ones it
    /// took are saved where the device has got to.
    pub queues: Vec<SavedQueue>,
    /// Queues whose size the driver set to one the device refused.
    pub bad_queue_size: Vec<bool>,
    pub device: VirtioState,
}
