//! The headers the MMDS reads and writes: Ethernet II, ARP (IPv4 over Ethernet), IPv4 and
//! TCP. Parsing takes a frame as the guest sent it and never trusts a length field beyond
//! the bytes there; building writes whole frames with their checksums.

use std::net::Ipv4Addr;

pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_LEN: usize = 28;
pub const IPV4_HLEN: usize = 20;
pub const TCP_HLEN: usize = 20;
pub const PROTO_TCP: u8 = 6;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ip(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// An Ethernet frame's addresses and payload.
pub struct Ethernet<'a> {
    pub src: [u8; 6],
    pub ethertype: u16,
    pub payload: &'a [u8],
}

pub fn ethernet(frame: &[u8]) -> Option<Ethernet<'_>> {
    if frame.len() < ETH_HLEN {
        return None;
    }
    let mut src = [0; 6];
    src.copy_from_slice(&frame[6..12]);
    Some(Ethernet { src, ethertype: be16(frame, 12), payload: &frame[ETH_HLEN..] })
}

/// An ARP request: who has `target`? Tell `sender_mac`/`sender_ip`.
pub struct ArpRequest {
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target: Ipv4Addr,
}

pub fn arp_request(p: &[u8]) -> Option<ArpRequest> {
    // Ethernet hardware (1), IPv4 protocol, 6- and 4-byte addresses, operation 1.
    if p.len() < ARP_LEN || be16(p, 0) != 1 || be16(p, 2) != ETHERTYPE_IPV4 || p[4] != 6 || p[5] != 4 || be16(p, 6) != 1
    {
        return None;
    }
    let mut sender_mac = [0; 6];
    sender_mac.copy_from_slice(&p[8..14]);
    Some(ArpRequest { sender_mac, sender_ip: ip(p, 14), target: ip(p, 24) })
}

/// The reply to `req` from `mac`: `req.target` is at `mac`.
pub fn arp_reply(req: &ArpRequest, mac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + ARP_LEN);
    ethernet_header(&mut f, req.sender_mac, mac, ETHERTYPE_ARP);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&req.target.octets());
    f.extend_from_slice(&req.sender_mac);
    f.extend_from_slice(&req.sender_ip.octets());
    f
}

fn ethernet_header(f: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
}

/// An IPv4 packet: addresses, protocol, and its payload (what the total length covers).
pub struct Ipv4<'a> {
    pub src: Ipv4Addr,
    pub protocol: u8,
    /// Fragment offset or more-fragments set: the MMDS does not reassemble.
    pub fragment: bool,
    pub payload: &'a [u8],
}

/// Just the destination, to decide whether a packet is the MMDS's at all.
pub fn ipv4_destination(p: &[u8]) -> Option<Ipv4Addr> {
    (p.len() >= IPV4_HLEN && p[0] >> 4 == 4).then(|| ip(p, 16))
}

pub fn ipv4(p: &[u8]) -> Option<Ipv4<'_>> {
    if p.len() < IPV4_HLEN || p[0] >> 4 != 4 {
        return None;
    }
    let hlen = usize::from(p[0] & 0xf) * 4;
    // A TSO frame from the guest may carry 0 (the device fills it in); trust the frame.
    let total = match usize::from(be16(p, 2)) {
        0 => p.len(),
        n => n,
    };
    if hlen < IPV4_HLEN || total < hlen || total > p.len() {
        return None;
    }
    Some(Ipv4 { src: ip(p, 12), protocol: p[9], fragment: be16(p, 6) & 0x3fff != 0, payload: &p[hlen..total] })
}

/// A TCP segment's header fields the server uses, and its data.
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// The MSS option of a SYN.
    pub mss: Option<u16>,
    pub data: &'a [u8],
}

pub fn tcp(p: &[u8]) -> Option<Tcp<'_>> {
    if p.len() < TCP_HLEN {
        return None;
    }
    let hlen = usize::from(p[12] >> 4) * 4;
    if hlen < TCP_HLEN || hlen > p.len() {
        return None;
    }
    let mut mss = None;
    let mut opts = &p[TCP_HLEN..hlen];
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1)?);
                if len < 2 || len > opts.len() {
                    return None;
                }
                if kind == 2 && len == 4 {
                    mss = Some(be16(opts, 2));
                }
                opts = &opts[len..];
            }
        }
    }
    Some(Tcp {
        src_port: be16(p, 0),
        dst_port: be16(p, 2),
        seq: be32(p, 4),
        ack: be32(p, 8),
        flags: p[13],
        window: be16(p, 14),
        mss,
        data: &p[hlen..],
    })
}

/// Where a segment goes and comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub local_mac: [u8; 6],
    pub local_ip: Ipv4Addr,
    pub local_port: u16,
    pub peer_mac: [u8; 6],
    pub peer_ip: Ipv4Addr,
    pub peer_port: u16,
}

/// The header fields of a segment to send.
pub struct Segment<'a> {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub data: &'a [u8],
}

/// A whole Ethernet frame carrying `seg` from the local end to the peer.
pub fn tcp_frame(ends: &Endpoints, seg: &Segment) -> Vec<u8> {
    let opts = if seg.mss.is_some() { 4 } else { 0 };
    let tcp_len = TCP_HLEN + opts + seg.data.len();
    let mut f = Vec::with_capacity(ETH_HLEN + IPV4_HLEN + tcp_len);
    ethernet_header(&mut f, ends.peer_mac, ends.local_mac, ETHERTYPE_IPV4);
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&((IPV4_HLEN + tcp_len) as u16).to_be_bytes());
    // Identification 0 with Don't Fragment (RFC 6864: atomic datagrams).
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, PROTO_TCP, 0, 0]);
    f.extend_from_slice(&ends.local_ip.octets());
    f.extend_from_slice(&ends.peer_ip.octets());
    let sum = checksum(&[&f[ip_start..]], 0);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
    let tcp_start = f.len();
    f.extend_from_slice(&ends.local_port.to_be_bytes());
    f.extend_from_slice(&ends.peer_port.to_be_bytes());
    f.extend_from_slice(&seg.seq.to_be_bytes());
    f.extend_from_slice(&seg.ack.to_be_bytes());
    f.push((((TCP_HLEN + opts) / 4) as u8) << 4);
    f.push(seg.flags);
    f.extend_from_slice(&seg.window.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    if let Some(mss) = seg.mss {
        f.extend_from_slice(&[2, 4]);
        f.extend_from_slice(&mss.to_be_bytes());
    }
    f.extend_from_slice(seg.data);
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&ends.local_ip.octets());
    pseudo[4..8].copy_from_slice(&ends.peer_ip.octets());
    pseudo[9] = PROTO_TCP;
    pseudo[10..].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    let sum = checksum(&[&pseudo, &f[tcp_start..]], 0);
    f[tcp_start + 16..tcp_start + 18].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The Internet checksum (RFC 1071) of the concatenated parts (each of even length but
/// the last), starting from `initial`.
pub fn checksum(parts: &[&[u8]], initial: u32) -> u16 {
    let mut sum = initial;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    !(sum as u16)
}
