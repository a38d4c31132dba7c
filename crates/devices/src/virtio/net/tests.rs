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

/// The device on real taps, each test in a network namespace it creates
/// (unshare(CLONE_NEWNET) in a thread of its own, so nothing is visible
/// outside and everything vanishes with the thread). Needs root and
/// /dev/net/tun; fails otherwise, unless MICROVM_SKIP_TAP_TESTS=1.
mod real_tap {
    use super::*;
    use crate::virtio::net::TapError;
    use std::time::{Duration, Instant};

    const PACKET_VNET_HDR: libc::c_int = 15;
    const ETHTOOL_GTXCSUM: u32 = 0x16;
    const ETHTOOL_GTSO: u32 = 0x1e;

    fn in_new_netns(test: impl FnOnce() + Send + 'static) {
        if std::env::var("MICROVM_SKIP_TAP_TESTS").as_deref() == Ok("1") {
            eprintln!("MICROVM_SKIP_TAP_TESTS=1: tap test skipped");
            return;
        }
        let result = std::thread::spawn(move || {
            // SAFETY: unshare only changes this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                panic!(
                    "tap tests need root: unshare(CLONE_NEWNET) failed: {}; set MICROVM_SKIP_TAP_TESTS=1 to skip them",
                    std::io::Error::last_os_error()
                );
            }
            // No IPv6 autoconfiguration chatter (DAD, router solicitations)
            // on the test taps: the only frames are the tests' own.
            let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
            test();
        })
        .join();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    fn open_tap(name: Option<&str>) -> Tap {
        Tap::open(name).unwrap_or_else(|e| {
            panic!("{e}; tap tests need /dev/net/tun and root (set MICROVM_SKIP_TAP_TESTS=1 to skip them)")
        })
    }

    fn ifreq(name: &str) -> libc::ifreq {
        // SAFETY: plain data; all zeros is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr
    }

    fn socket(domain: libc::c_int, kind: libc::c_int, protocol: libc::c_int) -> OwnedFd {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket creation.
        let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fresh fd, owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn link_up(name: &str) {
        let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let mut ifr = ifreq(name);
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write our ifreq.
        unsafe {
            assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr), 0);
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut ifr), 0, "link up");
        }
    }

    /// An ethtool boolean (ETHTOOL_G*) of interface `name`.
    fn ethtool_get(name: &str, cmd: u32) -> u32 {
        let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let mut value = [cmd, 0u32];
        let mut ifr = ifreq(name);
        ifr.ifr_ifru.ifru_data = value.as_mut_ptr().cast();
        // SAFETY: SIOCETHTOOL reads the command and writes the value through ifru_data.
        let ret = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
        assert_eq!(ret, 0, "SIOCETHTOOL: {}", std::io::Error::last_os_error());
        value[1]
    }

    /// An AF_PACKET socket on the tap: what the device writes to the tap
    /// arrives here, and what is sent here goes to the device.
    struct PacketSocket {
        fd: OwnedFd,
    }

    impl PacketSocket {
        fn open(ifname: &str, vnet_hdr: bool) -> PacketSocket {
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(protocol));
            if vnet_hdr {
                let one: libc::c_int = 1;
                // SAFETY: setsockopt reads one int.
                let ret = unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_PACKET,
                        PACKET_VNET_HDR,
                        (&one as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
                assert_eq!(ret, 0, "PACKET_VNET_HDR: {}", std::io::Error::last_os_error());
            }
            let cname = std::ffi::CString::new(ifname).unwrap();
            // SAFETY: reads a NUL-terminated string.
            let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
            assert_ne!(ifindex, 0);
            // SAFETY: plain data; all zeros is valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = protocol;
            sll.sll_ifindex = ifindex as libc::c_int;
            // SAFETY: bind reads a sockaddr_ll of the given size.
            let ret = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(ret, 0, "bind: {}", std::io::Error::last_os_error());
            PacketSocket { fd }
        }

        fn send(&self, frame: &[u8]) {
            // SAFETY: send reads `frame.len()` bytes from our slice.
            let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            assert_eq!(n, frame.len() as isize, "send: {}", std::io::Error::last_os_error());
        }

        /// The next frame with our EtherType (at `offset`, past any vnet
        /// header), waiting up to 2 s.
        fn recv_ours(&self, offset: usize) -> Option<Vec<u8>> {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: poll on one pollfd we own.
                if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                    continue;
                }
                let mut buf = vec![0u8; 70000];
                // SAFETY: recv writes at most `buf.len()` bytes.
                let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n <= 0 {
                    continue;
                }
                buf.truncate(n as usize);
                if buf.len() >= offset + 14 && buf[offset + 12..offset + 14] == ETHERTYPE.to_be_bytes() {
                    return Some(buf);
                }
            }
            None
        }
    }

    /// Runs the device's event loop until `count` RX used entries arrived (or 2 s).
    fn wait_rx(d: &mut TestDriver, count: usize) -> Vec<(u32, u32)> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut used = Vec::new();
        while used.len() < count && Instant::now() < deadline {
            d.run_events();
            used.extend(d.used(RX));
        }
        used
    }

    fn net_on_tap(name: &str, features: u64) -> TestDriver {
        let tap = open_tap(Some(name));
        link_up(name);
        let (mut d, _) = TestDriver::new(Net::new(tap, Some(MAC)).unwrap());
        d.activate(features, 16);
        d
    }

    #[test]
    fn taps_are_named_by_the_kernel_or_the_caller_and_errors_say_why() {
        in_new_netns(|| {
            let picked = open_tap(None);
            assert!(picked.name().starts_with("tap"), "{}", picked.name());
            assert!(!picked.name().contains('%'));
            let named = open_tap(Some("mvtest0"));
            assert_eq!(named.name(), "mvtest0");
            eprintln!("tap {} takes UFO: {}", named.name(), named.supports_ufo());
            let e = Tap::open(Some("mvtest0")).unwrap_err();
            assert!(matches!(e, TapError::Busy(_)), "{e}");
            assert_eq!(e.to_string(), "tap mvtest0 is in use (another process or VM has it open)");
            let e = Tap::open(Some("lo")).unwrap_err();
            assert!(matches!(e, TapError::NotATap(_)), "{e}");
            // Closing the fd deletes a tap we created: the name is free again.
            drop(named);
            assert_eq!(open_tap(Some("mvtest0")).name(), "mvtest0");
        });
    }

    #[test]
    fn frames_cross_a_real_tap_both_ways() {
        in_new_netns(|| {
            let mut d = net_on_tap("mvtest1", 0);
            let sock = PacketSocket::open("mvtest1", false);

            let f = frame(100, 1);
            send_from_guest(&mut d, &packet(&f));
            d.notify(TX as u32);
            assert_eq!(sock.recv_ours(0), Some(f), "TX frame on the tap");
            assert_eq!(d.used(TX).len(), 1);

            let (head, addr) = post_rx(&mut d, 2048);
            d.notify(RX as u32);
            let f = frame(200, 2);
            sock.send(&f);
            assert_eq!(wait_rx(&mut d, 1), vec![(head, 12 + 200)]);
            let got = d.read_bytes(addr, 212);
            assert_eq!(got[..10], [0; 10], "no offload metadata for a plain frame");
            assert_eq!(num_buffers(&got), 1);
            assert_eq!(got[12..], f[..]);
        });
    }

    #[test]
    fn tx_checksum_offload_metadata_reaches_the_host_stack() {
        in_new_netns(|| {
            let mut d = net_on_tap("mvtest2", F_CSUM);
            let sock = PacketSocket::open("mvtest2", true);
            // An IPv4/UDP frame whose UDP checksum the guest left to the host.
            let mut f = frame(14 + 20 + 8 + 32, 3);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut f[14..34];
            ip.copy_from_slice(&[0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 17, 0, 0, 169, 254, 0, 1, 169, 254, 0, 2]);
            f[34..42].copy_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 40, 0, 0]);
            let mut p = packet(&f);
            p[0] = 1; // NEEDS_CSUM
            p[6..8].copy_from_slice(&34u16.to_le_bytes()); // csum_start
            p[8..10].copy_from_slice(&6u16.to_le_bytes()); // csum_offset
            send_from_guest(&mut d, &p);
            d.notify(TX as u32);
            let deadline = Instant::now() + Duration::from_secs(2);
            let got = loop {
                assert!(Instant::now() < deadline, "UDP frame not seen on the tap");
                let mut pfd = libc::pollfd { fd: sock.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: poll on one pollfd we own.
                if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                    continue;
                }
                let mut buf = vec![0u8; 2048];
                // SAFETY: recv writes at most `buf.len()` bytes.
                let n = unsafe { libc::recv(sock.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 10 + 14 && buf[10 + 6..10 + 12] == MAC {
                    buf.truncate(n as usize);
                    break buf;
                }
            };
            // The 10-byte header the host stack reports: NEEDS_CSUM, same offsets.
            assert_eq!(got[0] & 1, 1, "NEEDS_CSUM kept");
            assert_eq!(u16::from_le_bytes([got[6], got[7]]), 34);
            assert_eq!(u16::from_le_bytes([got[8], got[9]]), 6);
            assert_eq!(got[10..], f[..]);
        });
    }

    #[test]
    fn big_frames_span_mergeable_buffers_and_wait_for_them() {
        in_new_netns(|| {
            let mut d = net_on_tap("mvtest3", F_MRG_RXBUF | F_EVENT_IDX);
            let sock = PacketSocket::open("mvtest3", false);
            let big = frame(1400, 4);
            let small = frame(100, 5);
            sock.send(&big);
            sock.send(&small);
            // No buffers yet: nothing delivered, nothing lost.
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(200) {
                d.run_events();
            }
            assert!(d.used(RX).is_empty());
            let chains: Vec<_> = (0..4).map(|_| post_rx(&mut d, 600)).collect();
            d.notify(RX as u32);
            let used = wait_rx(&mut d, 4);
            let heads: Vec<u32> = chains.iter().map(|c| c.0).collect();
            assert_eq!(used, vec![(heads[0], 600), (heads[1], 600), (heads[2], 212), (heads[3], 112)]);
            let mut got = d.read_bytes(chains[0].1, 600);
            got.extend(d.read_bytes(chains[1].1, 600));
            got.extend(d.read_bytes(chains[2].1, 212));
            assert_eq!(num_buffers(&got), 3);
            assert_eq!(got[12..], big[..]);
            let got = d.read_bytes(chains[3].1, 112);
            assert_eq!(num_buffers(&got), 1);
            assert_eq!(got[12..], small[..]);
        });
    }

    #[test]
    fn tap_offloads_follow_the_features_the_guest_acked() {
        in_new_netns(|| {
            let mut d = net_on_tap("mvtest4", F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_MRG_RXBUF);
            assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTXCSUM), 1);
            assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTSO), 1);
            // A reset takes them back: a new driver may not handle them.
            d.write_reg(0x70, 0);
            assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTSO), 0);
            assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTXCSUM), 0);
            d.activate(F_GUEST_CSUM, 16);
            assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTXCSUM), 1);
            assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTSO), 0);
        });
    }
}

#[path = "tests/ratelimit.rs"]
mod ratelimit;
#[path = "tests/state.rs"]
mod state;

#[path = "tests/metrics.rs"]
mod metrics_counted;
#[path = "tests/packed.rs"]
mod packed;
