//! Firecracker's `net` metrics follow the frames the device moves, counted in the
//! interface's own `net_<iface_id>` group (the aggregate `net` is their sum).

use super::*;

#[test]
fn frames_each_way_are_counted_with_their_ethernet_bytes() {
    let (mut net, peer) = device(false);
    net.count_as("metrics-frames");
    let (mut d, _) = TestDriver::new(net);
    d.activate(0, 16);
    let n = metrics::NET_DEVICES.register("metrics-frames");
    send_from_guest(&mut d, &packet(&frame(333, 1)));
    send_from_guest(&mut d, &packet(&frame(444, 2)));
    d.notify(TX as u32);
    assert!(peer.recv().is_some() && peer.recv().is_some());
    post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.send(&packet(&frame(555, 3)));
    d.run_events();
    assert_eq!(d.used(RX).len(), 1);
    let counts =
        [n.tx_packets_count.total(), n.tx_bytes_count.total(), n.rx_packets_count.total(), n.rx_bytes_count.total()];
    // Frame bytes only: the virtio-net header is not counted.
    assert_eq!(counts, [2, 333 + 444, 1, 555]);
}
