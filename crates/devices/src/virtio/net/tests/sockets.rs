//! virtio-net on the socket backends, through the real MMIO transport and
//! real host sockets: the peer is what passt or another QEMU would be.

use super::backend::{DgramSocket, SocketAddress, StreamSocket};
use super::device::*;
use super::tap::VNET_HDR_LEN;
use super::Net;
use crate::virtio::test_driver::TestDriver;
use crate::virtio::VIRTIO_F_VERSION_1;
use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x57];
const RX: usize = RX_QUEUE;
const TX: usize = TX_QUEUE;

fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&0x88b5u16.to_be_bytes());
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)));
    f
}

fn record(frame: &[u8]) -> Vec<u8> {
    let mut r = (frame.len() as u32).to_be_bytes().to_vec();
    r.extend_from_slice(frame);
    r
}

/// Sends `frame` from the guest, with a header asking for checksum offload
/// that a socket cannot honour (the device never offers it; a guest that
/// sets it anyway gets its frame passed on without the header).
fn send_from_guest(d: &mut TestDriver, frame: &[u8]) -> u16 {
    let mut packet = vec![0u8; VNET_HDR_LEN];
    packet[0] = 1;
    packet.extend_from_slice(frame);
    let addr = d.alloc_with(&packet);
    d.add_chain(TX, &[(addr, packet.len() as u32, false)])
}

fn post_rx(d: &mut TestDriver, len: u32) -> (u32, u64) {
    let addr = d.alloc(len, 0xee);
    (u32::from(d.add_chain(RX, &[(addr, len, true)])), addr)
}

fn driver_on(net: Net) -> TestDriver {
    let (mut d, _) = TestDriver::new(net);
    d.activate(F_MRG_RXBUF, 64);
    d
}

fn stream_pair() -> (TestDriver, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    let socket = StreamSocket::from_fd(ours.into(), "test".into()).unwrap();
    (driver_on(Net::new(socket, Some(MAC)).unwrap()), peer)
}

fn tmp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("microvm-net-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn no_offload_is_offered_on_a_socket() {
    let (ours, _peer) = UnixStream::pair().unwrap();
    let socket = StreamSocket::from_fd(ours.into(), "test".into()).unwrap();
    let (mut d, _) = TestDriver::new(Net::new(socket, Some(MAC)).unwrap());
    let features = d.device_features();
    assert_eq!(features, VIRTIO_F_VERSION_1 | F_MAC | F_MRG_RXBUF | F_STATUS | F_EVENT_IDX);
}

#[test]
fn stream_frames_cross_both_ways_with_length_prefixes_and_no_header() {
    let (mut d, mut peer) = stream_pair();
    let f = frame(100, 1);
    let head = send_from_guest(&mut d, &f);
    d.notify(TX as u32);
    assert_eq!(d.used(TX), vec![(u32::from(head), 0)]);
    let mut got = vec![0u8; 104];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, record(&f));

    // A record written in two pieces, the split inside the length prefix.
    let (head, addr) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    let f = frame(300, 2);
    let r = record(&f);
    peer.write_all(&r[..2]).unwrap();
    d.run_events();
    assert!(d.used(RX).is_empty(), "half a length is no frame");
    peer.write_all(&r[2..]).unwrap();
    d.run_events();
    let len = VNET_HDR_LEN + f.len();
    assert_eq!(d.used(RX), vec![(head, len as u32)]);
    let got = d.read_bytes(addr, len);
    assert_eq!(&got[..10], &[0; 10], "a zero header: nothing offloaded");
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1, "num_buffers");
    assert_eq!(&got[VNET_HDR_LEN..], &f[..]);
}

#[test]
fn a_full_stream_socket_holds_tx_back_and_loses_nothing() {
    let (mut d, mut peer) = stream_pair();
    // Far more than a Unix socket buffers: the guest must wait for the peer.
    let frames: Vec<Vec<u8>> = (0..48).map(|i| frame(60_000, i as u8)).collect();
    for f in &frames {
        send_from_guest(&mut d, f);
    }
    d.notify(TX as u32);
    let done = d.used(TX).len();
    assert!(done < frames.len(), "all {done} chains completed: the socket never filled");
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..48 {
            let mut len = [0u8; 4];
            peer.read_exact(&mut len).unwrap();
            let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
            peer.read_exact(&mut f).unwrap();
            got.push(f);
        }
        got
    });
    let mut completed = done;
    for _ in 0..2000 {
        if completed == frames.len() {
            break;
        }
        d.run_turn();
        completed += d.used(TX).len();
    }
    assert_eq!(completed, frames.len());
    assert_eq!(reader.join().unwrap(), frames, "every frame, whole and in order");
}

#[test]
fn an_oversized_stream_frame_ends_the_stream() {
    let (mut d, mut peer) = stream_pair();
    post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.write_all(&(1u32 << 20).to_be_bytes()).unwrap();
    d.run_events(); // settles: the socket is dropped from the loop
    assert!(d.used(RX).is_empty());
    // The next frames are not read: the stream is out of step for good.
    peer.write_all(&record(&frame(60, 3))).unwrap();
    d.run_events();
    assert!(d.used(RX).is_empty());
}

#[test]
fn a_closed_stream_stops_rx_and_tx_completes_quietly() {
    let (mut d, peer) = stream_pair();
    post_rx(&mut d, 2048);
    d.notify(RX as u32);
    drop(peer);
    d.run_events(); // the hang-up is handled once, not spun on
    assert!(d.used(RX).is_empty());
    for i in 0..3 {
        send_from_guest(&mut d, &frame(60, i));
    }
    d.notify(TX as u32);
    d.run_events();
    assert_eq!(d.used(TX).len(), 3, "every chain is returned, its frame dropped: TX never stalls");
}

#[test]
fn stream_server_and_client_connect_on_a_unix_path() {
    let dir = tmp_path("stream");
    let path = dir.join("net.sock");
    let addr = SocketAddress::Unix(path.clone());
    let server = std::thread::spawn(move || StreamSocket::accept(&addr).map_err(|e| e.to_string()));
    let mut peer = loop {
        match UnixStream::connect(&path) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    };
    let socket = server.join().unwrap().unwrap();
    let mut d = driver_on(Net::new(socket, Some(MAC)).unwrap());
    let f = frame(64, 9);
    send_from_guest(&mut d, &f);
    d.notify(TX as u32);
    let mut got = vec![0u8; 68];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, record(&f));
    let e = StreamSocket::connect(&SocketAddress::Unix(dir.join("nobody"))).err().unwrap();
    assert!(e.to_string().starts_with("cannot connect to unix:"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dgram_frames_are_one_datagram_each_both_ways() {
    let dir = tmp_path("dgram");
    let (ours, theirs) = (dir.join("vm.sock"), dir.join("peer.sock"));
    let peer = UnixDatagram::bind(&theirs).unwrap();
    let socket =
        DgramSocket::open(Some(&SocketAddress::Unix(ours.clone())), &SocketAddress::Unix(theirs.clone())).unwrap();
    let mut d = driver_on(Net::new(socket, Some(MAC)).unwrap());
    let frames = [frame(60, 4), frame(1500, 5)];
    for f in &frames {
        send_from_guest(&mut d, f);
    }
    d.notify(TX as u32);
    let mut buf = vec![0u8; 4096];
    for f in &frames {
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &f[..]);
    }

    let (head, addr) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    let f = frame(700, 6);
    peer.send_to(&f, &ours).unwrap();
    d.run_events();
    let len = VNET_HDR_LEN + f.len();
    assert_eq!(d.used(RX), vec![(head, len as u32)]);
    assert_eq!(d.read_bytes(addr + VNET_HDR_LEN as u64, f.len()), f);

    let inet = SocketAddress::Inet { host: "127.0.0.1".into(), port: 9 };
    let e = DgramSocket::open(Some(&SocketAddress::Unix(ours)), &inet).err().unwrap();
    assert!(e.to_string().contains("both be unix or both inet"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dgram_over_udp_reaches_a_udp_peer() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let remote = SocketAddress::Inet { host: "127.0.0.1".into(), port };
    let socket = DgramSocket::open(None, &remote).unwrap();
    let mut d = driver_on(Net::new(socket, Some(MAC)).unwrap());
    let f = frame(200, 7);
    send_from_guest(&mut d, &f);
    d.notify(TX as u32);
    let mut buf = vec![0u8; 4096];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &f[..]);
    let (head, _) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.send_to(&frame(80, 8), from).unwrap();
    d.run_events();
    assert_eq!(d.used(RX), vec![(head, (VNET_HDR_LEN + 80) as u32)]);
}
