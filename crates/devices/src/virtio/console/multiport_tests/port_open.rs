//! Port open and close both ways: host input waits in the backend while the
//! guest has a port closed; a backend's connect and disconnect reach the
//! guest as PORT_OPEN; malformed open and close messages change nothing.

use super::*;
use crate::chardev::ChardevBackend;
use std::time::{Duration, Instant};
use vmm_sys_util::tempdir::TempDir;

/// Runs the device's loop until `found` is among the control messages it
/// sent (collecting all of them), or 5 s passed.
fn wait_for_control(rig: &mut Rig, found: &[u8]) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut all = Vec::new();
    while Instant::now() < deadline {
        rig.d.run_events();
        all.extend(rig.received());
        if all.iter().any(|m| m == found) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    all
}

/// The handshake of `rig()`'s two ports; returns a receive buffer posted on port 1.
fn ready_rig() -> (Rig, u64) {
    let mut rig = rig();
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    rig.send_control(&control_message(0, PORT_READY, 1, &[]));
    rig.send_control(&control_message(1, PORT_READY, 1, &[]));
    assert_eq!(rig.received().len(), 6, "2 DEVICE_ADD, CONSOLE_PORT, PORT_NAME, 2 PORT_OPEN");
    let (rx1, _) = port_queues(1);
    let buf = rig.d.alloc(64, 0);
    rig.d.add_chain(rx1, &[(buf, 64, true)]);
    rig.d.notify(rx1 as u32);
    (rig, buf)
}

#[test]
fn input_waits_in_the_backend_until_the_guest_opens_the_port() {
    let (mut rig, buf) = ready_rig();
    let (rx1, _) = port_queues(1);
    rig.peers[1].write_all(b"early").unwrap();
    rig.d.run_events();
    assert_eq!(rig.d.used(rx1), [], "the guest has the port closed");
    assert!(rig.dev.lock().unwrap().ports[1].pending.is_empty(), "not even read from the backend");

    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert_eq!(rig.d.used(rx1).iter().map(|u| u.1).collect::<Vec<_>>(), [5]);
    assert_eq!(rig.d.read_bytes(buf, 5), b"early");

    // Closed again: held again, then delivered on the next open.
    rig.send_control(&control_message(1, PORT_OPEN, 0, &[]));
    let buf = rig.d.alloc(64, 0);
    rig.d.add_chain(rx1, &[(buf, 64, true)]);
    rig.d.notify(rx1 as u32);
    rig.peers[1].write_all(b"late").unwrap();
    rig.d.run_events();
    assert_eq!(rig.d.used(rx1), []);
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert_eq!(rig.d.used(rx1).iter().map(|u| u.1).collect::<Vec<_>>(), [4]);
    assert_eq!(rig.d.read_bytes(buf, 4), b"late");
    assert!(!rig.broken());
}

fn server(dir: &TempDir, name: &str) -> (Chardev, std::path::PathBuf) {
    let path = dir.as_path().join(name);
    let backend = ChardevBackend::Socket { path: path.clone(), server: true, wait: false };
    (Chardev::open(name, &backend).unwrap(), path)
}

#[test]
fn a_socket_client_connecting_and_leaving_reaches_the_guest_as_port_open() {
    let dir = TempDir::new_with_prefix("/tmp/microvm-ports-").unwrap();
    let (console_dev, _) = server(&dir, "con");
    let (port_dev, path) = server(&dir, "port");
    let null = Chardev::open("null", &ChardevBackend::Null).unwrap();
    let ports = vec![
        PortBackend { chardev: console_dev, id: None, name: None, console: true },
        PortBackend { chardev: port_dev, id: None, name: Some("org.test.sock".into()), console: false },
        PortBackend { chardev: null, id: None, name: Some("org.test.null".into()), console: false },
    ];
    let mut rig = rig_with(ports, Vec::new());
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    assert_eq!(rig.received().len(), 3);
    // As QEMU: a console is always host-connected, client or not; a
    // virtserialport only with a client; on `null`, never.
    rig.send_control(&control_message(0, PORT_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(0, CONSOLE_PORT, 1, &[]), control_message(0, PORT_OPEN, 1, &[])]);
    rig.send_control(&control_message(1, PORT_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(1, PORT_NAME, 1, b"org.test.sock")]);
    rig.send_control(&control_message(2, PORT_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(2, PORT_NAME, 1, b"org.test.null")]);
    rig.post_control_buffers(8);

    let client = UnixStream::connect(&path).unwrap();
    let opened = control_message(1, PORT_OPEN, 1, &[]);
    assert_eq!(wait_for_control(&mut rig, &opened), std::slice::from_ref(&opened));
    assert!(rig.dev.lock().unwrap().host_open(1));
    drop(client);
    let closed = control_message(1, PORT_OPEN, 0, &[]);
    assert_eq!(wait_for_control(&mut rig, &closed), [closed]);
    assert!(!rig.dev.lock().unwrap().host_open(1));
    // The next client opens the port again.
    let _client = UnixStream::connect(&path).unwrap();
    assert_eq!(wait_for_control(&mut rig, &opened), [opened]);
    assert!(rig.interrupted_and_whole());
}

#[test]
fn malformed_or_out_of_range_open_and_close_change_nothing() {
    let (mut rig, buf) = ready_rig();
    let (rx1, _) = port_queues(1);
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    let close1 = control_message(1, PORT_OPEN, 0, &[]);
    let open0 = control_message(0, PORT_OPEN, 1, &[]);
    for bad in [
        close1[..7].to_vec(),                  // a close one byte short
        open0[..6].to_vec(),                   // an open without its value
        control_message(2, PORT_OPEN, 1, &[]), // below max_ports, but no such port
        control_message(4, PORT_OPEN, 0, &[]), // max_ports itself
        control_message(u32::MAX, PORT_OPEN, 1, &[]),
        control_message(1 << 16, PORT_OPEN, 0, &[]), // port 1 if the id were truncated to 16 bits
    ] {
        rig.send_control(&bad);
        let dev = rig.dev.lock().unwrap();
        assert!(!dev.guest_open(0) && dev.guest_open(1), "{bad:?}");
        drop(dev);
        assert_eq!(rig.received(), Vec::<Vec<u8>>::new(), "{bad:?}");
        assert!(!rig.broken(), "{bad:?}");
    }
    // Port 1 is still open (its input arrives), port 0 still closed (its input waits).
    rig.peers[1].write_all(b"still open").unwrap();
    rig.peers[0].write_all(b"held").unwrap();
    let buf0 = rig.d.alloc(64, 0);
    let head0 = rig.d.add_chain(0, &[(buf0, 64, true)]);
    rig.d.notify(0);
    assert_eq!(rig.d.used(rx1).iter().map(|u| u.1).collect::<Vec<_>>(), [10]);
    assert_eq!(rig.d.read_bytes(buf, 10), b"still open");
    assert_eq!(rig.d.used(0), []);
    rig.send_control(&open0);
    assert_eq!(rig.d.used(0), [(u32::from(head0), 4)]);
}

#[test]
fn without_multiport_input_does_not_wait_for_an_open() {
    // A driver that does not negotiate MULTIPORT has no control queue to open
    // ports with: port 0 takes input at once, as in QEMU.
    let (p0, mut peer0) = port(None, true);
    let (mut d, _dev) = TestDriver::new(MultiportConsole::new(vec![p0], 1).unwrap());
    d.activate(0, 16);
    let buf = d.alloc(64, 0);
    let head = d.add_chain(0, &[(buf, 64, true)]);
    d.notify(0);
    peer0.write_all(b"now").unwrap();
    d.run_events();
    assert_eq!(d.used(0), [(u32::from(head), 3)]);
    assert_eq!(d.read_bytes(buf, 3), b"now");
}

#[test]
fn the_guest_opening_and_closing_a_port_with_an_id_is_announced_and_a_reset_closes_it() {
    use crate::guest_events::{GuestEvent, GuestEvents};
    let (console, peer0) = port(None, true);
    let (mut named, peer1) = port(Some("org.test.0"), false);
    named.id = Some("port1".into());
    let events = GuestEvents::new().unwrap();
    let mut device = MultiportConsole::new(vec![console, named], 4).unwrap();
    device.report_to(events.clone());
    let mut rig = rig_of(device, vec![peer0, peer1]);
    let change = |open| GuestEvent::PortOpen { id: "port1".into(), open };

    rig.send_control(&control_message(0, PORT_OPEN, 1, &[]));
    assert_eq!(events.take(), [], "a port without an id is not announced");
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert_eq!(events.take(), [change(true)]);
    rig.send_control(&control_message(1, PORT_OPEN, 0, &[]));
    assert_eq!(events.take(), [change(false)]);
    // As QEMU, every PORT_OPEN is announced, a repeated one too.
    rig.send_control(&control_message(1, PORT_OPEN, 0, &[]));
    assert_eq!(events.take(), [change(false)]);
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert_eq!(events.take(), [change(true)]);
    rig.d.reset();
    assert_eq!(events.take(), [change(false)], "a reset closes the ports the guest had open");
    rig.d.reset();
    assert_eq!(events.take(), [], "and only those");
}
