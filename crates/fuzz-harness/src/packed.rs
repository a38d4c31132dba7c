//! The packed virtqueue on its own: a ring whose descriptors, indirect tables and driver
//! event structure are the input's bytes, served by the device side's every operation in
//! the input's order. The devices' targets (`queues.rs`) reach it too, whenever their input
//! acks VIRTIO_F_RING_PACKED.

use crate::bytes::Bytes;
use devices::virtio::queue::PackedRing;
use vm_memory::{Bytes as _, GuestAddress};

/// Guest memory of the target: the ring, its event structures and tables all lie in it.
const MEM: u64 = 64 << 10;
const RING: u64 = 0x1000;
const DRIVER_EVENT: u64 = 0x800;
const DEVICE_EVENT: u64 = 0x810;

pub fn packed_ring(data: &[u8]) {
    let mem = devices::guest_memory::untracked(&[(GuestAddress(0), MEM as usize)]);
    let mut b = Bytes::new(data);
    let size = 1u16 << (b.u8() % 7);
    let start = b.u16();
    let mut ring = PackedRing::new(size, RING, DRIVER_EVENT, DEVICE_EVENT, start, start);
    assert!(ring.is_valid(&mem));
    for _ in 0..512 {
        if b.is_empty() {
            break;
        }
        match b.u8() % 10 {
            0 | 1 => {
                // A descriptor anywhere in memory (the ring's slots, or a table).
                let at = if b.u8() % 2 == 0 { RING + 16 * u64::from(b.u16() % size) } else { u64::from(b.u16()) };
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(&b.u64().to_le_bytes());
                raw[8..12].copy_from_slice(&b.u32().to_le_bytes());
                raw[12..].copy_from_slice(&b.u32().to_le_bytes());
                let _ = mem.write_slice(&raw, GuestAddress(at));
            }
            2 | 3 => {
                if let Ok(Some(chain)) = ring.pop(&mem) {
                    assert!(chain.descriptors.len() <= usize::from(size), "a chain longer than the queue");
                    let total: u64 = chain.descriptors.iter().map(|d| u64::from(d.len())).sum();
                    assert!(total <= u64::from(u32::MAX), "a chain over 4 GiB");
                }
            }
            4 => {
                let _ = ring.add_used(&mem, b.u16() % (size + 2), b.u32());
            }
            5 => ring.go_to_previous_position(),
            6 => {
                let _ = mem.write_obj(b.u32(), GuestAddress(DRIVER_EVENT));
                let _ = ring.needs_notification(&mem);
            }
            7 => {
                let _ = ring.enable_notification(&mem);
            }
            8 => {
                let _ = ring.disable_notification(&mem);
            }
            _ => {
                ring.set_event_idx(b.u8() % 2 == 1);
                let _ = ring.avail_end(&mem);
            }
        }
    }
}
