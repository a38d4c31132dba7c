//! virtio-net saved and restored onto a new tap (the stand-in socket pair): the guest
//! keeps its MAC, receive buffers it posted before the snapshot take frames after it,
//! and transmit goes on.

use super::*;
use crate::state::DeviceState;
use crate::virtio::VirtioState;

#[test]
fn frames_flow_both_ways_after_a_restore_and_the_mac_is_kept() {
    let (mut d, peer) = driver(F_GUEST_CSUM);
    let p = packet(&frame(100, 1));
    let head = send_from_guest(&mut d, &p);
    d.notify(TX as u32);
    assert_eq!(peer.recv().as_deref(), Some(&p[..]));
    assert_eq!(d.used(TX), [(u32::from(head), 0)]);
    let (first, _) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.send(&packet(&frame(60, 2)));
    d.run_events();
    assert_eq!(d.used(RX).iter().map(|u| u.0).collect::<Vec<_>>(), [first]);
    // Posted before the snapshot, filled after it.
    let (posted, addr) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    let state = d.save();
    let DeviceState::Virtio(t) = &state else { panic!("virtio") };
    assert_eq!(t.device, VirtioState::Net(super::super::NetState { mac: MAC }));

    // The restoring command line gave no MAC: the guest's is kept, not a random one.
    let (tap, peer2) = Tap::socketpair_for_tests(false);
    let (mut r, dev) = d.restored(Net::new(tap, None).unwrap(), state).unwrap();
    let peer2 = Peer(peer2);
    assert_eq!(dev.lock().unwrap().mac(), MAC);
    let mut config = [0u8; 6];
    r.transport.read(0x100, &mut config);
    assert_eq!(config, MAC);
    let incoming = packet(&frame(200, 3));
    peer2.send(&incoming);
    r.run_events();
    assert_eq!(r.used(RX), [(posted, incoming.len() as u32)]);
    assert_eq!(&r.read_bytes(addr, incoming.len())[12..], &incoming[12..]);
    let out = packet(&frame(90, 4));
    let head = send_from_guest(&mut r, &out);
    r.notify(TX as u32);
    assert_eq!(peer2.recv().as_deref(), Some(&out[..]));
    assert_eq!(r.used(TX), [(u32::from(head), 0)]);
    assert_eq!(peer.recv(), None, "nothing reaches the old tap");
}
