//! virtio-net through the real MMIO transport (TestDriver). Most tests use a
//! socket pair in place of the tap (frame boundaries are kept the same way);
//! `real_tap` runs the device on real taps inside a network namespace of
//! its own.

use super::device::*;
use super::tap::{Tap, VNET_HDR_LEN};
use super::{Net, NetError};
use crate::bus::BusDevice;
use crate::virtio::test_driver::{TestDriver, MEM_SIZE, VIRTQ_DESC_F_NEXT};
use crate::virtio::{status, VIRTIO_F_VERSION_1};
use std::os::fd::{AsRawFd, OwnedFd};
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// IEEE 802 "local experimental" EtherType: nothing else on a host uses it.
const ETHERTYPE: u16 = 0x88b5;
const RX: usize = RX_QUEUE;
const TX: usize = TX_QUEUE;

/// An Ethernet frame of `len` bytes from the guest's MAC, with a payload
/// pattern depending on `seed`.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    assert!(len >= 14);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    f
}

/// A virtio-net header (num_buffers 0) followed by `frame`.
fn packet(frame: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; VNET_HDR_LEN];
    p.extend_from_slice(frame);
    p
}

fn num_buffers(header: &[u8]) -> u16 {
    u16::from_le_bytes([header[10], header[11]])
}

/// The host end of the stand-in tap.
struct Peer(OwnedFd);

impl Peer {
    fn send(&self, data: &[u8]) {
        // SAFETY: send reads `data.len()` bytes from our slice.
        let n = unsafe { libc::send(self.0.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) };
        assert_eq!(n, data.len() as isize, "send: {}", std::io::Error::last_os_error());
    }

    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 70000];
        // SAFETY: recv writes at most `buf.len()` bytes into our buffer.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }
}

fn device(ufo: bool) -> (Net, Peer) {
    let (tap, peer) = Tap::socketpair_for_tests(ufo);
    (Net::new(tap, Some(MAC)).unwrap(), Peer(peer))
}

/// A driver with `features` acked and both queues of 16 entries.
fn driver(features: u64) -> (TestDriver, Peer) {
    let (net, peer) = device(false);
    let (mut d, _) = TestDriver::new(net);
    d.activate(features, 16);
    (d, peer)
}

/// Posts `packet` (header and frame) on the TX queue as a header buffer and
/// a frame buffer; returns the head.
fn send_from_guest(d: &mut TestDriver, packet: &[u8]) -> u16 {
    let hdr = d.alloc(VNET_HDR_LEN as u32, 0);
    d.mem.write_slice(&packet[..VNET_HDR_LEN], vm_memory::GuestAddress(hdr)).unwrap();
    let body_len = (packet.len() - VNET_HDR_LEN) as u32;
    let body = d.alloc(body_len, 0);
    d.mem.write_slice(&packet[VNET_HDR_LEN..], vm_memory::GuestAddress(body)).unwrap();
    d.add_chain(TX, &[(hdr, VNET_HDR_LEN as u32, false), (body, body_len, false)])
}

/// Posts an RX chain of one writable buffer of `len` bytes; returns (head, address).
fn post_rx(d: &mut TestDriver, len: u32) -> (u32, u64) {
    let addr = d.alloc(len, 0xee);
    (u32::from(d.add_chain(RX, &[(addr, len, true)])), addr)
}

use vm_memory::Bytes;

#[test]
fn identifies_as_net_with_two_queues_and_offers_offloads() {
    let (net, _peer) = device(false);
    let (mut d, _) = TestDriver::new(net);
    assert_eq!(d.read_reg(0x8), VIRTIO_ID_NET);
    let features = d.device_features();
    for f in [
        VIRTIO_F_VERSION_1,
        F_CSUM,
        F_GUEST_CSUM,
        F_GUEST_TSO4,
        F_GUEST_TSO6,
        F_HOST_TSO4,
        F_HOST_TSO6,
        F_MRG_RXBUF,
        F_MAC,
        F_STATUS,
        F_EVENT_IDX,
    ] {
        assert_ne!(features & f, 0, "feature {f:#x} offered");
    }
    assert_eq!(features & (F_GUEST_UFO | F_HOST_UFO), 0, "no UFO if the tap refuses it");
    let ctrl_vq = 1u64 << virtio_bindings::virtio_net::VIRTIO_NET_F_CTRL_VQ;
    let mq = 1u64 << virtio_bindings::virtio_net::VIRTIO_NET_F_MQ;
    assert_eq!(features & (ctrl_vq | mq), 0);
    for (queue, max) in [(0, 256), (1, 256), (2, 0)] {
        d.write_reg(0x30, queue);
        assert_eq!(d.read_reg(0x34), max);
    }

    let (net, _peer) = device(true);
    let (mut d, _) = TestDriver::new(net);
    assert_eq!(d.device_features() & (F_GUEST_UFO | F_HOST_UFO), F_GUEST_UFO | F_HOST_UFO);
}

#[test]
fn config_space_holds_mac_link_up_and_one_queue_pair() {
    let (net, _peer) = device(false);
    let (mut d, _) = TestDriver::new(net);
    let mut config = [0xffu8; 12];
    d.transport.read(0x100, &mut config);
    assert_eq!(config, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 1, 0, 0, 0]);
    // Reads of other widths and offsets, as drivers do.
    let mut word = [0u8; 4];
    d.transport.read(0x104, &mut word);
    assert_eq!(word, [0x34, 0x56, 1, 0]);
    let mut byte = [0u8; 1];
    d.transport.read(0x105, &mut byte);
    assert_eq!(byte, [0x56]);
    d.transport.read(0x200, &mut word);
    assert_eq!(word, [0; 4]);
    // Writes are ignored (the MAC is read-only in virtio 1.x).
    d.transport.write(0x100, &[0; 4]);
    d.transport.read(0x100, &mut word);
    assert_eq!(word, [0x52, 0x54, 0x00, 0x12]);
}

#[test]
fn random_macs_are_locally_administered_unicast_and_differ() {
    let (tap, _p1) = Tap::socketpair_for_tests(false);
    let a = Net::new(tap, None).unwrap().mac();
    let (tap, _p2) = Tap::socketpair_for_tests(false);
    let b = Net::new(tap, None).unwrap().mac();
    assert_eq!(a[0], 0x02);
    assert_eq!(b[0], 0x02);
    assert_ne!(a, b);
}

#[test]
fn multicast_or_zero_macs_are_refused() {
    for mac in [[0x01, 0, 0x5e, 0, 0, 1], [0; 6], [0xff; 6]] {
        let (tap, _peer) = Tap::socketpair_for_tests(false);
        let e = Net::new(tap, Some(mac)).err().expect("refused");
        assert!(matches!(e, NetError::InvalidMac(_)));
        assert!(e.to_string().contains(&format_mac(&mac)), "{e}");
    }
}

#[test]
fn tap_offloads_follow_the_guest_csum_and_gso_features() {
    assert_eq!(tap_offloads(0), 0);
    assert_eq!(tap_offloads(F_GUEST_TSO4 | F_GUEST_TSO6), 0, "GSO needs checksum offload");
    assert_eq!(tap_offloads(F_GUEST_CSUM), libc::TUN_F_CSUM);
    assert_eq!(
        tap_offloads(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_ECN | F_GUEST_UFO),
        libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN | libc::TUN_F_UFO
    );
    assert_eq!(tap_offloads(F_GUEST_CSUM | F_GUEST_ECN), libc::TUN_F_CSUM, "ECN only with TSO");
    assert_eq!(tap_offloads(F_CSUM | F_HOST_TSO4), 0, "host features do not concern the tap");
}

#[test]
fn a_tx_chain_reaches_the_tap_as_one_frame_with_its_header() {
    let (mut d, peer) = driver(F_CSUM | F_HOST_TSO4);
    let mut p = packet(&frame(100, 1));
    // Offload metadata passes through as the guest wrote it.
    p[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    p[4..6].copy_from_slice(&34u16.to_le_bytes());
    let head = send_from_guest(&mut d, &p);
    d.notify(TX as u32);
    assert_eq!(peer.recv().as_deref(), Some(&p[..]));
    assert_eq!(peer.recv(), None, "exactly one frame");
    assert_eq!(d.used(TX), vec![(u32::from(head), 0)]);
    assert!(d.interrupted());
}

#[test]
fn tx_chains_are_sent_in_order_and_completed_with_one_interrupt() {
    let (mut d, peer) = driver(0);
    let packets: Vec<_> = (0..5).map(|i| packet(&frame(60 + i, i as u8))).collect();
    for p in &packets {
        send_from_guest(&mut d, p);
    }
    d.notify(TX as u32);
    for p in &packets {
        assert_eq!(peer.recv().as_deref(), Some(&p[..]));
    }
    assert_eq!(d.used(TX).len(), 5);
    assert!(d.interrupted());
    assert!(!d.interrupted(), "one interrupt for the batch");
}

#[test]
fn malformed_tx_chains_are_dropped_and_completed_empty() {
    let (mut d, peer) = driver(0);
    let mut heads = Vec::new();
    // Device-writable only.
    let a = d.alloc(100, 0);
    heads.push(d.add_chain(TX, &[(a, 100, true)]));
    // Header and data with a writable buffer in between.
    heads.push(d.add_chain(TX, &[(a, 12, false), (a, 50, true), (a, 60, false)]));
    // Too long: 80000 bytes.
    let big = d.alloc(40000, 0);
    heads.push(d.add_chain(TX, &[(big, 40000, false), (big, 40000, false)]));
    // Outside guest memory.
    heads.push(d.add_chain(TX, &[(MEM_SIZE - 16, 64, false)]));
    // A header and no frame.
    heads.push(d.add_chain(TX, &[(a, VNET_HDR_LEN as u32, false)]));
    // Nothing at all.
    heads.push(d.add_chain(TX, &[(a, 0, false)]));
    d.notify(TX as u32);
    let used = d.used(TX);
    assert_eq!(used, heads.iter().map(|&h| (u32::from(h), 0)).collect::<Vec<_>>());
    assert_eq!(peer.recv(), None, "nothing reached the tap");
    // The queue still works.
    let p = packet(&frame(64, 9));
    send_from_guest(&mut d, &p);
    d.notify(TX as u32);
    assert_eq!(peer.recv().as_deref(), Some(&p[..]));
}

#[test]
fn a_looping_tx_chain_is_dropped() {
    let (mut d, peer) = driver(0);
    let a = d.alloc(64, 0);
    // Descriptor 0 points to itself forever.
    d.write_desc(TX, 0, a, 64, VIRTQ_DESC_F_NEXT, 0);
    d.publish(TX, 0);
    // Descriptor 1 points outside the table.
    d.write_desc(TX, 1, a, 64, VIRTQ_DESC_F_NEXT, 999);
    d.publish(TX, 1);
    d.notify(TX as u32);
    assert_eq!(d.used(TX), vec![(0, 0), (1, 0)]);
    assert_eq!(peer.recv(), None);
}

#[test]
fn a_tx_avail_index_jump_stops_tx_but_not_rx() {
    let (mut d, peer) = driver(0);
    d.set_avail_idx(TX, 1000);
    d.notify(TX as u32);
    assert!(d.used(TX).is_empty());
    assert_ne!(d.interrupt.status() & 2, 0, "config-change interrupt");
    assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
    // RX still works.
    let (head, addr) = post_rx(&mut d, 2048);
    let p = packet(&frame(80, 3));
    peer.send(&p);
    d.notify(RX as u32);
    assert_eq!(d.used(RX), vec![(head, p.len() as u32)]);
    assert_eq!(d.read_bytes(addr + 12, 80), frame(80, 3));
}

#[test]
fn a_frame_from_the_tap_fills_one_rx_buffer() {
    let (mut d, peer) = driver(F_GUEST_CSUM);
    let (head, addr) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    let mut p = packet(&frame(200, 5));
    p[0] = 2; // VIRTIO_NET_HDR_F_DATA_VALID, from the host: passed through
    peer.send(&p);
    d.run_events();
    assert_eq!(d.used(RX), vec![(head, p.len() as u32)]);
    assert!(d.interrupted());
    let got = d.read_bytes(addr, p.len());
    assert_eq!(got[0], 2);
    assert_eq!(num_buffers(&got), 1);
    assert_eq!(&got[..10], &p[..10]);
    assert_eq!(&got[12..], &p[12..]);
    assert_eq!(d.read_bytes(addr + p.len() as u64, 4), [0xee; 4], "nothing written past the frame");
}

#[test]
fn with_mrg_rxbuf_a_frame_spans_several_chains() {
    let (mut d, peer) = driver(F_MRG_RXBUF);
    // Three chains of 500 bytes; the second in two descriptors.
    let (h1, a1) = post_rx(&mut d, 500);
    let a2 = d.alloc(500, 0xee);
    let h2 = u32::from(d.add_chain(RX, &[(a2, 200, true), (a2 + 200, 300, true)]));
    let (h3, a3) = post_rx(&mut d, 500);
    let (h4, _) = post_rx(&mut d, 500);
    d.notify(RX as u32);
    let p = packet(&frame(1188, 7));
    assert_eq!(p.len(), 1200);
    peer.send(&p);
    d.run_events();
    assert_eq!(d.used(RX), vec![(h1, 500), (h2, 500), (h3, 200)]);
    let mut got = d.read_bytes(a1, 500);
    got.extend(d.read_bytes(a2, 500));
    got.extend(d.read_bytes(a3, 200));
    assert_eq!(num_buffers(&got), 3);
    assert_eq!(&got[12..], &p[12..]);
    // The next frame starts in the fourth chain.
    let p = packet(&frame(60, 8));
    peer.send(&p);
    d.run_events();
    assert_eq!(d.used(RX), vec![(h4, 72)]);
}

#[test]
fn without_mrg_rxbuf_a_frame_too_big_for_a_chain_is_dropped_and_the_chain_kept() {
    let (mut d, peer) = driver(0);
    let (head, addr) = post_rx(&mut d, 100);
    d.notify(RX as u32);
    peer.send(&packet(&frame(500, 1)));
    d.run_events();
    assert!(d.used(RX).is_empty());
    let p = packet(&frame(60, 2));
    peer.send(&p);
    d.run_events();
    assert_eq!(d.used(RX), vec![(head, 72)]);
    assert_eq!(d.read_bytes(addr + 12, 60), frame(60, 2));
}

#[test]
fn frames_wait_for_rx_buffers_and_none_is_lost() {
    let (mut d, peer) = driver(0);
    let packets: Vec<_> = (0..3).map(|i| packet(&frame(100 + i, i as u8))).collect();
    for p in &packets {
        peer.send(p);
    }
    // No buffers: the device holds one frame and stops reading the tap
    // (run_events returning at all shows it is not spinning on it).
    d.run_events();
    assert!(d.used(RX).is_empty());
    let posted: Vec<_> = (0..3).map(|_| post_rx(&mut d, 2048)).collect();
    d.notify(RX as u32);
    let used = d.used(RX);
    assert_eq!(used.len(), 3);
    for ((p, (head, addr)), (used_head, len)) in packets.iter().zip(&posted).zip(&used) {
        assert_eq!((used_head, *len), (head, p.len() as u32));
        assert_eq!(d.read_bytes(addr + 12, p.len() - 12), p[12..]);
    }
    assert!(d.interrupted());
}

#[test]
fn with_mrg_rxbuf_and_event_idx_a_frame_waits_until_enough_buffers_exist() {
    let (mut d, peer) = driver(F_MRG_RXBUF | F_EVENT_IDX);
    let (h1, _) = post_rx(&mut d, 500);
    d.notify(RX as u32);
    let p = packet(&frame(1188, 4));
    peer.send(&p);
    d.run_events();
    assert!(d.used(RX).is_empty(), "one 500-byte buffer is not enough");
    // The device asks to be notified once the guest adds a buffer beyond
    // the one it already saw.
    assert_eq!(d.avail_event(RX), 1);
    let (h2, _) = post_rx(&mut d, 500);
    let (h3, _) = post_rx(&mut d, 500);
    d.notify(RX as u32);
    assert_eq!(d.used(RX), vec![(h1, 500), (h2, 500), (h3, 200)]);
}

#[test]
fn event_idx_suppresses_interrupts_the_driver_does_not_want() {
    let (mut d, peer) = driver(F_EVENT_IDX);
    d.interrupted();
    // The driver wants an interrupt only after the 3rd used entry.
    d.set_used_event(TX, 2);
    send_from_guest(&mut d, &packet(&frame(60, 0)));
    d.notify(TX as u32);
    assert_eq!(d.used(TX).len(), 1);
    assert!(!d.interrupted());
    send_from_guest(&mut d, &packet(&frame(60, 1)));
    send_from_guest(&mut d, &packet(&frame(60, 2)));
    d.notify(TX as u32);
    assert_eq!(d.used(TX).len(), 2);
    assert!(d.interrupted());
    while peer.recv().is_some() {}
}

#[test]
fn malformed_rx_chains_are_returned_empty_and_the_frame_goes_to_the_next() {
    let (mut d, peer) = driver(0);
    let bad1 = u32::from(d.add_chain(RX, &[(MEM_SIZE - 16, 64, true)]));
    let a = d.alloc(64, 0);
    let bad2 = u32::from(d.add_chain(RX, &[(a, 64, false)]));
    let bad3 = u32::from(d.add_chain(RX, &[(a, 8, true)]));
    let (good, addr) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    let p = packet(&frame(90, 6));
    peer.send(&p);
    d.run_events();
    assert_eq!(d.used(RX), vec![(bad1, 0), (bad2, 0), (bad3, 0), (good, p.len() as u32)]);
    assert_eq!(d.read_bytes(addr + 12, 90), frame(90, 6));
}

#[test]
fn an_rx_avail_index_jump_stops_rx_but_not_tx() {
    let (mut d, peer) = driver(0);
    d.set_avail_idx(RX, 1000);
    d.notify(RX as u32);
    peer.send(&packet(&frame(60, 0)));
    d.run_events();
    assert!(d.used(RX).is_empty());
    assert_ne!(d.interrupt.status() & 2, 0, "config-change interrupt");
    assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
    let p = packet(&frame(60, 1));
    send_from_guest(&mut d, &p);
    d.notify(TX as u32);
    assert_eq!(peer.recv().as_deref(), Some(&p[..]));
}

#[test]
fn reset_drops_the_pending_frame_and_reactivation_works() {
    let (mut d, peer) = driver(F_MRG_RXBUF);
    peer.send(&packet(&frame(60, 1)));
    d.run_events(); // pending: no buffers
    d.write_reg(0x70, 0);
    assert_eq!(d.status(), 0);
    // Notifications between reset and re-activation are harmless.
    d.notify(RX as u32);
    d.notify(TX as u32);
    peer.send(&packet(&frame(60, 2)));
    d.run_events();
    d.activate(0, 16);
    let (head, addr) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    assert_eq!(d.used(RX), vec![(head, 72)]);
    assert_eq!(d.read_bytes(addr + 12, 60), frame(60, 2), "the frame pending at reset is gone");
    let p = packet(&frame(60, 3));
    send_from_guest(&mut d, &p);
    d.notify(TX as u32);
    assert_eq!(peer.recv().as_deref(), Some(&p[..]));
    assert_eq!(d.status() & status::DEVICE_NEEDS_RESET, 0);
}

#[test]
fn a_tap_that_goes_away_stops_rx_and_tx_drops_quietly() {
    let (mut d, peer) = driver(0);
    post_rx(&mut d, 2048);
    drop(peer);
    d.run_events(); // returns: the hang-up is handled once, not spun on
    assert!(d.used(RX).is_empty());
    send_from_guest(&mut d, &packet(&frame(60, 0)));
    d.notify(TX as u32);
    assert_eq!(d.used(TX).len(), 1);
}

#[test]
fn frames_of_impossible_sizes_from_the_tap_are_dropped() {
    let (mut d, peer) = driver(0);
    let (head, _) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.send(&[0u8; 20]); // shorter than the headers
    let p = packet(&frame(60, 0));
    peer.send(&p);
    d.run_events();
    assert_eq!(d.used(RX), vec![(head, 72)]);
}

#[path = "tests/real_tap.rs"]
mod real_tap;

#[path = "tests/ratelimit.rs"]
mod ratelimit;
#[path = "tests/state.rs"]
mod state;

#[path = "tests/bench.rs"]
mod bench;
#[path = "tests/metrics.rs"]
mod metrics_counted;
#[path = "tests/multiqueue.rs"]
mod multiqueue;
#[path = "tests/packed.rs"]
mod packed;
