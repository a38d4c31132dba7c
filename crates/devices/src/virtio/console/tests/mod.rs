//! The one-port console through the driver-side harness: queues, flow
//! control and malformed rings here, each chardev backend in `backends`.

mod backends;

use super::*;
use crate::chardev::{ChardevBackend, ChardevError};
use crate::virtio::status;
use crate::virtio::test_driver::{TestDriver, MEM_SIZE, VIRTQ_DESC_F_NEXT};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vmm_sys_util::tempdir::TempDir;

const RX: usize = RX_QUEUE;
const TX: usize = TX_QUEUE;

fn console(chardev: Chardev) -> (TestDriver, Arc<Mutex<Console>>) {
    let (mut d, dev) = TestDriver::new(Console::new(chardev).unwrap());
    d.activate(0, 16);
    (d, dev)
}

/// A console whose chardev is one end of a socketpair; the test is the peer.
fn with_peer() -> (TestDriver, Arc<Mutex<Console>>, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    let input = ours.try_clone().unwrap();
    let chardev = Chardev::from_fds("test", Some(input.into()), Some(ours.into())).unwrap();
    peer.set_nonblocking(true).unwrap();
    let (d, dev) = console(chardev);
    (d, dev, peer)
}

fn temp_dir() -> TempDir {
    TempDir::new_with_prefix("/tmp/microvm-console-").unwrap()
}

/// Everything `r` (non-blocking) has to read now.
fn drain(r: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return out,
        }
    }
}

/// Posts `data` as a one-buffer transmit chain and notifies.
fn send(d: &mut TestDriver, data: &[u8]) -> u32 {
    let a = d.alloc_with(data);
    let head = d.add_chain(TX, &[(a, data.len() as u32, false)]);
    d.notify(TX as u32);
    u32::from(head)
}

/// Receive buffers the test posted, by head index.
#[derive(Default)]
struct RxBuffers {
    addrs: Vec<(u32, u64)>,
    received: Vec<u8>,
    lens: Vec<u32>,
}

impl RxBuffers {
    /// Posts `count` receive buffers of `len` bytes (without notifying).
    fn post(&mut self, d: &mut TestDriver, count: usize, len: u32) {
        for _ in 0..count {
            let a = d.alloc(len, 0xee);
            let head = d.add_chain(RX, &[(a, len, true)]);
            self.addrs.push((u32::from(head), a));
        }
    }

    /// Appends what the device put in used buffers since the last call.
    fn collect(&mut self, d: &mut TestDriver) {
        for (head, len) in d.used(RX) {
            let pos = self.addrs.iter().position(|&(h, _)| h == head).expect("used head was posted");
            let (_, addr) = self.addrs.remove(pos);
            self.received.extend(d.read_bytes(addr, len as usize));
            self.lens.push(len);
        }
    }
}

/// Runs the event loop until `done` holds; false after 5 s.
fn wait_for(d: &mut TestDriver, mut done: impl FnMut(&mut TestDriver) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        d.run_events();
        if done(d) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads from `r` (non-blocking) until `len` bytes came or 5 s passed.
fn read_exactly(r: &mut impl Read, len: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < len && Instant::now() < deadline {
        out.extend(drain(r));
        std::thread::sleep(Duration::from_millis(2));
    }
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

// ---- Identity ----

#[test]
fn identifies_as_a_console_with_two_queues_and_no_features() {
    let chardev = Chardev::open("n", &ChardevBackend::Null).unwrap();
    let (mut d, _) = TestDriver::new(Console::new(chardev).unwrap());
    assert_eq!(d.read_reg(0x8), VIRTIO_ID_CONSOLE);
    assert_eq!(d.device_features(), VIRTIO_F_VERSION_1, "no SIZE, MULTIPORT or EMERG_WRITE");
    for q in 0..2 {
        d.write_reg(0x30, q);
        assert_eq!(d.read_reg(0x34), u32::from(QUEUE_SIZE));
    }
    d.write_reg(0x30, 2);
    assert_eq!(d.read_reg(0x34), 0, "no control queues");
    for offset in (0x100..0x110).step_by(4) {
        assert_eq!(d.read_reg(offset), 0);
    }
    assert_eq!(d.negotiate(1 << 1) & status::FEATURES_OK, 0, "MULTIPORT refused");
}

#[test]
fn null_backend_drops_output_without_holding_the_guest() {
    let (mut d, dev) = console(Chardev::open("n", &ChardevBackend::Null).unwrap());
    let head = send(&mut d, b"into the void");
    assert_eq!(d.used(TX), vec![(head, 0)]);
    assert_eq!(dev.lock().unwrap().chardev().dropped_output(), 13);
}

// ---- Transmit ----

#[test]
fn transmitted_text_reaches_the_peer() {
    let (mut d, _, mut peer) = with_peer();
    let a = d.alloc_with(b"hello ");
    let b = d.alloc_with(b"world\n");
    let head = d.add_chain(TX, &[(a, 6, false), (b, 6, false)]);
    d.notify(TX as u32);
    assert_eq!(d.used(TX), vec![(u32::from(head), 0)]);
    assert!(d.interrupted());
    assert_eq!(drain(&mut peer), b"hello world\n");
}

#[test]
fn writable_buffers_of_a_transmit_chain_are_not_sent() {
    let (mut d, _, mut peer) = with_peer();
    let a = d.alloc_with(b"sent");
    let b = d.alloc_with(b"NOT!");
    d.add_chain(TX, &[(a, 4, false), (b, 4, true)]);
    d.notify(TX as u32);
    assert_eq!(d.used(TX).len(), 1);
    assert_eq!(drain(&mut peer), b"sent");
}

#[test]
fn many_chains_raise_one_interrupt() {
    let (mut d, _, mut peer) = with_peer();
    for text in [b"a", b"b", b"c", b"d"] {
        let a = d.alloc_with(text);
        d.add_chain(TX, &[(a, 1, false)]);
    }
    d.notify(TX as u32);
    assert_eq!(d.used(TX).len(), 4);
    assert_eq!(d.irq.read().unwrap(), 1, "one interrupt for the batch");
    assert_eq!(drain(&mut peer), b"abcd");
}

#[test]
fn no_interrupt_when_the_driver_suppresses_them() {
    let (mut d, _, mut peer) = with_peer();
    d.set_avail_flags(TX, 1);
    let head = send(&mut d, b"quiet");
    assert_eq!(d.used(TX), vec![(head, 0)]);
    assert!(!d.interrupted());
    assert_eq!(drain(&mut peer), b"quiet");
}

#[test]
fn a_slow_peer_holds_output_back_and_loses_nothing() {
    let (mut d, dev, mut peer) = with_peer();
    const CHAIN: usize = 128 << 10;
    let data = pattern(8 * CHAIN);
    for part in data.chunks(CHAIN) {
        let a = d.alloc_with(part);
        d.add_chain(TX, &[(a, CHAIN as u32, false)]);
    }
    d.notify(TX as u32);
    let mut completed = d.used(TX).len();
    assert!(completed < 8, "a peer that does not read holds the output back");
    assert_eq!(dev.lock().unwrap().chardev().pending_output(), crate::chardev::OUTPUT_BUFFER);

    let mut got = Vec::new();
    assert!(wait_for(&mut d, |d| {
        got.extend(drain(&mut peer));
        completed += d.used(TX).len();
        got.len() == data.len() && completed == 8
    }));
    assert!(got == data, "every byte, in order");
    assert_eq!(dev.lock().unwrap().chardev().dropped_output(), 0);
}

#[test]
fn transmit_buffer_outside_guest_memory_completes_and_the_device_goes_on() {
    let (mut d, _, mut peer) = with_peer();
    let head = d.add_chain(TX, &[(MEM_SIZE - 4, 64, false)]);
    d.notify(TX as u32);
    assert_eq!(d.used(TX), vec![(u32::from(head), 0)]);
    assert!(drain(&mut peer).is_empty());
    send(&mut d, b"still here");
    assert_eq!(drain(&mut peer), b"still here");
}

#[test]
fn a_looping_transmit_chain_is_cut_off() {
    let (mut d, _, mut peer) = with_peer();
    let a = d.alloc_with(b"ab");
    // Descriptor 0 points to itself forever.
    d.write_desc(TX, 0, a, 2, VIRTQ_DESC_F_NEXT, 0);
    d.publish(TX, 0);
    d.notify(TX as u32);
    assert_eq!(d.used(TX).len(), 1);
    let sent = drain(&mut peer);
    assert!(sent.len() <= 2 * 16, "at most queue-size descriptors");
    assert!(sent.chunks(2).all(|c| c == b"ab"));
}

// ---- Receive ----

#[test]
fn peer_input_reaches_the_guest() {
    let (mut d, _, mut peer) = with_peer();
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 1, 64);
    d.notify(RX as u32);
    assert!(d.used(RX).is_empty());
    peer.write_all(b"ls\r").unwrap();
    d.run_events();
    rx.collect(&mut d);
    assert_eq!(rx.received, b"ls\r");
    assert!(d.interrupted());
}

#[test]
fn input_without_receive_buffers_waits_and_none_is_lost() {
    let (mut d, dev, mut peer) = with_peer();
    peer.write_all(b"first ").unwrap();
    d.run_events();
    peer.write_all(b"second").unwrap();
    d.run_events();
    assert!(d.used(RX).is_empty());
    assert!(!dev.lock().unwrap().wants_input(), "input not watched while the guest has no buffers");

    let mut rx = RxBuffers::default();
    rx.post(&mut d, 2, 5);
    d.notify(RX as u32);
    rx.collect(&mut d);
    assert_eq!(rx.received, b"first ");
    rx.post(&mut d, 2, 5);
    d.notify(RX as u32);
    rx.collect(&mut d);
    assert_eq!(rx.received, b"first second");
}

#[test]
fn input_larger_than_a_buffer_spans_several() {
    let (mut d, _, mut peer) = with_peer();
    let data = pattern(10000);
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 3, 4096);
    d.notify(RX as u32);
    peer.write_all(&data).unwrap();
    assert!(wait_for(&mut d, |d| {
        rx.collect(d);
        rx.received.len() == data.len()
    }));
    assert_eq!(rx.received, data);
    assert_eq!(rx.lens, vec![4096, 4096, 1808]);
}

#[test]
fn receive_buffers_the_device_cannot_write_lose_no_input() {
    let (mut d, _, mut peer) = with_peer();
    let outside = d.add_chain(RX, &[(MEM_SIZE - 2, 64, true)]);
    let a = d.alloc(16, 0);
    let read_only = d.add_chain(RX, &[(a, 16, false)]);
    d.notify(RX as u32);
    peer.write_all(b"abc").unwrap();
    d.run_events();
    assert_eq!(d.used(RX), vec![(u32::from(outside), 0), (u32::from(read_only), 0)]);
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 1, 16);
    d.notify(RX as u32);
    rx.collect(&mut d);
    assert_eq!(rx.received, b"abc");
}

// ---- Malformed rings ----

#[test]
fn an_avail_index_that_jumps_stops_the_device_and_asks_for_reset() {
    let (mut d, _, mut peer) = with_peer();
    d.set_avail_idx(TX, 1000);
    d.notify(TX as u32);
    assert!(d.used(TX).is_empty());
    assert_ne!(d.interrupt.status() & 2, 0, "config-change interrupt");
    assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
    // Nothing is served any more: input stays with the peer.
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 1, 16);
    d.notify(RX as u32);
    peer.write_all(b"x").unwrap();
    d.run_events();
    assert!(d.used(RX).is_empty());
}

#[test]
fn a_jumped_avail_index_is_a_typed_fault_with_its_cause() {
    use crate::virtio::queue::bench_tests::{full_ring, AVAIL};
    use std::error::Error;
    let (mem, queue) = full_ring(64);
    let mut queue = Virtqueue::from(queue);
    mem.write_obj(1000u16, vm_memory::GuestAddress(AVAIL + 2)).unwrap();
    let fault = next_chain(&mem, &mut queue).err().expect("a jumped avail index was served");
    assert!(matches!(fault, QueueFault::Avail(_)), "{fault:?}");
    // The line the device logs, as before the fault was typed; virtio-queue's error under it.
    assert!(fault.to_string().starts_with("bad avail ring ("), "{fault}");
    assert!(fault.source().is_some(), "{fault:?}");
}

#[test]
fn a_head_index_beyond_the_queue_stops_the_device() {
    let (mut d, _, _peer) = with_peer();
    d.publish(TX, 200);
    d.notify(TX as u32);
    assert!(d.used(TX).is_empty());
    assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
}

#[test]
fn reset_keeps_input_already_read_and_the_device_works_again() {
    let (mut d, _, mut peer) = with_peer();
    peer.write_all(b"early").unwrap();
    d.run_events();
    d.write_reg(0x70, 0);
    assert_eq!(d.status(), 0);
    // A notify between reset and re-activation neither spins nor serves.
    d.notify(TX as u32);
    d.notify(RX as u32);
    d.activate(0, 16);
    let mut rx = RxBuffers::default();
    rx.post(&mut d, 1, 16);
    d.notify(RX as u32);
    rx.collect(&mut d);
    assert_eq!(rx.received, b"early");
    send(&mut d, b"after");
    assert_eq!(drain(&mut peer), b"after");
}

mod state;
