//! The split ring's hot path through [`Virtqueue`] against virtio-queue's `Queue` called
//! directly, as the devices did before the packed ring: take a one-descriptor chain, read
//! its descriptor, give it back, for 2^20 chains. Ignored (a measurement, not a check):
//! `cargo test -p devices --release --lib queue::bench -- --ignored --nocapture`.

use super::Virtqueue;
use std::time::Instant;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress};

pub(crate) const SIZE: u16 = 256;
const DESC: u64 = 0x1000;
pub(crate) const AVAIL: u64 = 0x3000;
const USED: u64 = 0x4000;
const ROUNDS: u32 = 4096;

fn ring() -> (crate::guest_memory::GuestMemoryMmap, Queue) {
    full_ring(64)
}

/// A 256-entry split ring in 1 MiB of guest memory, every entry a one-descriptor chain of
/// a device-writable buffer of `len` bytes (at most 3 KiB), all of them in the avail ring
/// but not yet published: the measurement sets the avail index.
pub(crate) fn full_ring(len: u32) -> (crate::guest_memory::GuestMemoryMmap, Queue) {
    let mem = crate::guest_memory::untracked(&[(GuestAddress(0), 1 << 20)]);
    for i in 0..u64::from(SIZE) {
        mem.write_obj(0x10000 + i * u64::from(len), GuestAddress(DESC + 16 * i)).unwrap();
        mem.write_obj(len, GuestAddress(DESC + 16 * i + 8)).unwrap();
        mem.write_obj(2u16, GuestAddress(DESC + 16 * i + 12)).unwrap();
        mem.write_obj(i as u16, GuestAddress(AVAIL + 4 + 2 * i)).unwrap();
    }
    let mut q = Queue::new(SIZE).unwrap();
    q.set_size(SIZE);
    q.set_desc_table_address(Some(DESC as u32), Some(0));
    q.set_avail_ring_address(Some(AVAIL as u32), Some(0));
    q.set_used_ring_address(Some(USED as u32), Some(0));
    q.set_ready(true);
    (mem, q)
}

/// Nanoseconds per chain through virtio-queue's `Queue` (`bare`) or [`Virtqueue`].
fn ns_per_chain(bare: bool) -> f64 {
    let (mem, q) = ring();
    let (mut q, mut vq) = if bare { (Some(q), None) } else { (None, Some(Virtqueue::from(q))) };
    let mut bytes = 0u64;
    let t = Instant::now();
    for round in 1..=ROUNDS {
        mem.write_obj((round * u32::from(SIZE)) as u16, GuestAddress(AVAIL + 2)).unwrap();
        if let Some(q) = q.as_mut() {
            while let Some(chain) = q.iter(&mem).unwrap().next() {
                let head = chain.head_index();
                bytes += chain.map(|d| u64::from(d.len())).sum::<u64>();
                q.add_used(&mem, head, 64).unwrap();
            }
            let _ = q.needs_notification(&mem);
        }
        if let Some(vq) = vq.as_mut() {
            while let Some(chain) = vq.iter(&mem).unwrap().next() {
                let head = chain.head_index();
                bytes += chain.map(|d| u64::from(d.len())).sum::<u64>();
                vq.add_used(&mem, head, 64).unwrap();
            }
            let _ = vq.needs_notification(&mem);
        }
    }
    let chains = f64::from(ROUNDS) * f64::from(SIZE);
    assert_eq!(bytes, 64 * chains as u64);
    t.elapsed().as_nanos() as f64 / chains
}

/// The best of seven alternating runs of each (the machine is shared: the minimum is
/// the least disturbed).
#[test]
#[ignore]
fn split_ring_pop_and_add_used() {
    let (mut bare, mut wrapped) = (f64::MAX, f64::MAX);
    for _ in 0..7 {
        bare = bare.min(ns_per_chain(true));
        wrapped = wrapped.min(ns_per_chain(false));
    }
    eprintln!("split ring, best of 7 x 2^20 chains: Queue {bare:.1} ns/chain, Virtqueue {wrapped:.1} ns/chain");
}
