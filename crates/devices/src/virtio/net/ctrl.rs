//! virtio-net's multiqueue layout and control queue (virtio 1.x §5.1.2, §5.1.6.5), for
//! `mq=on`: queue pairs (receiveq k at 2k, transmitq k at 2k+1) and, last, the control
//! queue, whose VQ_PAIRS_SET command says how many pairs the driver uses. The userspace
//! device and vhost-net share it: with vhost-net the control queue stays in microvm.
//!
//! Commands and answers, as QEMU answers them where microvm offers the feature:
//! - MQ VQ_PAIRS_SET with 1..=max pairs (MQ negotiated): OK, the pairs change;
//!   otherwise ERR and nothing changes.
//! - RX PROMISC / ALLMULTI and MAC TABLE_SET: OK. VIRTIO_NET_F_CTRL_RX is not
//!   offered, so Linux never sends them; a driver that does gets every frame the tap
//!   gives (no filter: the device behaves as promiscuous), which is a superset of what
//!   it asked for.
//! - Anything else (MAC_ADDR_SET, ANNOUNCE, VLAN, offloads, RSS, the RX_EXTRA
//!   commands): ERR, as QEMU answers a class whose feature is not negotiated.

use super::features::{F_CTRL_VQ, F_MQ, MAX_QUEUE_PAIRS, MULTIQUEUE_FEATURES};
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::{QueueError, Virtqueue};
use crate::virtio::ActivateContext;
use virtio_bindings::virtio_net as vn;
use vm_memory::Bytes;

/// Size of the control queue (QEMU's).
pub const CTRL_QUEUE_SIZE: u16 = 64;
/// Size of every data queue.
pub const DATA_QUEUE_SIZE: u16 = 256;
/// Longest command prefix read: class, command, and a VQ_PAIRS_SET's 16-bit count.
const COMMAND_PREFIX: usize = 4;

/// The queues a virtio-net device has, and which of them a driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Queue pairs the device has (`queues=N` of the netdev).
    pub max_pairs: u16,
    /// `mq=on`: the control queue and VIRTIO_NET_F_MQ are offered.
    pub multiqueue: bool,
}

impl Layout {
    pub const SINGLE: Layout = Layout { max_pairs: 1, multiqueue: false };

    /// `mq=on` with `pairs` queue pairs, if that many are possible (1 to
    /// [`MAX_QUEUE_PAIRS`]).
    pub fn multiqueue(pairs: usize) -> Option<Layout> {
        let max_pairs = u16::try_from(pairs).ok().filter(|n| (1..=MAX_QUEUE_PAIRS).contains(n))?;
        Some(Layout { max_pairs, multiqueue: true })
    }

    /// The maximum size of every queue, in index order.
    pub fn queue_sizes(&self) -> Vec<u16> {
        let mut sizes = vec![DATA_QUEUE_SIZE; 2 * usize::from(self.max_pairs)];
        if self.multiqueue {
            sizes.push(CTRL_QUEUE_SIZE);
        }
        sizes
    }

    /// Features this layout adds to the offer.
    pub fn features(&self) -> u64 {
        if self.multiqueue {
            MULTIQUEUE_FEATURES
        } else {
            0
        }
    }

    /// Pairs the driver sets up with `acked`: all with MQ, else the first.
    pub fn pairs(&self, acked: u64) -> usize {
        if acked & F_MQ != 0 {
            usize::from(self.max_pairs)
        } else {
            1
        }
    }

    /// Where the control queue is with `acked` (after the pairs in use), if negotiated.
    pub fn ctrl_index(&self, acked: u64) -> Option<usize> {
        (self.multiqueue && acked & F_CTRL_VQ != 0).then(|| 2 * self.pairs(acked))
    }

    /// How many queues, from the first, the driver sets up with `acked`.
    pub fn active_queues(&self, acked: u64) -> usize {
        self.ctrl_index(acked).map_or(2 * self.pairs(acked), |ctrl| ctrl + 1)
    }
}

/// Why the control queue stopped being served.
#[derive(Debug, thiserror::Error)]
pub enum CtrlError {
    #[error("bad control avail ring ({0})")]
    AvailRing(#[source] QueueError),
    #[error("cannot return control chain {head} ({source})")]
    UsedRing { head: u16, source: QueueError },
}

/// The answer to one command, and a new count of pairs if it asked for one.
fn answer(command: &[u8], max_pairs: u16, mq_acked: bool) -> (u8, Option<u16>) {
    const OK: u8 = vn::VIRTIO_NET_OK as u8;
    const ERR: u8 = vn::VIRTIO_NET_ERR as u8;
    let (Some(&class), Some(&cmd)) = (command.first(), command.get(1)) else { return (ERR, None) };
    match (u32::from(class), u32::from(cmd)) {
        (vn::VIRTIO_NET_CTRL_MQ, vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) => {
            let pairs = command.get(2..4).map(|b| u16::from_le_bytes([b[0], b[1]]));
            match pairs {
                Some(n) if mq_acked && (1..=max_pairs).contains(&n) => (OK, Some(n)),
                _ => (ERR, None),
            }
        }
        (vn::VIRTIO_NET_CTRL_RX, vn::VIRTIO_NET_CTRL_RX_PROMISC | vn::VIRTIO_NET_CTRL_RX_ALLMULTI)
        | (vn::VIRTIO_NET_CTRL_MAC, vn::VIRTIO_NET_CTRL_MAC_TABLE_SET) => (OK, None),
        _ => (ERR, None),
    }
}

/// Serves every command waiting on the control queue, calling `set_pairs` for an
/// accepted VQ_PAIRS_SET. A chain without a writable byte for the answer, or with a
/// buffer outside guest memory, is returned unanswered (length 0): the driver waits
/// for the chain, not for the answer. Returns whether chains were returned.
pub fn serve(
    mem: &GuestMemoryMmap,
    queue: &mut Virtqueue,
    layout: Layout,
    mq_acked: bool,
    mut set_pairs: impl FnMut(u16),
) -> Result<bool, CtrlError> {
    let mut used = false;
    loop {
        let chain = match queue.iter(mem) {
            Ok(mut iter) => iter.next(),
            Err(e) => return Err(CtrlError::AvailRing(e)),
        };
        let Some(chain) = chain else {
            // With EVENT_IDX the driver kicks only when its avail index passes the
            // avail_event this publishes: without it, no later command would be
            // kicked (Linux spins on the answer). Look again: one may have come.
            match queue.enable_notification(mem) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => return Err(CtrlError::AvailRing(e)),
            }
        };
        let head = chain.head_index();
        let mut command = [0u8; COMMAND_PREFIX];
        let mut read = 0;
        let mut ack_at = None;
        for desc in chain {
            if desc.is_write_only() {
                ack_at = ack_at.or(Some(desc.addr()));
                continue;
            }
            let n = (desc.len() as usize).min(COMMAND_PREFIX - read);
            if n > 0 && mem.read_slice(&mut command[read..read + n], desc.addr()).is_ok() {
                read += n;
            }
        }
        let (ack, pairs) = answer(&command[..read], layout.max_pairs, mq_acked);
        let written = match ack_at {
            Some(addr) if mem.write_obj(ack, addr).is_ok() => {
                if let Some(n) = pairs {
                    set_pairs(n);
                }
                1
            }
            _ => 0,
        };
        queue.add_used(mem, head, written).map_err(|source| CtrlError::UsedRing { head, source })?;
        used = true;
    }
    Ok(used)
}

/// One turn of the control queue at `index` of `ctx`: its commands served and the
/// driver interrupted if it wants; the pair count of the last accepted VQ_PAIRS_SET.
pub fn turn(ctx: &mut ActivateContext, index: usize, layout: Layout) -> Result<Option<u16>, CtrlError> {
    let mq_acked = ctx.acked_features & F_MQ != 0;
    let mut wanted = None;
    let queue = &mut ctx.queues[index];
    if serve(&ctx.mem, queue, layout, mq_acked, |n| wanted = Some(n))?
        && queue.needs_notification(&ctx.mem).unwrap_or(true)
    {
        ctx.interrupt.signal_used_queue();
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_follows_what_the_driver_acked() {
        let mq = Layout { max_pairs: 4, multiqueue: true };
        assert_eq!(mq.queue_sizes().len(), 9);
        assert_eq!(mq.queue_sizes()[8], CTRL_QUEUE_SIZE);
        assert_eq!((mq.pairs(F_MQ | F_CTRL_VQ), mq.ctrl_index(F_MQ | F_CTRL_VQ)), (4, Some(8)));
        assert_eq!(mq.active_queues(F_MQ | F_CTRL_VQ), 9);
        // The control queue without MQ follows the first pair (virtio 1.x §5.1.2).
        assert_eq!((mq.ctrl_index(F_CTRL_VQ), mq.active_queues(F_CTRL_VQ)), (Some(2), 3));
        assert_eq!((mq.ctrl_index(0), mq.active_queues(0)), (None, 2));
        assert_eq!(Layout::SINGLE.queue_sizes(), vec![DATA_QUEUE_SIZE; 2]);
        assert_eq!(Layout::SINGLE.features(), 0);
        assert_eq!(Layout::SINGLE.active_queues(F_MQ | F_CTRL_VQ), 2);
        assert_eq!(Layout::multiqueue(4), Some(mq));
        assert_eq!(Layout::multiqueue(0), None);
        assert_eq!(Layout::multiqueue(usize::from(MAX_QUEUE_PAIRS) + 1), None);
    }

    #[test]
    fn commands_are_answered_as_qemu_answers_them() {
        let ok = vn::VIRTIO_NET_OK as u8;
        let err = vn::VIRTIO_NET_ERR as u8;
        let mq = vn::VIRTIO_NET_CTRL_MQ as u8;
        let set = vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET as u8;
        assert_eq!(answer(&[mq, set, 3, 0], 4, true), (ok, Some(3)));
        assert_eq!(answer(&[mq, set, 5, 0], 4, true), (err, None));
        assert_eq!(answer(&[mq, set, 0, 0], 4, true), (err, None));
        assert_eq!(answer(&[mq, set, 2, 0], 4, false), (err, None));
        assert_eq!(answer(&[mq, set, 2], 4, true), (err, None));
        let rx = vn::VIRTIO_NET_CTRL_RX as u8;
        assert_eq!(answer(&[rx, vn::VIRTIO_NET_CTRL_RX_PROMISC as u8, 1], 4, true), (ok, None));
        assert_eq!(answer(&[rx, vn::VIRTIO_NET_CTRL_RX_ALLMULTI as u8, 0], 4, true), (ok, None));
        assert_eq!(answer(&[rx, vn::VIRTIO_NET_CTRL_RX_NOBCAST as u8, 1], 4, true), (err, None));
        let mac = vn::VIRTIO_NET_CTRL_MAC as u8;
        assert_eq!(answer(&[mac, vn::VIRTIO_NET_CTRL_MAC_TABLE_SET as u8], 4, true), (ok, None));
        assert_eq!(answer(&[mac, vn::VIRTIO_NET_CTRL_MAC_ADDR_SET as u8], 4, true), (err, None));
        assert_eq!(answer(&[vn::VIRTIO_NET_CTRL_ANNOUNCE as u8, 0], 4, true), (err, None));
        assert_eq!(answer(&[], 4, true), (err, None));
    }
}
