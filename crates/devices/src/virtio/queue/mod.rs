//! The one queue type every device microvm serves itself uses, over both ring layouts:
//! virtio-queue's split ring and our packed ring (`packed.rs`), chosen by the transport
//! from the negotiated VIRTIO_F_RING_PACKED. The methods are the split queue's, so a device
//! serves either layout with the same code; the chains both produce read alike.

#[cfg(test)]
pub(crate) mod bench_tests;
mod packed;

pub use packed::{PackedChain, PackedError, PackedRing};

use std::num::Wrapping;
use std::ops::Deref;
use std::sync::atomic::Ordering;
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemory;

/// VIRTIO_F_RING_PACKED: the device offers it only with `packed=on`.
pub const VIRTIO_F_RING_PACKED: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_RING_PACKED;

/// A ring the device cannot serve, of either layout.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Split(#[from] virtio_queue::Error),
    #[error(transparent)]
    Packed(#[from] PackedError),
}

/// An activated virtqueue.
#[derive(Debug)]
pub enum Virtqueue {
    Split(Queue),
    Packed {
        ring: PackedRing,
        /// The largest size the device offered (kept for the saved state).
        max_size: u16,
    },
}

impl From<Queue> for Virtqueue {
    fn from(queue: Queue) -> Self {
        Virtqueue::Split(queue)
    }
}

impl Virtqueue {
    /// The queue the driver set up in the transport's registers, in the layout it
    /// negotiated: a packed ring's descriptor ring, driver and device event structures
    /// are at the split ring's descriptor, avail and used addresses (virtio-mmio's
    /// registers are the same for both, §4.2.2).
    pub fn from_registers(queue: Queue, packed: bool) -> Self {
        if !packed {
            return Virtqueue::Split(queue);
        }
        Virtqueue::Packed { ring: packed_ring(&queue), max_size: queue.max_size() }
    }

    /// Whether the rings `queue`'s registers describe, in the negotiated layout, lie in
    /// `mem` (what the transport checks at DRIVER_OK and on a restore).
    pub fn registers_valid<M: GuestMemory>(queue: &Queue, packed: bool, mem: &M) -> bool {
        if packed {
            packed_ring(queue).is_valid(mem)
        } else {
            queue.is_valid(mem)
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self, Virtqueue::Packed { .. })
    }

    /// The split queue (the vhost devices, which never negotiate packed rings).
    pub fn as_split(&self) -> Option<&Queue> {
        match self {
            Virtqueue::Split(q) => Some(q),
            Virtqueue::Packed { .. } => None,
        }
    }

    pub fn is_valid<M: GuestMemory>(&self, mem: &M) -> bool {
        match self {
            Virtqueue::Split(q) => q.is_valid(mem),
            Virtqueue::Packed { ring, .. } => ring.is_valid(mem),
        }
    }

    pub fn max_size(&self) -> u16 {
        match self {
            Virtqueue::Split(q) => q.max_size(),
            Virtqueue::Packed { max_size, .. } => *max_size,
        }
    }

    pub fn size(&self) -> u16 {
        match self {
            Virtqueue::Split(q) => q.size(),
            Virtqueue::Packed { ring, .. } => ring.size(),
        }
    }

    /// Activated queues are ready (the transport checked it).
    pub fn ready(&self) -> bool {
        match self {
            Virtqueue::Split(q) => q.ready(),
            Virtqueue::Packed { .. } => true,
        }
    }

    pub fn desc_table(&self) -> u64 {
        match self {
            Virtqueue::Split(q) => q.desc_table(),
            Virtqueue::Packed { ring, .. } => ring.desc_table(),
        }
    }

    /// The avail ring, or a packed ring's driver event suppression structure.
    pub fn avail_ring(&self) -> u64 {
        match self {
            Virtqueue::Split(q) => q.avail_ring(),
            Virtqueue::Packed { ring, .. } => ring.driver_event(),
        }
    }

    /// The used ring, or a packed ring's device event suppression structure.
    pub fn used_ring(&self) -> u64 {
        match self {
            Virtqueue::Split(q) => q.used_ring(),
            Virtqueue::Packed { ring, .. } => ring.device_event(),
        }
    }

    pub fn set_event_idx(&mut self, enabled: bool) {
        match self {
            Virtqueue::Split(q) => q.set_event_idx(enabled),
            Virtqueue::Packed { ring, .. } => ring.set_event_idx(enabled),
        }
    }

    pub fn event_idx_enabled(&self) -> bool {
        match self {
            Virtqueue::Split(q) => q.event_idx_enabled(),
            Virtqueue::Packed { ring, .. } => ring.event_idx_enabled(),
        }
    }

    /// The next available entry the device takes (a packed ring's slot counter).
    pub fn next_avail(&self) -> u16 {
        match self {
            Virtqueue::Split(q) => q.next_avail(),
            Virtqueue::Packed { ring, .. } => ring.next_avail(),
        }
    }

    pub fn set_next_avail(&mut self, next_avail: u16) {
        match self {
            Virtqueue::Split(q) => q.set_next_avail(next_avail),
            Virtqueue::Packed { ring, .. } => ring.set_next_avail(next_avail),
        }
    }

    pub fn next_used(&self) -> u16 {
        match self {
            Virtqueue::Split(q) => q.next_used(),
            Virtqueue::Packed { ring, .. } => ring.next_used(),
        }
    }

    pub fn set_next_used(&mut self, next_used: u16) {
        match self {
            Virtqueue::Split(q) => q.set_next_used(next_used),
            // The vhost devices' restore path only: they never run packed rings.
            Virtqueue::Packed { .. } => {}
        }
    }

    /// The used index in guest memory (a split ring's; a packed ring has none in memory,
    /// its device's position is the answer).
    pub fn used_idx<M: GuestMemory>(&self, mem: &M, order: Ordering) -> Result<Wrapping<u16>, QueueError> {
        match self {
            Virtqueue::Split(q) => Ok(q.used_idx(mem, order)?),
            Virtqueue::Packed { ring, .. } => Ok(Wrapping(ring.next_used())),
        }
    }

    /// How far the driver has made entries available: a split ring's avail index, a
    /// packed ring's counter past its last available slot in a row.
    pub fn avail_idx<M: GuestMemory>(&self, mem: &M, order: Ordering) -> Result<Wrapping<u16>, QueueError> {
        match self {
            Virtqueue::Split(q) => Ok(q.avail_idx(mem, order)?),
            Virtqueue::Packed { ring, .. } => Ok(Wrapping(ring.avail_end(mem)?)),
        }
    }

    /// The available chains from the device's position on. A packed ring's first chain is
    /// taken here, so that a malformed one is this call's error (nothing moves).
    pub fn iter<M>(&mut self, mem: M) -> Result<AvailIter<'_, M>, QueueError>
    where
        M: Deref + Clone,
        M::Target: GuestMemory,
    {
        match self {
            Virtqueue::Split(q) => Ok(AvailIter::Split(q.iter(mem)?)),
            Virtqueue::Packed { ring, .. } => {
                let first = ring.pop(&*mem)?;
                Ok(AvailIter::Packed { ring, mem, first })
            }
        }
    }

    /// The next available chain, None if there is none or the ring is malformed.
    pub fn pop_descriptor_chain<M>(&mut self, mem: M) -> Option<Chain<M>>
    where
        M: Deref + Clone,
        M::Target: GuestMemory,
    {
        self.iter(mem).ok()?.next()
    }

    /// Puts the last chain taken back in the ring.
    pub fn go_to_previous_position(&mut self) {
        match self {
            Virtqueue::Split(q) => q.go_to_previous_position(),
            Virtqueue::Packed { ring, .. } => ring.go_to_previous_position(),
        }
    }

    /// Gives the chain `head_index` names back with `len` bytes written.
    pub fn add_used<M: GuestMemory>(&mut self, mem: &M, head_index: u16, len: u32) -> Result<(), QueueError> {
        match self {
            Virtqueue::Split(q) => Ok(q.add_used(mem, head_index, len)?),
            Virtqueue::Packed { ring, .. } => Ok(ring.add_used(mem, head_index, len)?),
        }
    }

    pub fn needs_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        match self {
            Virtqueue::Split(q) => Ok(q.needs_notification(mem)?),
            Virtqueue::Packed { ring, .. } => Ok(ring.needs_notification(mem)?),
        }
    }

    pub fn enable_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        match self {
            Virtqueue::Split(q) => Ok(q.enable_notification(mem)?),
            Virtqueue::Packed { ring, .. } => Ok(ring.enable_notification(mem)?),
        }
    }

    pub fn disable_notification<M: GuestMemory>(&mut self, mem: &M) -> Result<(), QueueError> {
        match self {
            Virtqueue::Split(q) => Ok(q.disable_notification(mem)?),
            Virtqueue::Packed { ring, .. } => Ok(ring.disable_notification(mem)?),
        }
    }
}

fn packed_ring(queue: &Queue) -> PackedRing {
    let mut ring = PackedRing::new(
        queue.size(),
        queue.desc_table(),
        queue.avail_ring(),
        queue.used_ring(),
        queue.next_avail(),
        queue.next_used(),
    );
    ring.set_event_idx(queue.event_idx_enabled());
    ring
}

/// The available chains of a [`Virtqueue`].
pub enum AvailIter<'a, M> {
    Split(virtio_queue::AvailIter<'a, M>),
    Packed { ring: &'a mut PackedRing, mem: M, first: Option<PackedChain> },
}

impl<M> Iterator for AvailIter<'_, M>
where
    M: Deref + Clone,
    M::Target: GuestMemory,
{
    type Item = Chain<M>;

    fn next(&mut self) -> Option<Chain<M>> {
        match self {
            AvailIter::Split(iter) => iter.next().map(Chain::Split),
            AvailIter::Packed { ring, mem, first } => {
                // A malformed later chain ends the iteration; the next `iter` reports it.
                let chain = match first.take() {
                    Some(chain) => chain,
                    None => ring.pop(&**mem).ok()??,
                };
                Some(Chain::Packed { id: chain.id, descriptors: chain.descriptors.into_iter() })
            }
        }
    }
}

/// One descriptor chain of either layout, read as a split chain: the descriptors in
/// order (indirect tables followed), NEXT set on all but the last.
#[derive(Clone)]
pub enum Chain<M> {
    Split(DescriptorChain<M>),
    Packed { id: u16, descriptors: std::vec::IntoIter<Descriptor> },
}

impl<M> Chain<M>
where
    M: Deref,
    M::Target: GuestMemory,
{
    /// What `add_used` takes: the split chain's head index, the packed buffer's id.
    pub fn head_index(&self) -> u16 {
        match self {
            Chain::Split(c) => c.head_index(),
            Chain::Packed { id, .. } => *id,
        }
    }

    /// The device-readable descriptors.
    pub fn readable(self) -> RwIter<M> {
        RwIter { chain: self, writable: false }
    }

    /// The device-writable descriptors.
    pub fn writable(self) -> RwIter<M> {
        RwIter { chain: self, writable: true }
    }
}

impl<M> Iterator for Chain<M>
where
    M: Deref,
    M::Target: GuestMemory,
{
    type Item = Descriptor;

    fn next(&mut self) -> Option<Descriptor> {
        match self {
            Chain::Split(c) => c.next(),
            Chain::Packed { descriptors, .. } => descriptors.next(),
        }
    }
}

/// The readable or writable descriptors of a [`Chain`] (virtio-queue's filter).
#[derive(Clone)]
pub struct RwIter<M> {
    chain: Chain<M>,
    writable: bool,
}

impl<M> Iterator for RwIter<M>
where
    M: Deref,
    M::Target: GuestMemory,
{
    type Item = Descriptor;

    fn next(&mut self) -> Option<Descriptor> {
        let writable = self.writable;
        self.chain.by_ref().find(|d| d.is_write_only() == writable)
    }
}
