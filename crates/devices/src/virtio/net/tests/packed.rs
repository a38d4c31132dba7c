//! virtio-net on packed rings (`packed=on`, VIRTIO_F_RING_PACKED acked), with mergeable
//! RX buffers and EVENT_IDX: a frame spread over two buffers, a frame waiting for
//! buffers the guest posts later (the rewind and the notification request at the
//! position seen), transmit, and positions wrapping in 4-slot rings.

use super::*;
use crate::virtio::queue::VIRTIO_F_RING_PACKED;

fn packed_driver() -> (TestDriver, Peer) {
    let (net, peer) = device(false);
    let (mut d, _) = TestDriver::new(net);
    d.transport.offer_packed_ring(true);
    d.activate(VIRTIO_F_RING_PACKED | F_MRG_RXBUF | F_EVENT_IDX, 4);
    (d, peer)
}

#[test]
fn frames_flow_both_ways_over_packed_rings() {
    let (mut d, peer) = packed_driver();
    for round in 0..3u8 {
        // TX: header and frame in two descriptors.
        let p = packet(&frame(200, round));
        let (hdr, body) = (d.alloc(VNET_HDR_LEN as u32, 0), d.alloc(200, 0));
        d.mem.write_slice(&p[..VNET_HDR_LEN], vm_memory::GuestAddress(hdr)).unwrap();
        d.mem.write_slice(&p[VNET_HDR_LEN..], vm_memory::GuestAddress(body)).unwrap();
        d.post_packed(TX, &[(hdr, VNET_HDR_LEN as u32, false), (body, 200, false)], 1);
        d.notify(TX as u32);
        assert_eq!(peer.recv().as_deref(), Some(&p[..]), "round {round}");
        assert_eq!(d.packed_used(TX), [(1, 0)]);

        // RX: a 1500-byte frame over two 1000-byte buffers (mergeable).
        let (a, b) = (d.alloc(1000, 0xee), d.alloc(1000, 0xee));
        d.post_packed(RX, &[(a, 1000, true)], 2);
        d.post_packed(RX, &[(b, 1000, true)], 3);
        d.notify(RX as u32);
        let f = frame(1500, round);
        peer.send(&packet(&f));
        d.run_events();
        let total = VNET_HDR_LEN as u32 + 1500;
        assert_eq!(d.packed_used(RX), [(2, 1000), (3, total - 1000)], "round {round}");
        let mut got = vec![0u8; total as usize];
        d.mem.read_slice(&mut got[..1000], vm_memory::GuestAddress(a)).unwrap();
        d.mem.read_slice(&mut got[1000..], vm_memory::GuestAddress(b)).unwrap();
        assert_eq!(num_buffers(&got[..VNET_HDR_LEN]), 2);
        assert_eq!(&got[VNET_HDR_LEN..], &f[..]);
    }
}

#[test]
fn a_frame_without_buffers_waits_for_the_guest_to_post_them() {
    let (mut d, peer) = packed_driver();
    // One buffer, too small for the frame: the attempt is rewound and waits.
    let a = d.alloc(800, 0xee);
    d.post_packed(RX, &[(a, 800, true)], 0);
    d.notify(RX as u32);
    let f = frame(1200, 9);
    peer.send(&packet(&f));
    d.run_events();
    assert_eq!(d.packed_used(RX), [], "nothing used while the frame does not fit");
    let b = d.alloc(800, 0xee);
    d.post_packed(RX, &[(b, 800, true)], 1);
    d.notify(RX as u32);
    d.run_events();
    let total = VNET_HDR_LEN as u32 + 1200;
    assert_eq!(d.packed_used(RX), [(0, 800), (1, total - 800)]);
    let mut tail = vec![0u8; (total - 800) as usize];
    d.mem.read_slice(&mut tail, vm_memory::GuestAddress(b)).unwrap();
    assert_eq!(&tail[..], &f[800 - VNET_HDR_LEN..]);
}
