//! The device side of a virtio 1.1 packed virtqueue (virtio 1.2 §2.8), on
//! virtio-queue's packed descriptor layout and vm-memory: virtio-queue 0.18 has no packed
//! queue of its own.
//!
//! Positions are kept as free-running u16 counters of ring slots, like a split ring's
//! indices: slot = counter % size, and the wrap counter is 1 on even laps. Because the
//! transport only accepts power-of-two sizes (at most 32768), 65536 is a whole number of
//! double laps and the counters wrap consistently. This is what lets the packed ring share
//! `next_avail`/`next_used` (and so the saved queue state) with the split ring.

use std::sync::atomic::{fence, Ordering};
use virtio_bindings::virtio_ring::{
    VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VRING_PACKED_DESC_F_AVAIL, VRING_PACKED_DESC_F_USED,
    VRING_PACKED_EVENT_FLAG_DESC, VRING_PACKED_EVENT_FLAG_DISABLE, VRING_PACKED_EVENT_FLAG_ENABLE,
    VRING_PACKED_EVENT_F_WRAP_CTR,
};
use virtio_queue::desc::{packed, split};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, Permissions};

const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;
const F_INDIRECT: u16 = VRING_DESC_F_INDIRECT as u16;
const F_AVAIL: u16 = 1 << VRING_PACKED_DESC_F_AVAIL;
const F_USED: u16 = 1 << VRING_PACKED_DESC_F_USED;
const EVENT_ENABLE: u16 = VRING_PACKED_EVENT_FLAG_ENABLE as u16;
const EVENT_DISABLE: u16 = VRING_PACKED_EVENT_FLAG_DISABLE as u16;
const EVENT_DESC: u16 = VRING_PACKED_EVENT_FLAG_DESC as u16;
const WRAP_BIT: u16 = 1 << VRING_PACKED_EVENT_F_WRAP_CTR;

/// Bytes of one packed descriptor (addr, len, id, flags).
const DESC_SIZE: u64 = 16;
/// Offsets inside a descriptor.
const DESC_LEN: u64 = 8;
const DESC_ID: u64 = 12;
const DESC_FLAGS: u64 = 14;
/// Bytes of an event suppression structure (off_wrap, flags), and its flags' offset.
const EVENT_SIZE: u64 = 4;
const EVENT_FLAGS: u64 = 2;

/// A guest's packed ring that cannot be served. The device stops (needs a reset) rather
/// than guess.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackedError {
    #[error("packed ring access at {0:#x} is outside guest memory")]
    Memory(u64),
    #[error("descriptor chain at slot {0} is longer than the queue")]
    ChainTooLong(u16),
    #[error("descriptor at slot {0} has both NEXT and INDIRECT")]
    IndirectWithNext(u16),
    #[error(
        "indirect table at {addr:#x} has length {len} (not a non-zero multiple of 16, or more entries than the queue)"
    )]
    IndirectLength { addr: u64, len: u32 },
    #[error("indirect table at {0:#x} holds another indirect descriptor")]
    NestedIndirect(u64),
    #[error("buffers of the chain at slot {0} add up to more than 4 GiB")]
    ChainOverflow(u16),
    #[error("buffer id {0} is not one the device took")]
    UnknownId(u16),
}

/// One buffer taken from a packed ring: its descriptors, resolved (indirect tables
/// followed), in split form so devices read both layouts alike.
#[derive(Clone, Debug, Default)]
pub struct PackedChain {
    /// The buffer id: what `add_used` gives back.
    pub id: u16,
    pub descriptors: Vec<split::Descriptor>,
}

/// A packed virtqueue as the device serves it.
#[derive(Clone, Debug)]
pub struct PackedRing {
    size: u16,
    desc_table: GuestAddress,
    /// The driver's event suppression structure (the split ring's avail address).
    driver_event: GuestAddress,
    /// The device's event suppression structure (the split ring's used address).
    device_event: GuestAddress,
    next_avail: u16,
    next_used: u16,
    event_idx: bool,
    /// Ring slots each taken buffer occupies, by buffer id: the used position moves by
    /// that many when the buffer is given back. 0 = not taken.
    in_flight: Vec<u16>,
    /// `next_avail` before the last take, for `go_to_previous_position`.
    last_taken_from: u16,
    /// `next_used` when the driver was last interrupted (EVENT_IDX); None: never since
    /// activation, so the next check notifies.
    signalled_used: Option<u16>,
}

impl PackedRing {
    /// A ring of `size` slots (a power of two, as the transport checks) at the addresses
    /// the driver wrote to the queue registers, from the given positions.
    pub fn new(size: u16, desc: u64, driver: u64, device: u64, next_avail: u16, next_used: u16) -> Self {
        PackedRing {
            size,
            desc_table: GuestAddress(desc),
            driver_event: GuestAddress(driver),
            device_event: GuestAddress(device),
            next_avail,
            next_used,
            event_idx: false,
            in_flight: vec![0; usize::from(size)],
            last_taken_from: next_avail,
            signalled_used: None,
        }
    }

    pub fn size(&self) -> u16 {
        self.size
    }
    pub fn desc_table(&self) -> u64 {
        self.desc_table.0
    }
    pub fn driver_event(&self) -> u64 {
        self.driver_event.0
    }
    pub fn device_event(&self) -> u64 {
        self.device_event.0
    }
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }
    pub fn next_used(&self) -> u16 {
        self.next_used
    }
    pub fn event_idx_enabled(&self) -> bool {
        self.event_idx
    }
    pub fn set_event_idx(&mut self, enabled: bool) {
        self.event_idx = enabled;
    }

    /// Moves the available position (the net device's rewind of an RX attempt).
    pub fn set_next_avail(&mut self, next_avail: u16) {
        self.next_avail = next_avail;
    }

    /// The ring and both event structures lie in `mem`, suitably aligned (virtio 1.2
    /// §2.8.10.1: descriptor ring 16 bytes, event structures 4).
    pub fn is_valid<M: GuestMemory + ?Sized>(&self, mem: &M) -> bool {
        let ring_len = u64::from(self.size) * DESC_SIZE;
        let inside = |addr: GuestAddress, len: u64| mem.check_range(addr, len as usize, Permissions::ReadWrite);
        self.size.is_power_of_two()
            && self.desc_table.0 % DESC_SIZE == 0
            && self.driver_event.0 % EVENT_SIZE == 0
            && self.device_event.0 % EVENT_SIZE == 0
            && inside(self.desc_table, ring_len)
            && inside(self.driver_event, EVENT_SIZE)
            && inside(self.device_event, EVENT_SIZE)
    }

    /// The wrap counter of the lap `counter` is in (1 on the first).
    fn wrap(&self, counter: u16) -> bool {
        (counter / self.size) % 2 == 0
    }

    fn slot_addr(&self, counter: u16) -> GuestAddress {
        self.desc_table.unchecked_add(u64::from(counter % self.size) * DESC_SIZE)
    }

    fn load_u16<M: GuestMemory + ?Sized>(mem: &M, addr: GuestAddress, order: Ordering) -> Result<u16, PackedError> {
        mem.load::<u16>(addr, order).map(u16::from_le).map_err(|_| PackedError::Memory(addr.0))
    }

    fn store_u16<M: GuestMemory + ?Sized>(
        mem: &M,
        addr: GuestAddress,
        value: u16,
        order: Ordering,
    ) -> Result<(), PackedError> {
        mem.store(value.to_le(), addr, order).map_err(|_| PackedError::Memory(addr.0))
    }

    /// The driver made the slot at `counter` available: its AVAIL flag equals the wrap
    /// counter of that lap and its USED flag does not (§2.8.1).
    fn is_available<M: GuestMemory + ?Sized>(&self, mem: &M, counter: u16) -> Result<bool, PackedError> {
        let flags = Self::load_u16(mem, self.slot_addr(counter).unchecked_add(DESC_FLAGS), Ordering::Acquire)?;
        let wrap = self.wrap(counter);
        Ok((flags & F_AVAIL != 0) == wrap && (flags & F_USED != 0) != wrap)
    }

    fn read_desc<M: GuestMemory + ?Sized>(mem: &M, addr: GuestAddress) -> Result<packed::Descriptor, PackedError> {
        mem.read_obj::<packed::Descriptor>(addr).map_err(|_| PackedError::Memory(addr.0))
    }

    /// Takes the next available buffer, if any. On error nothing moves.
    pub fn pop<M: GuestMemory + ?Sized>(&mut self, mem: &M) -> Result<Option<PackedChain>, PackedError> {
        let start = self.next_avail;
        if !self.is_available(mem, start)? {
            return Ok(None);
        }
        // Orders the descriptors' reads after the flags that made them available.
        fence(Ordering::Acquire);
        let mut chain = PackedChain::default();
        let mut total: u32 = 0;
        let mut slots: u16 = 0;
        let slot_of = |slots: u16| start.wrapping_add(slots) % self.size;
        loop {
            if slots == self.size {
                return Err(PackedError::ChainTooLong(slot_of(0)));
            }
            let desc = Self::read_desc(mem, self.slot_addr(start.wrapping_add(slots)))?;
            slots += 1;
            let flags = desc.flags();
            if flags & F_INDIRECT != 0 {
                if flags & F_NEXT != 0 {
                    return Err(PackedError::IndirectWithNext(slot_of(slots - 1)));
                }
                self.read_indirect(mem, &desc, &mut chain, &mut total, slot_of(0))?;
            } else {
                total = total.checked_add(desc.len()).ok_or(PackedError::ChainOverflow(slot_of(0)))?;
                // NEXT is kept on all but the last: devices read a split chain's shape.
                chain.descriptors.push(split::Descriptor::new(
                    desc.addr().0,
                    desc.len(),
                    flags & (F_NEXT | F_WRITE),
                    0,
                ));
            }
            if flags & F_NEXT == 0 {
                chain.id = desc.id();
                break;
            }
        }
        if usize::from(chain.id) >= self.in_flight.len() {
            return Err(PackedError::UnknownId(chain.id));
        }
        self.in_flight[usize::from(chain.id)] = slots;
        self.last_taken_from = start;
        self.next_avail = start.wrapping_add(slots);
        Ok(Some(chain))
    }

    /// Appends the descriptors of the indirect table `desc` points to (§2.8.19): a run of
    /// descriptors whose NEXT flags do not matter, none of them indirect.
    fn read_indirect<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        desc: &packed::Descriptor,
        chain: &mut PackedChain,
        total: &mut u32,
        head_slot: u16,
    ) -> Result<(), PackedError> {
        let (addr, len) = (desc.addr(), desc.len());
        let count = u64::from(len) / DESC_SIZE;
        if len == 0 || u64::from(len) % DESC_SIZE != 0 || chain.descriptors.len() as u64 + count > u64::from(self.size)
        {
            return Err(PackedError::IndirectLength { addr: addr.0, len });
        }
        for i in 0..count {
            let at = addr.checked_add(i * DESC_SIZE).ok_or(PackedError::Memory(addr.0))?;
            let entry = Self::read_desc(mem, at)?;
            if entry.flags() & F_INDIRECT != 0 {
                return Err(PackedError::NestedIndirect(addr.0));
            }
            *total = total.checked_add(entry.len()).ok_or(PackedError::ChainOverflow(head_slot))?;
            let next = if i + 1 < count { F_NEXT } else { 0 };
            chain.descriptors.push(split::Descriptor::new(
                entry.addr().0,
                entry.len(),
                (entry.flags() & F_WRITE) | next,
                0,
            ));
        }
        Ok(())
    }

    /// Puts the last buffer taken back: the next `pop` returns it again.
    pub fn go_to_previous_position(&mut self) {
        self.next_avail = self.last_taken_from;
    }

    /// Gives buffer `id` back with `len` bytes written: a used descriptor at the used
    /// position, id and length first, then (after a release barrier) the flags that hand
    /// it to the driver (§2.8.8). The used position moves past the slots the buffer took.
    pub fn add_used<M: GuestMemory + ?Sized>(&mut self, mem: &M, id: u16, len: u32) -> Result<(), PackedError> {
        let taken = self.in_flight.get_mut(usize::from(id)).ok_or(PackedError::UnknownId(id))?;
        // A buffer taken before a snapshot restore: its slot count was not saved; every
        // device microvm saves with such a buffer (the balloon's statistics) posts one
        // descriptor, which is what this assumes (docs/dropin.md, "Packed virtqueues").
        let slots = std::mem::replace(taken, 0).max(1);
        let slot = self.slot_addr(self.next_used);
        mem.write_obj(len.to_le(), slot.unchecked_add(DESC_LEN)).map_err(|_| PackedError::Memory(slot.0))?;
        mem.write_obj(id.to_le(), slot.unchecked_add(DESC_ID)).map_err(|_| PackedError::Memory(slot.0))?;
        let mut flags = if self.wrap(self.next_used) { F_AVAIL | F_USED } else { 0 };
        if len > 0 {
            flags |= F_WRITE;
        }
        Self::store_u16(mem, slot.unchecked_add(DESC_FLAGS), flags, Ordering::Release)?;
        self.next_used = self.next_used.wrapping_add(slots);
        Ok(())
    }

    /// The position `counter` as an event suppression structure's off_wrap.
    fn off_wrap(&self, counter: u16) -> u16 {
        (counter % self.size) | if self.wrap(counter) { WRAP_BIT } else { 0 }
    }

    /// The free-running counter at or before `near` whose slot and wrap are `off_wrap`'s.
    fn counter_of(&self, off_wrap: u16, near: u16) -> u16 {
        let double_lap = u32::from(self.size) * 2;
        let target = u32::from(off_wrap & !WRAP_BIT) + if off_wrap & WRAP_BIT != 0 { 0 } else { u32::from(self.size) };
        let here = u32::from(near) % double_lap;
        let back = (here + double_lap - target % double_lap) % double_lap;
        near.wrapping_sub(back as u16)
    }

    /// Whether the driver wants an interrupt for the buffers used since the last one
    /// (§2.8.10, the driver's event suppression structure): ENABLE yes, DISABLE no, DESC
    /// (EVENT_IDX) if the used position passed the slot the driver named.
    pub fn needs_notification<M: GuestMemory + ?Sized>(&mut self, mem: &M) -> Result<bool, PackedError> {
        // The used descriptors must be visible before the driver's choice is read.
        fence(Ordering::SeqCst);
        let flags = Self::load_u16(mem, self.driver_event.unchecked_add(EVENT_FLAGS), Ordering::Acquire)?;
        let new = self.next_used;
        let old = self.signalled_used.replace(new);
        match flags {
            EVENT_DISABLE => Ok(false),
            EVENT_DESC if self.event_idx => {
                let Some(old) = old else { return Ok(true) };
                let off_wrap = Self::load_u16(mem, self.driver_event, Ordering::Acquire)?;
                let event = self.counter_of(off_wrap, new);
                // vring_need_event: the slot lies in [old, new).
                Ok(new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old))
            }
            // ENABLE, and anything else the driver has no right to write.
            _ => Ok(true),
        }
    }

    /// Asks the driver for notifications (§2.8.10, the device's structure): with EVENT_IDX
    /// for the slot at the available position. Returns whether buffers are already
    /// available, which the caller must serve instead of waiting.
    pub fn enable_notification<M: GuestMemory + ?Sized>(&mut self, mem: &M) -> Result<bool, PackedError> {
        if self.event_idx {
            Self::store_u16(mem, self.device_event, self.off_wrap(self.next_avail), Ordering::Relaxed)?;
            Self::store_u16(mem, self.device_event.unchecked_add(EVENT_FLAGS), EVENT_DESC, Ordering::Release)?;
        } else {
            Self::store_u16(mem, self.device_event.unchecked_add(EVENT_FLAGS), EVENT_ENABLE, Ordering::Release)?;
        }
        // The driver's next descriptor must be read after our request is visible.
        fence(Ordering::SeqCst);
        self.is_available(mem, self.next_avail)
    }

    /// Asks the driver not to notify. With EVENT_IDX the structure is left as it is (as
    /// the split ring does: the driver notifies only at the slot named).
    pub fn disable_notification<M: GuestMemory + ?Sized>(&mut self, mem: &M) -> Result<(), PackedError> {
        if self.event_idx {
            return Ok(());
        }
        Self::store_u16(mem, self.device_event.unchecked_add(EVENT_FLAGS), EVENT_DISABLE, Ordering::Relaxed)
    }

    /// The counter just past the last available slot in a row from `next_avail` (at most
    /// one lap): what a split ring's avail index says, for the net device's check that the
    /// whole ring is not enough for a frame.
    pub fn avail_end<M: GuestMemory + ?Sized>(&self, mem: &M) -> Result<u16, PackedError> {
        let mut end = self.next_avail;
        while end.wrapping_sub(self.next_avail) < self.size && self.is_available(mem, end)? {
            end = end.wrapping_add(1);
        }
        Ok(end)
    }
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
