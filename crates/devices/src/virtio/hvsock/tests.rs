//! The device driven as a guest would (through the virtio-mmio registers and split
//! queues of `test_driver`), against real Unix sockets on the host side.

use super::conn::CONN_BUF;
use super::packet::{op, Header, HDR_LEN, HOST_CID, SHUTDOWN_BOTH, SHUTDOWN_SEND, TYPE_STREAM};
use super::*;
use crate::virtio::status;
use crate::virtio::test_driver::TestDriver;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::tempdir::TempDir;

const CID: u64 = 3;
const RX_BUF: u32 = 4096 + HDR_LEN as u32;
const TX_SLOTS: usize = 4;

/// A guest's vsock driver: rx buffers kept posted, packets sent on tx.
struct Guest {
    d: TestDriver,
    dev: Arc<Mutex<HybridVsock>>,
    dir: TempDir,
    /// rx buffer address by the head that carries it now.
    rx: HashMap<u16, u64>,
    tx: Vec<u64>,
    next_tx: usize,
}

fn guest() -> Guest {
    let mut g = guest_with_rx(0);
    g.post_rx(16);
    g
}

fn guest_with_rx(buffers: usize) -> Guest {
    let dir = TempDir::new().unwrap();
    let path = dir.as_path().join("v.sock");
    let (mut d, dev) = TestDriver::new(HybridVsock::new(CID, &path).unwrap());
    d.activate(0, 256);
    let tx = (0..TX_SLOTS).map(|_| d.alloc((HDR_LEN + MAX_PAYLOAD) as u32, 0)).collect();
    let mut g = Guest { d, dev, dir, rx: HashMap::new(), tx, next_tx: 0 };
    g.post_rx(buffers);
    g
}

use super::packet::MAX_PAYLOAD;

impl Guest {
    fn uds(&self) -> std::path::PathBuf {
        self.dir.as_path().join("v.sock")
    }

    fn post_rx(&mut self, n: usize) {
        for _ in 0..n {
            let addr = self.d.alloc(RX_BUF, 0);
            self.repost(addr);
        }
    }

    fn repost(&mut self, addr: u64) {
        let head = self.d.add_chain(RX, &[(addr, RX_BUF, true)]);
        self.rx.insert(head, addr);
    }

    /// A packet from the guest (src = CID, dst = the host), as Linux fills it in.
    fn hdr(&self, op: u16, guest_port: u32, host_port: u32) -> Header {
        Header {
            src_cid: CID,
            dst_cid: HOST_CID,
            src_port: guest_port,
            dst_port: host_port,
            kind: TYPE_STREAM,
            op,
            buf_alloc: 256 << 10,
            ..Header::default()
        }
    }

    fn send(&mut self, mut h: Header, payload: &[u8]) {
        h.len = payload.len() as u32;
        let addr = self.tx[self.next_tx % TX_SLOTS];
        self.next_tx += 1;
        self.d.mem.write_slice(&h.encode(), GuestAddress(addr)).unwrap();
        self.d.mem.write_slice(payload, GuestAddress(addr + HDR_LEN as u64)).unwrap();
        self.d.add_chain(TX, &[(addr, (HDR_LEN + payload.len()) as u32, false)]);
        self.d.notify(TX as u32);
    }

    /// Every packet the device put in rx buffers since the last call; the buffers go back.
    fn recv(&mut self) -> Vec<(Header, Vec<u8>)> {
        self.d.run_events();
        let mut out = Vec::new();
        for (head, len) in self.d.used(RX) {
            let addr = self.rx.remove(&(head as u16)).expect("a posted buffer");
            assert!(len as usize >= HDR_LEN, "every packet has its header");
            let raw = self.d.read_bytes(addr, len as usize);
            let h = Header::parse(raw[..HDR_LEN].try_into().unwrap());
            assert_eq!(h.len as usize, len as usize - HDR_LEN, "used length is header + payload");
            out.push((h, raw[HDR_LEN..].to_vec()));
            self.repost(addr);
        }
        self.d.notify(RX as u32);
        out
    }

    fn recv_one(&mut self) -> (Header, Vec<u8>) {
        let mut got = self.recv();
        assert_eq!(got.len(), 1, "{got:?}");
        got.remove(0)
    }

    /// A guest-initiated connection to a host listener on `port`: the device answers.
    fn connect(&mut self, guest_port: u32, port: u32) -> (std::os::unix::net::UnixListener, UnixStream) {
        let listener = UnixListener::bind(self.dev.lock().unwrap().listener_path(port)).unwrap();
        self.send(self.hdr(op::REQUEST, guest_port, port), &[]);
        let (h, _) = self.recv_one();
        assert_eq!(
            (h.op, h.src_cid, h.dst_cid, h.src_port, h.dst_port),
            (op::RESPONSE, HOST_CID, CID, port, guest_port)
        );
        assert_eq!(h.buf_alloc, CONN_BUF);
        let (peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (listener, peer)
    }

    /// A host-initiated connection to guest port `port`: returns the host stream and
    /// the device's host port, after the guest accepted.
    fn host_connect(&mut self, port: u32) -> (UnixStream, u32) {
        let mut s = UnixStream::connect(self.uds()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(format!("CONNECT {port}\n").as_bytes()).unwrap();
        let (h, _) = self.recv_one();
        assert_eq!((h.op, h.src_cid, h.dst_cid, h.dst_port), (op::REQUEST, HOST_CID, CID, port));
        assert!(h.src_port >= host::FIRST_HOST_PORT);
        self.send(self.hdr(op::RESPONSE, port, h.src_port), &[]);
        let mut line = Vec::new();
        let mut byte = [0u8];
        while byte[0] != b'\n' {
            s.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        assert_eq!(line, format!("OK {}\n", h.src_port).into_bytes());
        (s, h.src_port)
    }
}

#[test]
fn identifies_as_vsock_with_the_cid_in_config_space() {
    let mut g = guest();
    assert_eq!(g.d.read_reg(0x8), VIRTIO_ID_VSOCK);
    assert_eq!(g.d.device_features(), VIRTIO_F_VERSION_1);
    assert_eq!(u64::from(g.d.read_reg(0x100)) | u64::from(g.d.read_reg(0x104)) << 32, CID);
    assert!(matches!(HybridVsock::new(2, &g.dir.as_path().join("x")), Err(HybridVsockError::Cid(2))));
    // The socket path is taken: a second device cannot listen there.
    assert!(matches!(HybridVsock::new(CID, &g.uds()), Err(HybridVsockError::Listen { .. })));
}

#[test]
fn guest_connects_and_data_flows_both_ways() {
    let mut g = guest();
    let (_l, mut peer) = g.connect(1025, 52);
    g.send(g.hdr(op::RW, 1025, 52), b"hello host");
    let mut got = [0u8; 10];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello host");
    peer.write_all(b"hello guest").unwrap();
    let (h, data) = g.recv_one();
    assert_eq!((h.op, h.src_port, h.dst_port, h.len), (op::RW, 52, 1025, 11));
    assert_eq!(data, b"hello guest");
    assert_eq!(h.fwd_cnt, 10, "the packet tells the guest what the host took");
    assert_eq!(g.dev.lock().unwrap().connections(), 1);
}

#[test]
fn a_guest_connecting_where_nothing_listens_is_reset() {
    let mut g = guest();
    g.send(g.hdr(op::REQUEST, 1025, 99), &[]);
    let (h, _) = g.recv_one();
    assert_eq!((h.op, h.src_port, h.dst_port), (op::RST, 99, 1025));
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
}

#[test]
fn host_connects_with_connect_ok_and_data_flows_both_ways() {
    let mut g = guest();
    let (mut s, host_port) = g.host_connect(1234);
    s.write_all(b"ping").unwrap();
    let (h, data) = g.recv_one();
    assert_eq!((h.op, h.src_port, h.dst_port), (op::RW, host_port, 1234));
    assert_eq!(data, b"ping");
    g.send(g.hdr(op::RW, 1234, host_port), b"pong");
    let mut got = [0u8; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong");
}

#[test]
fn a_guest_refusing_a_host_connection_closes_the_host_stream() {
    let mut g = guest();
    let mut s = UnixStream::connect(g.uds()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"CONNECT 7\n").unwrap();
    let (h, _) = g.recv_one();
    assert_eq!(h.op, op::REQUEST);
    g.send(g.hdr(op::RST, 7, h.src_port), &[]);
    assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0, "EOF");
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
}

#[test]
fn bad_connect_lines_close_the_stream_and_ask_nothing_of_the_guest() {
    let mut g = guest();
    for line in [&b"HELLO 5\n"[..], b"CONNECT x\n", &[b'9'; 40]] {
        let mut s = UnixStream::connect(g.uds()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The overlong line is cut off after its first 32 bytes: the rest may find the
        // stream closed.
        let _ = s.write_all(line);
        assert!(g.recv().is_empty());
        match s.read(&mut [0u8; 8]) {
            Ok(n) => assert_eq!(n, 0, "closed"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    }
}

#[test]
fn the_host_sends_only_what_the_guest_credit_allows_and_asks_for_more() {
    let mut g = guest();
    let (mut s, hp) = g.host_connect(80);
    // The guest's window: 10 bytes (its RESPONSE gave 256 KiB; this packet narrows it).
    g.send(Header { buf_alloc: 10, ..g.hdr(op::CREDIT_UPDATE, 80, hp) }, &[]);
    s.write_all(&[7u8; 100]).unwrap();
    let got = g.recv();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.op, got[0].1.len()), (op::RW, 10));
    assert_eq!(got[1].0.op, op::CREDIT_REQUEST);
    assert!(g.recv().is_empty(), "nothing more until the guest consumes");
    g.send(Header { buf_alloc: 10, fwd_cnt: 10, ..g.hdr(op::CREDIT_UPDATE, 80, hp) }, &[]);
    let got = g.recv();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.op, got[0].1.as_slice()), (op::RW, &[7u8; 10][..]), "the next 10 bytes");
    assert_eq!(got[1].0.op, op::CREDIT_REQUEST, "asked again once the new window is used");
}

#[test]
fn the_guest_is_sent_a_credit_update_as_the_host_consumes() {
    let mut g = guest();
    let (_l, mut peer) = g.connect(2000, 53);
    let chunk = vec![0x5a; MAX_PAYLOAD];
    let mut updates = Vec::new();
    for _ in 0..(CONN_BUF as usize / MAX_PAYLOAD) {
        g.send(g.hdr(op::RW, 2000, 53), &chunk);
        let mut sink = vec![0u8; MAX_PAYLOAD];
        peer.read_exact(&mut sink).unwrap();
        g.d.run_events();
        updates.extend(g.recv().into_iter().filter(|(h, _)| h.op == op::CREDIT_UPDATE).map(|(h, _)| h.fwd_cnt));
    }
    assert!(!updates.is_empty(), "a guest that used its whole window hears the host took it");
    assert!(updates.iter().all(|f| (CONN_BUF / 2..=CONN_BUF).contains(f)), "{updates:?}");
}

#[test]
fn a_credit_request_is_answered() {
    let mut g = guest();
    let (_l, _peer) = g.connect(2001, 54);
    g.send(g.hdr(op::CREDIT_REQUEST, 2001, 54), &[]);
    let (h, _) = g.recv_one();
    assert_eq!((h.op, h.buf_alloc, h.fwd_cnt), (op::CREDIT_UPDATE, CONN_BUF, 0));
}

/// A host peer that never reads cannot make the device hold more than the window it
/// gave: a guest sending beyond it is reset.
#[test]
fn a_slow_host_peer_bounds_what_the_device_buffers() {
    let mut g = guest();
    let (_l, _peer) = g.connect(3000, 55);
    let chunk = vec![1u8; MAX_PAYLOAD];
    let mut reset = false;
    for _ in 0..(2 * CONN_BUF as usize / MAX_PAYLOAD) {
        g.send(g.hdr(op::RW, 3000, 55), &chunk);
        assert!(g.dev.lock().unwrap().buffered() <= CONN_BUF as usize);
        if g.recv().iter().any(|(h, _)| h.op == op::RST) {
            reset = true;
            break;
        }
    }
    assert!(reset, "the guest overran the window it was given");
    assert_eq!(g.dev.lock().unwrap().buffered(), 0);
}

#[test]
fn the_guest_closing_is_acknowledged_with_rst_and_the_host_sees_eof() {
    let mut g = guest();
    let (_l, mut peer) = g.connect(1026, 52);
    g.send(g.hdr(op::RW, 1026, 52), b"last words");
    g.send(Header { flags: SHUTDOWN_BOTH, ..g.hdr(op::SHUTDOWN, 1026, 52) }, &[]);
    let (h, _) = g.recv_one();
    assert_eq!(h.op, op::RST);
    let mut all = Vec::new();
    peer.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"last words", "data before the close is delivered, then EOF");
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
}

#[test]
fn a_half_close_either_way_keeps_the_other_direction() {
    let mut g = guest();
    let (_l, mut peer) = g.connect(1027, 52);
    // The guest will send no more: the host reads EOF but can still answer.
    g.send(Header { flags: SHUTDOWN_SEND, ..g.hdr(op::SHUTDOWN, 1027, 52) }, &[]);
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0);
    peer.write_all(b"reply").unwrap();
    let (h, data) = g.recv_one();
    assert_eq!((h.op, data.as_slice()), (op::RW, &b"reply"[..]));
    // The host closes its whole end: the guest is told both directions are shut (as
    // Firecracker tells it) and answers with its RST.
    drop(peer);
    let (h, _) = g.recv_one();
    assert_eq!((h.op, h.flags), (op::SHUTDOWN, SHUTDOWN_BOTH));
    g.send(g.hdr(op::RST, 1027, 52), &[]);
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
}

/// A host peer that only shuts its sending side leaves the guest able to send (the guest
/// is told SHUTDOWN_SEND); when it then closes the rest the guest is told both, and a
/// guest that never answers with its RST has the connection killed after CLOSE_TIMEOUT
/// (Firecracker's 2 s), an RST telling it so.
#[test]
fn a_guest_that_does_not_finish_a_host_close_is_reset_after_the_timeout() {
    let killed = metrics::VSOCK.conns_killed.total();
    let mut g = guest();
    let (_l, mut peer) = g.connect(1029, 52);
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let (h, _) = g.recv_one();
    assert_eq!((h.op, h.flags), (op::SHUTDOWN, SHUTDOWN_SEND));
    g.send(g.hdr(op::RW, 1029, 52), b"still");
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still", "the guest's direction stays open");
    let told = std::time::Instant::now();
    drop(peer);
    let (h, _) = g.recv_one();
    assert_eq!((h.op, h.flags), (op::SHUTDOWN, SHUTDOWN_BOTH));
    // The guest says nothing: an RST comes once the timeout is over, not before.
    let mut rst = Vec::new();
    while rst.is_empty() && told.elapsed() < CLOSE_TIMEOUT * 3 {
        std::thread::sleep(Duration::from_millis(50));
        rst = g.recv();
    }
    assert!(told.elapsed() >= CLOSE_TIMEOUT, "killed early, after {:?}", told.elapsed());
    assert_eq!(rst.len(), 1, "{rst:?}");
    assert_eq!((rst[0].0.op, rst[0].0.src_port, rst[0].0.dst_port), (op::RST, 52, 1029));
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
    assert!(metrics::VSOCK.conns_killed.total() > killed);
}

/// A guest that answers the host's close at once is not reset again when the timer fires.
#[test]
fn a_guest_that_finishes_a_host_close_is_left_alone() {
    let mut g = guest();
    let (_l, peer) = g.connect(1030, 52);
    drop(peer);
    let (h, _) = g.recv_one();
    assert_eq!((h.op, h.flags), (op::SHUTDOWN, SHUTDOWN_BOTH));
    g.send(g.hdr(op::RST, 1030, 52), &[]);
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
    std::thread::sleep(CLOSE_TIMEOUT + Duration::from_millis(200));
    assert!(g.recv().is_empty(), "nothing more for the guest");
}

#[test]
fn packets_for_unknown_connections_are_reset_and_foreign_ones_dropped() {
    let mut g = guest();
    g.send(g.hdr(op::RW, 1, 2), b"x");
    assert_eq!(g.recv_one().0.op, op::RST);
    g.send(g.hdr(op::RST, 1, 2), &[]);
    assert!(g.recv().is_empty(), "an RST is never answered");
    g.send(Header { src_cid: 9, ..g.hdr(op::REQUEST, 1, 2) }, &[]);
    g.send(Header { dst_cid: 7, ..g.hdr(op::REQUEST, 1, 2) }, &[]);
    assert!(g.recv().is_empty());
    g.send(Header { kind: 2, ..g.hdr(op::REQUEST, 1, 2) }, &[]);
    assert_eq!(g.recv_one().0.op, op::RST, "SEQPACKET is not offered");
    g.send(Header { op: 99, ..g.hdr(0, 1, 2) }, &[]);
    assert_eq!(g.recv_one().0.op, op::RST);
}

#[test]
fn malformed_chains_are_consumed_without_harm() {
    let mut g = guest();
    // Shorter than a header; a header promising more than the chain holds; a payload
    // beyond the limit; a device-writable tx buffer; a buffer outside memory.
    let a = g.d.alloc_with(&[0u8; 20]);
    g.d.add_chain(TX, &[(a, 20, false)]);
    let h = Header { len: 100, ..g.hdr(op::RW, 1, 2) };
    let b = g.d.alloc_with(&h.encode());
    g.d.add_chain(TX, &[(b, HDR_LEN as u32, false)]);
    let h = Header { len: (MAX_PAYLOAD + 1) as u32, ..g.hdr(op::RW, 1, 2) };
    let c = g.d.alloc_with(&h.encode());
    g.d.add_chain(TX, &[(c, HDR_LEN as u32, false)]);
    g.d.add_chain(TX, &[(c, HDR_LEN as u32, true)]);
    g.d.add_chain(TX, &[(crate::virtio::test_driver::MEM_SIZE - 8, 64, false)]);
    g.d.notify(TX as u32);
    assert_eq!(g.d.used(TX).len(), 5);
    assert!(g.recv().is_empty());
    // Still serving.
    let (_l, _peer) = g.connect(5, 6);
}

#[test]
fn an_rx_buffer_too_small_for_a_header_is_returned_empty() {
    let mut g = guest_with_rx(0);
    let tiny = g.d.alloc(8, 0);
    let tiny_head = g.d.add_chain(RX, &[(tiny, 8, true)]);
    let good = g.d.alloc(RX_BUF, 0);
    let good_head = g.d.add_chain(RX, &[(good, RX_BUF, true)]);
    let _listener = UnixListener::bind(g.dev.lock().unwrap().listener_path(11)).unwrap();
    g.send(g.hdr(op::REQUEST, 10, 11), &[]);
    assert_eq!(g.d.used(RX), vec![(u32::from(tiny_head), 0), (u32::from(good_head), HDR_LEN as u32)]);
    let raw = g.d.read_bytes(good, HDR_LEN);
    assert_eq!(Header::parse(raw[..].try_into().unwrap()).op, op::RESPONSE, "the packet went to the next buffer");
}

#[test]
fn a_corrupt_tx_ring_stops_the_device_until_reset() {
    let mut g = guest();
    g.d.set_avail_idx(TX, 1000);
    g.d.notify(TX as u32);
    assert_ne!(g.d.status() & status::DEVICE_NEEDS_RESET, 0);
}

#[test]
fn a_device_reset_closes_every_host_stream() {
    let mut g = guest();
    let (_l, mut peer) = g.connect(1, 50);
    let (mut s, _) = g.host_connect(2);
    g.d.reset();
    g.d.run_events();
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0);
    assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
}

#[test]
fn a_restored_device_sends_a_transport_reset_and_keeps_serving() {
    let mut g = guest();
    let event = g.d.alloc(8, 0xee);
    g.d.add_chain(EVENT, &[(event, 8, true)]);
    g.d.notify(EVENT as u32);
    assert!(g.d.used(EVENT).is_empty(), "no event before a restore");
    let state = g.d.save();
    drop(g.dev);
    let dir = TempDir::new().unwrap();
    let moved = dir.as_path().join("moved.sock");
    let (mut r, dev) = g.d.restored(HybridVsock::new(CID, &moved).unwrap(), state).unwrap();
    assert_eq!(r.used(EVENT).len(), 1);
    assert_eq!(r.read_bytes(event, 8), [0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee], "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET");
    assert_eq!(dev.lock().unwrap().uds_path(), moved.as_path());
    let state = r.save();
    let crate::state::DeviceState::Virtio(saved) = state else { panic!("a virtio transport's state") };
    assert_eq!(
        saved.device,
        VirtioState::HybridVsock(HybridVsockState { cid: CID, uds_path: moved.clone() }),
        "the listener's path and the CID are saved"
    );
}

#[test]
fn a_state_of_another_kind_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut dev = HybridVsock::new(CID, &dir.as_path().join("s")).unwrap();
    assert!(matches!(dev.restore(VirtioState::Rng), Err(StateError::KindMismatch { .. })));
}

#[test]
fn many_connect_close_cycles_leave_nothing_behind() {
    let mut g = guest();
    let listener = UnixListener::bind(g.dev.lock().unwrap().listener_path(9)).unwrap();
    for i in 0..200u32 {
        g.send(g.hdr(op::REQUEST, 5000 + i, 9), &[]);
        assert_eq!(g.recv_one().0.op, op::RESPONSE);
        let (peer, _) = listener.accept().unwrap();
        drop(peer);
        let (h, _) = g.recv_one();
        assert_eq!((h.op, h.flags), (op::SHUTDOWN, SHUTDOWN_BOTH), "the host closed its whole end");
        g.send(Header { flags: SHUTDOWN_BOTH, ..g.hdr(op::SHUTDOWN, 5000 + i, 9) }, &[]);
        assert_eq!(g.recv_one().0.op, op::RST);
    }
    assert_eq!(g.dev.lock().unwrap().connections(), 0);
}

/// A host listener that does not accept, its backlog full: the guest's connection is
/// refused at once, and the device thread (every device's) is not held.
#[test]
fn a_host_listener_with_a_full_backlog_refuses_without_blocking() {
    let mut g = guest();
    let path = g.dev.lock().unwrap().listener_path(77);
    // std listens with a long backlog; this one holds a single pending connection.
    // SAFETY: socket() takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: `fd` is the new socket, owned by nothing else.
    let listener = unsafe { <UnixListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut addr = libc::sockaddr_un { sun_family: libc::AF_UNIX as libc::sa_family_t, sun_path: [0; 108] };
    for (to, &from) in addr.sun_path.iter_mut().zip(path.as_os_str().as_encoded_bytes()) {
        *to = from as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: a valid sockaddr_un of the length given.
    assert_eq!(unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) }, 0);
    // SAFETY: no pointers.
    assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
    let mut refused = false;
    for port in 0..4 {
        g.send(g.hdr(op::REQUEST, 3000 + port, 77), &[]);
        match g.recv_one().0.op {
            op::RESPONSE => {}
            op::RST => {
                refused = true;
                break;
            }
            other => panic!("op {other}"),
        }
    }
    assert!(refused, "a full backlog refuses the guest's connection");
    drop(listener);
}

/// Firecracker's `vsock` section moves with the traffic: the counters are the process's,
/// shared with the tests beside this one, so each check is a lower bound on what this
/// test adds.
#[test]
fn the_vsock_metrics_count_packets_bytes_and_connections() {
    let m = &metrics::VSOCK;
    let read = || {
        [
            &m.tx_packets_count,
            &m.rx_packets_count,
            &m.tx_bytes_count,
            &m.rx_bytes_count,
            &m.conns_added,
            &m.conns_removed,
            &m.tx_queue_event_count,
            &m.cfg_fails,
        ]
        .map(|c| c.total())
    };
    let before = read();
    let mut g = guest();
    let (_l, mut peer) = g.connect(1027, 52);
    g.send(g.hdr(op::RW, 1027, 52), b"twelve bytes");
    let mut got = [0u8; 12];
    peer.read_exact(&mut got).unwrap();
    peer.write_all(b"seven b").unwrap();
    assert_eq!(g.recv_one().1, b"seven b");
    g.send(Header { flags: SHUTDOWN_BOTH, ..g.hdr(op::SHUTDOWN, 1027, 52) }, &[]);
    assert_eq!(g.recv_one().0.op, op::RST);
    g.d.write_reg(0x100, 1); // the config space (guest_cid) is read-only
    let added: Vec<u64> = read().iter().zip(before).map(|(a, b)| a - b).collect();
    // REQUEST, RW, SHUTDOWN from the guest; RESPONSE, RW, RST to it.
    assert!(added[0] >= 3 && added[1] >= 3, "packets {added:?}");
    assert!(added[2] >= 12 && added[3] >= 7, "bytes {added:?}");
    assert!(added[4] >= 1 && added[5] >= 1, "connections {added:?}");
    assert!(added[6] >= 3, "tx kicks {added:?}");
    assert!(added[7] >= 1, "config write {added:?}");
}
