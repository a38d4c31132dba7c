//! The virtio-vsock packet (virtio 1.2 §5.10.6): a 44-byte header, then for `OP_RW` the
//! payload, read from a TX chain or written into an RX chain.

use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Chain;
use std::ops::Deref;

use vm_memory::{Address, Bytes};

/// `struct virtio_vsock_hdr`, packed, little-endian.
pub const HDR_LEN: usize = 44;
/// The host's CID (VMADDR_CID_HOST): every guest packet to the host names it.
pub const HOST_CID: u64 = 2;
/// VIRTIO_VSOCK_TYPE_STREAM, the one socket type the device offers (no SEQPACKET).
pub const TYPE_STREAM: u16 = 1;
/// Largest payload of one packet, either way (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE):
/// bounds what one TX chain makes the device copy.
pub const MAX_PAYLOAD: usize = 64 << 10;

/// VIRTIO_VSOCK_OP_*.
pub mod op {
    pub const REQUEST: u16 = 1;
    pub const RESPONSE: u16 = 2;
    pub const RST: u16 = 3;
    pub const SHUTDOWN: u16 = 4;
    pub const RW: u16 = 5;
    pub const CREDIT_UPDATE: u16 = 6;
    pub const CREDIT_REQUEST: u16 = 7;
}

/// VIRTIO_VSOCK_SHUTDOWN_F_*: the sender will receive (RCV) or send (SEND) no more.
pub const SHUTDOWN_RCV: u32 = 1;
pub const SHUTDOWN_SEND: u32 = 2;
pub const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub kind: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl Header {
    pub fn parse(b: &[u8; HDR_LEN]) -> Header {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        let u16_at = |i: usize| u16::from_le_bytes(b[i..i + 2].try_into().unwrap_or_default());
        Header {
            src_cid: u64_at(0),
            dst_cid: u64_at(8),
            src_port: u32_at(16),
            dst_port: u32_at(20),
            len: u32_at(24),
            kind: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buf_alloc: u32_at(36),
            fwd_cnt: u32_at(40),
        }
    }

    pub fn encode(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.kind.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }
}

/// Why a TX chain was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    TooShort,
    TooLong,
    WritableBuffer,
    OutsideMemory,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Malformed::TooShort => write!(f, "shorter than its header and the length it gives"),
            Malformed::TooLong => write!(f, "a payload longer than {MAX_PAYLOAD} bytes"),
            Malformed::WritableBuffer => write!(f, "it has a device-writable buffer"),
            Malformed::OutsideMemory => write!(f, "a buffer is outside guest memory"),
        }
    }
}

/// Reads the packet of a TX chain: its header, and its payload into `payload` (the
/// header's `len` bytes, which the chain must hold).
pub fn gather<M>(mem: &GuestMemoryMmap, chain: Chain<M>, payload: &mut Vec<u8>) -> Result<Header, Malformed>
where
    M: Deref<Target = GuestMemoryMmap>,
{
    let mut hdr = [0u8; HDR_LEN];
    let mut hdr_filled = 0usize;
    let mut header: Option<Header> = None;
    let mut want = 0usize;
    payload.clear();
    for desc in chain {
        if desc.is_write_only() {
            return Err(Malformed::WritableBuffer);
        }
        let mut addr = desc.addr();
        let mut left = desc.len() as usize;
        if header.is_none() {
            let n = left.min(HDR_LEN - hdr_filled);
            mem.read_slice(&mut hdr[hdr_filled..hdr_filled + n], addr).map_err(|_| Malformed::OutsideMemory)?;
            hdr_filled += n;
            left -= n;
            addr = addr.checked_add(n as u64).ok_or(Malformed::OutsideMemory)?;
            if hdr_filled < HDR_LEN {
                continue;
            }
            let h = Header::parse(&hdr);
            want = h.len as usize;
            if want > MAX_PAYLOAD {
                return Err(Malformed::TooLong);
            }
            header = Some(h);
        }
        let n = left.min(want - payload.len());
        if n > 0 {
            let start = payload.len();
            payload.resize(start + n, 0);
            mem.read_slice(&mut payload[start..], addr).map_err(|_| Malformed::OutsideMemory)?;
        }
        if payload.len() == want {
            break;
        }
    }
    match header {
        Some(h) if payload.len() == want => Ok(h),
        _ => Err(Malformed::TooShort),
    }
}

/// The device-writable buffers of an RX chain, in order, or None if the chain has a
/// readable buffer or cannot hold a header.
pub fn rx_buffers<M>(chain: Chain<M>) -> Option<Vec<(vm_memory::GuestAddress, usize)>>
where
    M: Deref<Target = GuestMemoryMmap>,
{
    let mut out = Vec::new();
    let mut total = 0usize;
    for desc in chain {
        if !desc.is_write_only() {
            return None;
        }
        total += desc.len() as usize;
        out.push((desc.addr(), desc.len() as usize));
    }
    (total >= HDR_LEN).then_some(out)
}

/// Room for payload in `buffers` after the header.
pub fn payload_room(buffers: &[(vm_memory::GuestAddress, usize)]) -> usize {
    buffers.iter().map(|(_, len)| len).sum::<usize>().saturating_sub(HDR_LEN)
}

/// Writes `header` then `payload` across `buffers`; false if guest memory refused.
pub fn scatter(
    mem: &GuestMemoryMmap,
    buffers: &[(vm_memory::GuestAddress, usize)],
    header: &Header,
    payload: &[u8],
) -> bool {
    let hdr = header.encode();
    let mut parts = [&hdr[..], payload];
    let mut part = 0;
    let skip_empty = |part: &mut usize, parts: &[&[u8]; 2]| {
        while *part < parts.len() && parts[*part].is_empty() {
            *part += 1;
        }
    };
    skip_empty(&mut part, &parts);
    for &(addr, len) in buffers {
        let mut at = 0usize;
        while at < len && part < parts.len() {
            let n = (len - at).min(parts[part].len());
            let Some(at_addr) = addr.checked_add(at as u64) else { return false };
            if mem.write_slice(&parts[part][..n], at_addr).is_err() {
                return false;
            }
            at += n;
            parts[part] = &parts[part][n..];
            skip_empty(&mut part, &parts);
        }
        if part == parts.len() {
            break;
        }
    }
    part == parts.len()
}
