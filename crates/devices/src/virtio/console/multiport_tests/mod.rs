//! The multiport console through the driver-side harness: the control
//! handshake, data on a second port, and malformed control messages; port
//! open and close in `port_open`.

mod packed;
mod port_open;
mod state;

use super::*;
use crate::virtio::status;
use crate::virtio::test_driver::TestDriver;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

fn port(name: Option<&str>, console: bool) -> (PortBackend, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    let input = ours.try_clone().unwrap();
    let chardev = Chardev::from_fds("p", Some(input.into()), Some(ours.into())).unwrap();
    peer.set_nonblocking(true).unwrap();
    (PortBackend { chardev, id: None, name: name.map(Into::into), console }, peer)
}

struct Rig {
    d: TestDriver,
    dev: Arc<Mutex<MultiportConsole>>,
    peers: Vec<UnixStream>,
    /// Posted control receive buffers: head -> address.
    control_rx: Vec<(u32, u64)>,
}

/// A console port and a port named org.test.0, max_ports 4, activated with MULTIPORT.
fn rig() -> Rig {
    let (p0, peer0) = port(None, true);
    let (p1, peer1) = port(Some("org.test.0"), false);
    rig_with(vec![p0, p1], vec![peer0, peer1])
}

/// `ports` on a device with max_ports 4, activated with MULTIPORT, control receive buffers posted.
fn rig_with(ports: Vec<PortBackend>, peers: Vec<UnixStream>) -> Rig {
    rig_of(MultiportConsole::new(ports, 4).unwrap(), peers)
}

/// `device`, activated with MULTIPORT, control receive buffers posted.
fn rig_of(device: MultiportConsole, peers: Vec<UnixStream>) -> Rig {
    let (mut d, dev) = TestDriver::new(device);
    d.activate(F_MULTIPORT, 16);
    let mut rig = Rig { d, dev, peers, control_rx: Vec::new() };
    rig.post_control_buffers(8);
    rig
}

impl Rig {
    /// Posts `n` more control receive buffers (the descriptors of older ones are reused).
    fn post_control_buffers(&mut self, n: usize) {
        for _ in 0..n {
            let a = self.d.alloc(64, 0);
            let head = self.d.add_chain(CONTROL_RX, &[(a, 64, true)]);
            self.control_rx.retain(|&(h, _)| h != u32::from(head));
            self.control_rx.push((u32::from(head), a));
        }
        self.d.notify(CONTROL_RX as u32);
    }

    fn send_control(&mut self, msg: &[u8]) {
        let a = self.d.alloc_with(msg);
        self.d.add_chain(CONTROL_TX, &[(a, msg.len() as u32, false)]);
        self.d.notify(CONTROL_TX as u32);
    }

    /// Control messages the device sent since the last call.
    fn received(&mut self) -> Vec<Vec<u8>> {
        self.d
            .used(CONTROL_RX)
            .into_iter()
            .map(|(head, len)| {
                let &(_, addr) = self.control_rx.iter().find(|(h, _)| *h == head).expect("posted");
                self.d.read_bytes(addr, len as usize)
            })
            .collect()
    }

    fn broken(&mut self) -> bool {
        self.d.status() & status::DEVICE_NEEDS_RESET != 0
    }
}

#[test]
fn features_config_and_queues() {
    let rig = rig();
    let mut d = rig.d;
    assert_ne!(d.device_features() & F_MULTIPORT, 0);
    // max_nr_ports at offset 4 of the configuration space (registers from 0x100).
    assert_eq!(d.read_reg(0x104), 4);
    assert_eq!(rig.dev.lock().unwrap().queue_max_sizes().len(), 10, "(4 + 1) queue pairs");
    // max_ports is at least the port count and at most 31.
    let ports = (0..3).map(|_| port(None, false).0).collect();
    assert_eq!(MultiportConsole::new(ports, 1).unwrap().max_ports, 3);
    assert_eq!(MultiportConsole::new(Vec::new(), 99).unwrap().max_ports, MAX_PORTS);
}

#[test]
fn handshake_announces_ports_names_and_consoles() {
    let mut rig = rig();
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(0, DEVICE_ADD, 1, &[]), control_message(1, DEVICE_ADD, 1, &[])]);
    rig.send_control(&control_message(0, PORT_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(0, CONSOLE_PORT, 1, &[]), control_message(0, PORT_OPEN, 1, &[])]);
    rig.send_control(&control_message(1, PORT_READY, 1, &[]));
    assert_eq!(
        rig.received(),
        [control_message(1, PORT_NAME, 1, b"org.test.0"), control_message(1, PORT_OPEN, 1, &[])]
    );
    // The guest opening and closing a port reaches the device.
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert!(rig.dev.lock().unwrap().guest_open(1));
    rig.send_control(&control_message(1, PORT_OPEN, 0, &[]));
    assert!(!rig.dev.lock().unwrap().guest_open(1));
    assert!(rig.interrupted_and_whole());
}

impl Rig {
    fn interrupted_and_whole(&mut self) -> bool {
        self.d.interrupted() && !self.broken()
    }
}

#[test]
fn data_flows_on_the_second_port_both_ways() {
    let mut rig = rig();
    let (rx1, tx1) = port_queues(1);
    assert_eq!((rx1, tx1), (4, 5));
    let a = rig.d.alloc_with(b"to host on port 1");
    rig.d.add_chain(tx1, &[(a, 17, false)]);
    rig.d.notify(tx1 as u32);
    let mut got = vec![0u8; 64];
    let n = rig.peers[1].read(&mut got).unwrap();
    assert_eq!(&got[..n], b"to host on port 1");
    assert_eq!(rig.peers[0].read(&mut got).map_err(|e| e.kind()), Err(ErrorKind::WouldBlock), "not port 0");

    let buf = rig.d.alloc(32, 0);
    let head = rig.d.add_chain(rx1, &[(buf, 32, true)]);
    rig.d.notify(rx1 as u32);
    // Input goes to a port the guest has open.
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    rig.peers[1].write_all(b"to guest").unwrap();
    rig.d.run_events();
    assert_eq!(rig.d.used(rx1), [(u32::from(head), 8)]);
    assert_eq!(rig.d.read_bytes(buf, 8), b"to guest");
}

#[test]
fn malformed_control_messages_are_dropped_and_the_device_goes_on() {
    let mut rig = rig();
    for bad in [
        vec![1, 2, 3, 4],                         // too short
        Vec::new(),                               // empty
        control_message(99, PORT_READY, 1, &[]),  // no such port
        control_message(7, PORT_OPEN, 1, &[]),    // no such port
        control_message(0, 42, 1, &[]),           // unknown event
        control_message(0, DEVICE_READY, 0, &[]), // the driver failed
        control_message(0, PORT_READY, 0, &[]),   // the driver failed the port
        control_message(0, CONSOLE_PORT, 1, &[]), // a device-to-driver event
    ] {
        rig.send_control(&bad);
        assert_eq!(rig.received(), Vec::<Vec<u8>>::new(), "{bad:?}");
        assert!(!rig.broken(), "{bad:?}");
    }
    // Every malformed chain was completed, and a good message still works.
    assert_eq!(rig.d.used(CONTROL_TX).len(), 8);
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    assert_eq!(rig.received().len(), 2);
    // A message split over two descriptors is one message.
    let msg = control_message(1, PORT_READY, 1, &[]);
    let (a, b) = (rig.d.alloc_with(&msg[..3]), rig.d.alloc_with(&msg[3..]));
    rig.d.add_chain(CONTROL_TX, &[(a, 3, false), (b, 5, false)]);
    rig.d.notify(CONTROL_TX as u32);
    assert_eq!(rig.received()[0], control_message(1, PORT_NAME, 1, b"org.test.0"));
}
