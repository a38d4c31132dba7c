//! The transmit side: one descriptor chain of the TX queue is one frame
//! (virtio-net header first) for the tap.

use super::tap::VNET_HDR_LEN;
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Chain;
use std::ops::Deref;

use vm_memory::Bytes;

/// Largest chain accepted: the header plus a 64 KiB GSO frame.
pub const MAX_TX_PACKET: usize = 65562;
/// Shortest: the header and an Ethernet header (the tap refuses less).
const MIN_TX_PACKET: usize = VNET_HDR_LEN + 14;

/// Why a TX chain was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    TooShort(usize),
    TooLong,
    WritableBuffer,
    OutsideMemory,
    /// The chain loops, has a `next` outside the table, or is longer than the queue.
    Truncated,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Malformed::TooShort(n) => write!(f, "{n} bytes, shorter than a virtio-net and an Ethernet header"),
            Malformed::TooLong => write!(f, "longer than {MAX_TX_PACKET} bytes"),
            Malformed::WritableBuffer => write!(f, "it has a device-writable buffer"),
            Malformed::OutsideMemory => write!(f, "a buffer is outside guest memory"),
            Malformed::Truncated => write!(f, "the chain loops or links outside the descriptor table"),
        }
    }
}

/// Copies the frame of `chain` (header included) into `buf`.
pub fn gather<M>(mem: &GuestMemoryMmap, chain: Chain<M>, buf: &mut Vec<u8>) -> Result<(), Malformed>
where
    M: Deref<Target = GuestMemoryMmap>,
{
    buf.clear();
    let mut more = false;
    for desc in chain {
        more = desc.has_next();
        if desc.is_write_only() {
            return Err(Malformed::WritableBuffer);
        }
        let len = desc.len() as usize;
        let start = buf.len();
        if len > MAX_TX_PACKET - start {
            return Err(Malformed::TooLong);
        }
        buf.resize(start + len, 0);
        mem.read_slice(&mut buf[start..], desc.addr()).map_err(|_| Malformed::OutsideMemory)?;
    }
    if more {
        return Err(Malformed::Truncated);
    }
    if buf.len() < MIN_TX_PACKET {
        return Err(Malformed::TooShort(buf.len()));
    }
    Ok(())
}

/// The bytes of `chain`'s frame, its virtio-net header left out: what a TX rate limit
/// counts (as Firecracker does).
pub fn frame_len<M>(chain: &Chain<M>) -> u64
where
    M: Deref<Target = GuestMemoryMmap> + Clone,
{
    let all: u64 = chain.clone().map(|d| u64::from(d.len())).sum();
    all.saturating_sub(VNET_HDR_LEN as u64)
}
