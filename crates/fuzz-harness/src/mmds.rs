//! The MMDS's network stack as the guest drives it through its virtio-net TX queue. The
//! first byte picks the mode: even, the rest is raw frames (each behind a 2-byte length)
//! for `detour`, ARP and TCP headers at the fuzzer's mercy; odd, the harness opens a
//! connection to port 80 and the rest is the TCP stream's bytes, cut into segments at
//! the fuzzer's lengths, so the HTTP parser and the V1/V2 answers are reached. Bit 1
//! picks V2. Every frame the stack answers with must be a whole Ethernet frame, to a MAC
//! address a guest frame named as its sender, no larger than a standard MTU allows.

use mmds::{Mmds, MmdsStack, Settings, Version, DEFAULT_IPV4};

const GUEST_MAC: [u8; 6] = [0x06, 0, 0xac, 0x10, 0, 2];
/// 1500 bytes of IPv4 and an Ethernet header.
const MAX_FRAME: usize = 1514;

pub fn mmds_frames(data: &[u8]) {
    run(data, &mut Vec::new());
}

/// The body; `seen` gets every frame the stack answered with.
fn run(data: &[u8], seen: &mut Vec<Vec<u8>>) {
    let Some((&mode, mut rest)) = data.split_first() else { return };
    // The source addresses of the guest's frames: the only places an answer may go.
    let mut senders = vec![GUEST_MAC];
    let store = Mmds::new(4096);
    let _ = store.put(serde_json::json!({"latest": {"meta-data": {"ami-id": "ami-1", "n": 1}}}));
    let version = if mode & 2 != 0 { Version::V2 } else { Version::V1 };
    store.set_settings(Settings { version, imds_compat: mode & 4 != 0 });
    let mut stack = MmdsStack::new(store, DEFAULT_IPV4);
    if mode & 1 == 0 {
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
            let frame = &rest[2..2 + len];
            // The Ethernet source, and an ARP request's sender address (where a reply
            // goes, as Linux sends it).
            for range in [6..12, 22..28] {
                if let Some(src) = frame.get(range) {
                    senders.push(src.try_into().unwrap_or_default());
                }
            }
            let _ = stack.detour(frame);
            drain(&mut stack, &senders, seen);
            rest = &rest[2 + len..];
        }
        return;
    }
    let mut seq = 1000u32;
    stack.detour(&segment(seq, 0, 0x02, &[]));
    let Some(ack) = drain(&mut stack, &senders, seen).map(|synack| seq_of(&synack).wrapping_add(1)) else { return };
    seq = seq.wrapping_add(1);
    while let Some((&cut, tail)) = rest.split_first() {
        let n = usize::from(cut).min(tail.len());
        stack.detour(&segment(seq, ack, 0x18, &tail[..n]));
        seq = seq.wrapping_add(n as u32);
        drain(&mut stack, &senders, seen);
        rest = &tail[n..];
        if n == 0 {
            break;
        }
    }
    stack.detour(&segment(seq, ack, 0x11, &[]));
    drain(&mut stack, &senders, seen);
}

/// Takes every frame the stack has for the guest, checking each; the first one, if any.
fn drain(stack: &mut MmdsStack, senders: &[[u8; 6]], seen: &mut Vec<Vec<u8>>) -> Option<Vec<u8>> {
    let mut first = None;
    while let Some(frame) = stack.next_frame() {
        assert!((14..=MAX_FRAME).contains(&frame.len()), "a {}-byte frame", frame.len());
        assert!(senders.iter().any(|mac| frame[..6] == mac[..]), "to {:02x?}, which sent nothing", &frame[..6]);
        first.get_or_insert_with(|| frame.clone());
        seen.push(frame);
    }
    first
}

fn seq_of(frame: &[u8]) -> u32 {
    frame.get(38..42).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A TCP segment from the guest's port 40000 to the MMDS's port 80.
fn segment(seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut f = mmds::stack::MAC.to_vec();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((40 + data.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 172, 16, 0, 2]);
    f.extend_from_slice(&DEFAULT_IPV4.octets());
    f.extend_from_slice(&[0x9c, 0x40, 0, 80]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(data);
    f
}

#[cfg(test)]
mod tests {
    /// The stream mode gets past the handshake: the HTTP answers come back.
    #[test]
    fn the_stream_mode_reaches_http() {
        let request = b"GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n";
        let mut input = vec![1, request.len() as u8];
        input.extend_from_slice(request);
        let mut seen = Vec::new();
        super::run(&input, &mut seen);
        let answer = seen
            .iter()
            .filter(|f| f.len() > 54)
            .find(|f| f[54..].starts_with(b"HTTP"))
            .map(|f| String::from_utf8_lossy(&f[54..]).into_owned());
        assert!(
            answer.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 200 OK") && a.ends_with("ami-1")),
            "{answer:?}"
        );
    }
}
