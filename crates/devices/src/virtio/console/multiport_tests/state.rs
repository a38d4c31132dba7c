//! Multiport virtio-serial saved and restored: ports keep their open state, control
//! messages the driver had no buffer for are still delivered, data flows on.

use super::*;
use crate::state::DeviceState;
use crate::virtio::VirtioState;

#[test]
fn ports_and_pending_control_messages_survive_a_restore() {
    let mut rig = rig();
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    rig.send_control(&control_message(0, PORT_READY, 1, &[]));
    rig.send_control(&control_message(1, PORT_READY, 1, &[]));
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert_eq!(rig.received().len(), 6);
    // Two buffers left for four messages: two wait in the device.
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    assert_eq!(rig.received().len(), 2);
    let state = rig.d.save();
    let DeviceState::Virtio(t) = &state else { panic!("virtio") };
    let VirtioState::MultiportConsole(saved) = &t.device else { panic!("multiport") };
    assert_eq!(saved.control_out.len(), 2);
    assert_eq!(
        saved.ports.iter().map(|p| (p.ready, p.guest_open, p.host_open)).collect::<Vec<_>>(),
        [(true, false, true), (true, true, true)]
    );

    let (p0, peer0) = port(None, true);
    let (p1, peer1) = port(Some("org.test.0"), false);
    let (d, dev) = rig.d.restored(MultiportConsole::new(vec![p0, p1], 4).unwrap(), state).unwrap();
    let mut restored = Rig { d, dev, peers: vec![peer0, peer1], control_rx: rig.control_rx.clone() };
    assert!(restored.dev.lock().unwrap().guest_open(1));
    assert!(restored.dev.lock().unwrap().host_open(1));
    restored.post_control_buffers(2);
    assert_eq!(
        restored.received(),
        [control_message(0, DEVICE_ADD, 1, &[]), control_message(1, DEVICE_ADD, 1, &[])],
        "the messages that waited, and no open or close: the new chardev is connected too"
    );

    let (rx1, tx1) = port_queues(1);
    let a = restored.d.alloc_with(b"out");
    restored.d.add_chain(tx1, &[(a, 3, false)]);
    restored.d.notify(tx1 as u32);
    let mut got = [0u8; 8];
    assert_eq!(restored.peers[1].read(&mut got).unwrap(), 3);
    assert_eq!(&got[..3], b"out");
    let buf = restored.d.alloc(16, 0);
    let head = restored.d.add_chain(rx1, &[(buf, 16, true)]);
    restored.d.notify(rx1 as u32);
    restored.peers[1].write_all(b"in").unwrap();
    restored.d.run_events();
    assert_eq!(restored.d.used(rx1), [(u32::from(head), 2)], "the guest has port 1 open: input is read");
    assert_eq!(restored.d.read_bytes(buf, 2), b"in");
}

#[test]
fn another_number_of_ports_is_refused() {
    let mut rig = rig();
    let state = rig.d.save();
    let (p0, _peer0) = port(None, true);
    let err = rig.d.restored(MultiportConsole::new(vec![p0], 4).unwrap(), state).err().unwrap();
    assert_eq!(err.to_string(), "virtio-serial: the number of ports differs from the saved machine's (saved 2, now 1)");
}
