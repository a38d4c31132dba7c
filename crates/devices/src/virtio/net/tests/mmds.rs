//! The MMDS on a virtio-net device, through the real MMIO transport: the guest's frames
//! for 169.254.169.254 are answered in its RX queue and never reach the backend (a
//! stream socket here, whose peer sees what a tap would); other frames pass untouched.

use super::backend::StreamSocket;
use super::device::*;
use super::tap::VNET_HDR_LEN;
use super::{MmdsAttachment, Net};
use crate::virtio::test_driver::TestDriver;
use mmds::{Mmds, Settings, Version, DEFAULT_IPV4};
use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream;

const GUEST_MAC: [u8; 6] = [0x06, 0, 0xac, 0x10, 0, 2];
const GUEST_IP: [u8; 4] = [172, 16, 0, 2];

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// A TCP segment from the guest's port 40000 to the MMDS's port 80 (checksums left zero:
/// the guest's offload would fill them, and the MMDS does not check them).
fn tcp(seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut f = mmds::stack::MAC.to_vec();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((40 + data.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&DEFAULT_IPV4.octets());
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(data);
    f
}

fn send(d: &mut TestDriver, frame: &[u8]) {
    let mut packet = vec![0u8; VNET_HDR_LEN];
    packet.extend_from_slice(frame);
    let addr = d.alloc_with(&packet);
    d.add_chain(TX_QUEUE, &[(addr, packet.len() as u32, false)]);
    d.notify(TX_QUEUE as u32);
}

/// The frames the guest received since last asked (buffers were posted beforehand).
fn received(d: &mut TestDriver, posted: &[(u32, u64)]) -> Vec<Vec<u8>> {
    d.used(RX_QUEUE)
        .into_iter()
        .map(|(head, len)| {
            let addr = posted.iter().find(|(h, _)| *h == head).unwrap().1;
            let bytes = d.read_bytes(addr, len as usize);
            assert_eq!(&bytes[..10], &[0; 10], "no offload in an MMDS frame");
            bytes[VNET_HDR_LEN..].to_vec()
        })
        .collect()
}

fn nothing_reached(peer: &mut UnixStream) {
    let mut byte = [0u8; 1];
    assert_eq!(peer.read(&mut byte).unwrap_err().kind(), ErrorKind::WouldBlock, "the backend got a frame");
}

#[test]
fn the_guest_reaches_the_mmds_and_nothing_else_changes() {
    let store = Mmds::new(1000);
    store.put(r#"{"latest": {"key": "the-value"}}"#.parse().unwrap()).unwrap();
    store.set_settings(Settings { version: Version::V1, imds_compat: false });
    let (ours, mut peer) = UnixStream::pair().unwrap();
    peer.set_nonblocking(true).unwrap();
    let socket = StreamSocket::from_fd(ours.into(), "test".into()).unwrap();
    let mut net = Net::new(socket, Some(GUEST_MAC)).unwrap();
    net.set_mmds(&MmdsAttachment { mmds: store, ipv4: DEFAULT_IPV4 });
    let (mut d, _) = TestDriver::new(net);
    d.activate(F_MRG_RXBUF, 64);
    let posted: Vec<(u32, u64)> = (0..16)
        .map(|_| {
            let addr = d.alloc(2048, 0xee);
            (u32::from(d.add_chain(RX_QUEUE, &[(addr, 2048, true)])), addr)
        })
        .collect();
    d.notify(RX_QUEUE as u32);

    send(&mut d, &arp_request(DEFAULT_IPV4.octets()));
    let got = received(&mut d, &posted);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][12..14], &[0x08, 0x06]);
    assert_eq!(&got[0][22..28], &mmds::stack::MAC, "the MMDS's MAC in the ARP reply");
    nothing_reached(&mut peer);

    // The handshake, then a GET: the answer arrives in the RX queue.
    send(&mut d, &tcp(100, 0, 0x02, &[]));
    let synack = received(&mut d, &posted);
    assert_eq!(synack.len(), 1);
    let seg = &synack[0][34..];
    assert_eq!(seg[13], 0x12, "SYN-ACK");
    assert_eq!(&seg[8..12], &101u32.to_be_bytes());
    let ours = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]).wrapping_add(1);
    let get = b"GET /latest/key HTTP/1.1\r\nConnection: close\r\n\r\n";
    send(&mut d, &tcp(101, ours, 0x18, get));
    let answer: Vec<u8> = received(&mut d, &posted).iter().flat_map(|f| f[54..].to_vec()).collect();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\nthe-value"), "{answer}");
    nothing_reached(&mut peer);

    // ARP for someone else goes out, byte for byte (QEMU's length-prefixed record).
    let other = arp_request([172, 16, 0, 1]);
    send(&mut d, &other);
    peer.set_nonblocking(false).unwrap();
    let mut record = vec![0u8; 4 + other.len()];
    peer.read_exact(&mut record).unwrap();
    assert_eq!(&record[4..], &other[..]);
    assert!(received(&mut d, &posted).is_empty());
}
