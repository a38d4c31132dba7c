//! virtio-serial with ports on packed rings (`packed=on`, VIRTIO_F_RING_PACKED acked):
//! every queue, the control pair included, is a 4-slot packed ring. The handshake and
//! the port's open state go through the control queues while their rings wrap, and
//! data flows both ways on the console port and a named port over several laps.

use super::*;
use crate::virtio::queue::VIRTIO_F_RING_PACKED;

/// A 4-slot packed ring's driver side: the next buffer id to post (ids stay below the
/// ring size and are reused once their buffer came back, as a driver's free list does).
struct Ids(u16);

impl Ids {
    fn next(&mut self) -> u16 {
        let id = self.0;
        self.0 = (self.0 + 1) % SIZE;
        id
    }
}

const SIZE: u16 = 4;

struct PackedRig {
    d: TestDriver,
    dev: Arc<Mutex<MultiportConsole>>,
    peers: Vec<UnixStream>,
    /// Per queue, the next id to post.
    ids: Vec<Ids>,
    /// Posted control receive buffers by id.
    control_rx: Vec<u64>,
}

fn packed_rig() -> PackedRig {
    let (p0, peer0) = port(None, true);
    let (p1, peer1) = port(Some("org.test.0"), false);
    let (mut d, dev) = TestDriver::new(MultiportConsole::new(vec![p0, p1], 2).unwrap());
    d.transport.offer_packed_ring(true);
    d.activate(F_MULTIPORT | VIRTIO_F_RING_PACKED, SIZE);
    let queues = dev.lock().unwrap().queue_max_sizes().len();
    let mut rig = PackedRig {
        d,
        dev,
        peers: vec![peer0, peer1],
        ids: (0..queues).map(|_| Ids(0)).collect(),
        control_rx: vec![0; 4],
    };
    rig.post_control_buffers();
    rig
}

impl PackedRig {
    /// Fills the control receive ring: one 64-byte buffer per slot.
    fn post_control_buffers(&mut self) {
        for _ in 0..SIZE {
            let a = self.d.alloc(64, 0);
            let id = self.ids[CONTROL_RX].next();
            self.d.post_packed(CONTROL_RX, &[(a, 64, true)], id);
            self.control_rx[usize::from(id)] = a;
        }
        self.d.notify(CONTROL_RX as u32);
    }

    fn send_control(&mut self, msg: &[u8]) {
        let a = self.d.alloc_with(msg);
        let id = self.ids[CONTROL_TX].next();
        self.d.post_packed(CONTROL_TX, &[(a, msg.len() as u32, false)], id);
        self.d.notify(CONTROL_TX as u32);
        assert_eq!(self.d.packed_used(CONTROL_TX), [(id, 0)], "the control message was taken");
    }

    /// Control messages the device sent since the last call, in order.
    fn received(&mut self) -> Vec<Vec<u8>> {
        let used = self.d.packed_used(CONTROL_RX);
        used.into_iter().map(|(id, len)| self.d.read_bytes(self.control_rx[usize::from(id)], len as usize)).collect()
    }

    /// Sends `bytes` to the host on `port`, in two descriptors.
    fn host_gets(&mut self, port: usize, bytes: &[u8]) -> Vec<u8> {
        let (_, tx) = port_queues(port);
        let half = bytes.len() / 2;
        let (a, b) = (self.d.alloc_with(&bytes[..half]), self.d.alloc_with(&bytes[half..]));
        let id = self.ids[tx].next();
        self.d.post_packed(tx, &[(a, half as u32, false), (b, (bytes.len() - half) as u32, false)], id);
        self.d.notify(tx as u32);
        assert_eq!(self.d.packed_used(tx), [(id, 0)]);
        let mut got = vec![0u8; 256];
        let n = self.peers[port].read(&mut got).unwrap();
        got.truncate(n);
        got
    }

    /// The host writes `bytes` on `port`; returns what one posted 32-byte guest buffer got.
    fn guest_gets(&mut self, port: usize, bytes: &[u8]) -> Vec<u8> {
        let (rx, _) = port_queues(port);
        let buf = self.d.alloc(32, 0);
        let id = self.ids[rx].next();
        self.d.post_packed(rx, &[(buf, 32, true)], id);
        self.d.notify(rx as u32);
        self.peers[port].write_all(bytes).unwrap();
        self.d.run_events();
        let used = self.d.packed_used(rx);
        assert_eq!(used.len(), 1, "one buffer filled: {used:?}");
        assert_eq!(used[0].0, id);
        self.d.read_bytes(buf, used[0].1 as usize)
    }
}

#[test]
fn the_handshake_and_port_data_go_through_packed_rings_as_they_wrap() {
    let mut rig = packed_rig();
    assert_eq!(rig.dev.lock().unwrap().queue_max_sizes().len(), 6, "(2 + 1) queue pairs");
    rig.send_control(&control_message(0, DEVICE_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(0, DEVICE_ADD, 1, &[]), control_message(1, DEVICE_ADD, 1, &[])]);
    rig.send_control(&control_message(0, PORT_READY, 1, &[]));
    assert_eq!(rig.received(), [control_message(0, CONSOLE_PORT, 1, &[]), control_message(0, PORT_OPEN, 1, &[])]);
    // The four control buffers are used: the next lap's, posted, take the rest.
    rig.post_control_buffers();
    rig.send_control(&control_message(1, PORT_READY, 1, &[]));
    assert_eq!(
        rig.received(),
        [control_message(1, PORT_NAME, 1, b"org.test.0"), control_message(1, PORT_OPEN, 1, &[])]
    );
    // The guest opens its ports: control TX wraps into its second lap here.
    rig.send_control(&control_message(0, PORT_OPEN, 1, &[]));
    rig.send_control(&control_message(1, PORT_OPEN, 1, &[]));
    assert!(rig.dev.lock().unwrap().guest_open(1));
    // Six rounds each way on both ports: every data ring goes round three times (TX
    // chains take two slots).
    for round in 0..6u8 {
        for port in 0..2 {
            let out = format!("round {round} to host on port {port}");
            assert_eq!(rig.host_gets(port, out.as_bytes()), out.as_bytes(), "round {round}, port {port}");
            let back = format!("r{round} to guest p{port}");
            assert_eq!(rig.guest_gets(port, back.as_bytes()), back.as_bytes(), "round {round}, port {port}");
        }
    }
    assert!(rig.d.interrupted() && rig.d.status() & status::DEVICE_NEEDS_RESET == 0);
    // Closing port 1 from the guest still goes through on the wrapped control ring.
    rig.send_control(&control_message(1, PORT_OPEN, 0, &[]));
    assert!(!rig.dev.lock().unwrap().guest_open(1));
}
