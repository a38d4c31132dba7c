//! `rx::deliver` on its own, without the tap or the event loop: a broken ring's typed
//! fault, and the receive path's own cost per frame: a 1514-byte frame (its virtio-net
//! header first) into one 2 KiB buffer of a full 256-entry ring, 2^20 times, each emptied
//! ring also taking `wait_for_buffers`. The measurement is ignored (not a check); for a
//! change of the data path's types, compare it before and after:
//! `cargo test -p devices --release --lib rx_tests::deliver -- --ignored --nocapture`
//! (on a shared machine, count instructions instead: `valgrind --tool=callgrind` on the
//! test binary with `rx_tests::deliver --ignored`).

use super::rx::{self, Delivery, Scratch};
use super::tap::VNET_HDR_LEN;
use crate::virtio::queue::bench_tests::{full_ring, AVAIL, SIZE};
use crate::virtio::queue::Virtqueue;
use std::time::Instant;
use vm_memory::{Bytes, GuestAddress};

const ROUNDS: u32 = 4096;

/// Nanoseconds per frame delivered.
fn ns_per_frame() -> f64 {
    let (mem, queue) = full_ring(2048);
    let mut queue = Virtqueue::from(queue);
    let mut frame = vec![0x5a_u8; VNET_HDR_LEN + 1514];
    let (mut scratch, mut malformed) = (Scratch::default(), 0);
    let mut delivered = 0u64;
    let t = Instant::now();
    for round in 1..=ROUNDS {
        mem.write_obj((round * u32::from(SIZE)) as u16, GuestAddress(AVAIL + 2)).unwrap();
        loop {
            match rx::deliver(&mem, &mut queue, &mut frame, true, &mut scratch, &mut malformed) {
                Delivery::Delivered => delivered += 1,
                Delivery::NoBuffers { seen_avail } => {
                    assert!(!rx::wait_for_buffers(&mem, &mut queue, seen_avail).unwrap());
                    break;
                }
                Delivery::TooBig { .. } | Delivery::Broken(_) => panic!("the ring broke"),
            }
        }
    }
    let frames = f64::from(ROUNDS) * f64::from(SIZE);
    assert_eq!((delivered, malformed), (frames as u64, 0));
    t.elapsed().as_nanos() as f64 / frames
}

/// The best of seven runs (the machine is shared: the minimum is the least disturbed).
#[test]
#[ignore]
fn deliver_a_frame_into_a_full_ring() {
    let best = (0..7).map(|_| ns_per_frame()).fold(f64::MAX, f64::min);
    println!("BENCH net rx::deliver, best of 7 x 2^20 frames: {best:.1} ns/frame");
}

/// A ring the guest broke is one typed fault, with virtio-queue's error kept as its source
/// and the text the device logs unchanged.
#[test]
fn a_broken_rx_ring_is_a_typed_fault_with_its_cause() {
    use super::fault::QueueFault;
    use std::error::Error;
    let (mem, queue) = full_ring(2048);
    let mut queue = Virtqueue::from(queue);
    // An avail index more than a ring ahead of the device's.
    mem.write_obj(1000u16, GuestAddress(AVAIL + 2)).unwrap();
    let mut frame = vec![0u8; VNET_HDR_LEN + 60];
    let (mut scratch, mut malformed) = (Scratch::default(), 0);
    let Delivery::Broken(fault) = rx::deliver(&mem, &mut queue, &mut frame, true, &mut scratch, &mut malformed) else {
        panic!("a jumped avail index was served");
    };
    assert!(matches!(*fault, QueueFault::RxAvail(_)), "{fault:?}");
    assert!(fault.to_string().starts_with("bad RX avail ring ("), "{fault}");
    assert!(fault.source().is_some(), "{fault:?}");
}

/// `deliver` runs once per frame: its answer stays two words, returned in registers, as the
/// fault is boxed (made once in a device's life) rather than carried inline.
#[test]
fn a_delivery_is_two_words() {
    assert_eq!(std::mem::size_of::<Delivery>(), 2 * std::mem::size_of::<usize>());
}
