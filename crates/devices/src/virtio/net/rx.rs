//! The receive side: puts one frame from the tap (virtio-net header first)
//! into the guest's RX buffers, spanning several descriptor chains when
//! VIRTIO_NET_F_MRG_RXBUF is negotiated (virtio 1.x §5.1.6.4).

use super::fault::QueueFault;
use super::tap::VNET_HDR_LEN;
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Virtqueue;
use std::sync::atomic::Ordering;

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

/// Offset of num_buffers in `virtio_net_hdr_v1`.
const NUM_BUFFERS: usize = 10;

/// What became of a frame.
#[derive(Debug)]
pub enum Delivery {
    /// Written to the guest (its header's num_buffers says in how many chains).
    Delivered,
    /// The guest has not posted enough buffers yet: nothing was consumed.
    /// `seen_avail` is the avail index the attempt saw.
    NoBuffers { seen_avail: u16 },
    /// The frame can never fit: one chain is too small and MRG_RXBUF is off,
    /// or the whole ring is too small. Nothing was consumed; drop the frame.
    TooBig { capacity: usize },
    /// The queue cannot be served any more (bad avail index or used ring). Boxed: made
    /// once in a device's life, it keeps `Delivery` two words, returned in registers.
    Broken(Box<QueueFault>),
}

/// `Delivery::Broken`, out of line: the data path only branches to it.
#[cold]
fn broken(error: QueueFault) -> Delivery {
    Delivery::Broken(Box::new(error))
}

/// Buffers reused from frame to frame.
#[derive(Default)]
pub struct Scratch {
    /// (head index, end of its segments in `segments`) for each chain taken.
    chains: Vec<(u16, usize)>,
    /// Device-writable buffers of the chains taken, in order.
    segments: Vec<(GuestAddress, usize)>,
}

/// Delivers `frame` (header included, at least VNET_HDR_LEN bytes). Chains
/// the guest got wrong (buffers outside memory, device-readable buffers,
/// loops, smaller than a header) are returned used with length 0 and counted
/// in `malformed`; the frame goes to the next chains.
pub fn deliver(
    mem: &GuestMemoryMmap,
    queue: &mut Virtqueue,
    frame: &mut [u8],
    mergeable: bool,
    scratch: &mut Scratch,
    malformed: &mut usize,
) -> Delivery {
    debug_assert!(frame.len() >= VNET_HDR_LEN);
    'attempt: loop {
        scratch.chains.clear();
        scratch.segments.clear();
        let start = queue.next_avail();
        let mut capacity = 0usize;
        while capacity < frame.len() {
            if !mergeable && !scratch.chains.is_empty() {
                // One chain must hold the frame: give the buffer back (it
                // may fit the next frame) and drop this one, as QEMU does.
                queue.set_next_avail(start);
                return Delivery::TooBig { capacity };
            }
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return broken(QueueFault::RxAvail(e)),
            };
            let Some(chain) = chain else {
                let seen = match queue.avail_idx(mem, Ordering::Acquire) {
                    Ok(idx) => idx.0,
                    Err(e) => return broken(QueueFault::RxAvailIndex(e)),
                };
                queue.set_next_avail(start);
                if seen.wrapping_sub(start) >= queue.size() {
                    // Every buffer the ring can hold is not enough.
                    return Delivery::TooBig { capacity };
                }
                return Delivery::NoBuffers { seen_avail: seen };
            };
            let head = chain.head_index();
            let first_segment = scratch.segments.len();
            let mut chain_capacity = 0usize;
            let mut good = true;
            let mut more = false;
            for desc in chain {
                more = desc.has_next();
                let len = desc.len() as usize;
                if !desc.is_write_only() || !mem.check_range(desc.addr(), len, Permissions::Write) {
                    good = false;
                    break;
                }
                if len > 0 {
                    scratch.segments.push((desc.addr(), len));
                    chain_capacity += len;
                }
            }
            if !good || more || chain_capacity < VNET_HDR_LEN {
                // Return every chain of this attempt unused, then start over
                // with the chains after them: nothing needs rewinding.
                *malformed += 1;
                scratch.segments.truncate(first_segment);
                for head in scratch.chains.iter().map(|&(h, _)| h).chain(std::iter::once(head)) {
                    if let Err(source) = queue.add_used(mem, head, 0) {
                        return broken(QueueFault::RxReturn { head, source });
                    }
                }
                continue 'attempt;
            }
            scratch.chains.push((head, scratch.segments.len()));
            capacity += chain_capacity;
        }

        let count = scratch.chains.len() as u16;
        frame[NUM_BUFFERS..VNET_HDR_LEN].copy_from_slice(&count.to_le_bytes());
        let mut offset = 0;
        let mut first_segment = 0;
        for &(head, end) in &scratch.chains {
            let mut written = 0usize;
            for &(addr, len) in &scratch.segments[first_segment..end] {
                let n = len.min(frame.len() - offset);
                if n == 0 {
                    break;
                }
                // The range was checked above; guest memory does not shrink.
                if mem.write_slice(&frame[offset..offset + n], addr).is_err() {
                    return broken(QueueFault::RxUnwritable(addr));
                }
                offset += n;
                written += n;
            }
            first_segment = end;
            if let Err(source) = queue.add_used(mem, head, written as u32) {
                return broken(QueueFault::RxReturn { head, source });
            }
        }
        return Delivery::Delivered;
    }
}

/// After `NoBuffers`: asks the guest to notify when it adds buffers beyond
/// `seen_avail` (with EVENT_IDX, avail_event = seen_avail; the queue's own
/// enable_notification would use next_avail, which lags behind when some
/// buffers were seen but were not enough). Returns true if buffers arrived
/// meanwhile, so the caller must try again instead of waiting.
pub fn wait_for_buffers(mem: &GuestMemoryMmap, queue: &mut Virtqueue, seen_avail: u16) -> Result<bool, QueueFault> {
    let next = queue.next_avail();
    queue.set_next_avail(seen_avail);
    let more = queue.enable_notification(mem);
    queue.set_next_avail(next);
    more.map_err(QueueFault::RxNotifications)
}
