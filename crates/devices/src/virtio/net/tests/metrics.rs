//! Firecracker's `net` metrics follow the frames the device moves. The counters are process
//! statics shared with the tests running alongside, so each check is on growth of at least
//! what this test did.

use super::*;

#[test]
fn frames_each_way_are_counted_with_their_ethernet_bytes() {
    let n = &metrics::NET;
    let before =
        [n.tx_packets_count.total(), n.tx_bytes_count.total(), n.rx_packets_count.total(), n.rx_bytes_count.total()];
    let (mut d, peer) = driver(0);
    send_from_guest(&mut d, &packet(&frame(333, 1)));
    send_from_guest(&mut d, &packet(&frame(444, 2)));
    d.notify(TX as u32);
    assert!(peer.recv().is_some() && peer.recv().is_some());
    post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.send(&packet(&frame(555, 3)));
    d.run_events();
    assert_eq!(d.used(RX).len(), 1);
    let after =
        [n.tx_packets_count.total(), n.tx_bytes_count.total(), n.rx_packets_count.total(), n.rx_bytes_count.total()];
    assert!(after[0] >= before[0] + 2);
    assert!(after[1] >= before[1] + 333 + 444, "the virtio-net header is not counted");
    assert!(after[2] > before[2]);
    assert!(after[3] >= before[3] + 555);
}
