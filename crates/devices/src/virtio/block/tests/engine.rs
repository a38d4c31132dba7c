//! The io_uring engine against a temp file: the same answers as the sync engine,
//! completed through the ring's eventfd; short transfers and errors as IOERR; a
//! bounded number in flight; nothing left in flight by a snapshot or a reset.

use super::*;
use crate::virtio::block::engine::{Completion, Op};
use std::time::{Duration, Instant};

fn uring_options(file: &TempFile, cache: CacheMode) -> BlockOptions {
    BlockOptions { engine: Engine::IoUring, ..options(&file.path, false, cache) }
}

fn uring_driver(file: &TempFile) -> (TestDriver, std::sync::Arc<std::sync::Mutex<Block>>) {
    let (mut d, dev) = TestDriver::new(Block::new(uring_options(file, CacheMode::Writeback)).unwrap());
    d.activate(0, 256);
    (d, dev)
}

fn in_flight(dev: &std::sync::Mutex<Block>) -> usize {
    dev.lock().unwrap().worker.engine.as_ref().expect("an io_uring drive").in_flight()
}

/// Runs the event loop until `n` requests are in the used ring (completions come
/// from the kernel, maybe after the loop first goes idle).
fn used_n(d: &mut TestDriver, n: usize) -> Vec<(u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut used = Vec::new();
    while used.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} requests completed", used.len());
        d.run_turn();
        used.extend(d.used(0));
    }
    used
}

fn run_uring(d: &mut TestDriver, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u8, u32) {
    let (head, status) = submit(d, kind, sector, data);
    d.kick(0);
    let used = used_n(d, 1);
    assert_eq!(used, vec![(u32::from(head), used[0].1)]);
    (d.read_bytes(status, 1)[0], used[0].1)
}

#[test]
fn writes_read_back_and_flush_through_the_ring() {
    let file = TempFile::new(&pattern(64 * 512));
    let (mut d, dev) = uring_driver(&file);
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 253) as u8).collect();
    // Two descriptors: the data is split as a guest's scatter list would be.
    let a = guest_buffer(&mut d, &data[..1024]);
    let b = guest_buffer(&mut d, &data[1024..]);
    assert_eq!(run_uring(&mut d, VIRTIO_BLK_T_OUT, 8, &[(a, 1024, false), (b, 3072, false)]), (OK, 1));
    assert_eq!(&file.contents()[8 * 512..8 * 512 + 4096], &data[..], "the write reached the file");
    let out = d.alloc(4096, 0);
    assert_eq!(run_uring(&mut d, VIRTIO_BLK_T_IN, 8, &[(out, 4096, true)]), (OK, 4097));
    assert_eq!(d.read_bytes(out, 4096), data);
    let untouched = d.alloc(512, 0);
    assert_eq!(run_uring(&mut d, VIRTIO_BLK_T_IN, 0, &[(untouched, 512, true)]), (OK, 513));
    assert_eq!(d.read_bytes(untouched, 512), pattern(512));
    assert_eq!(run_uring(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]), (OK, 1));
    assert_eq!(in_flight(&dev), 0);
}

/// Checked before anything is queued: the ring never sees a bad range.
#[test]
fn out_of_range_is_ioerr_without_touching_the_ring() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, dev) = uring_driver(&file);
    let out = d.alloc(1024, 0);
    let (_, status) = submit(&mut d, VIRTIO_BLK_T_IN, 7, &[(out, 1024, true)]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1, "completed within the turn");
    assert_eq!(d.read_bytes(status, 1)[0], IOERR);
    assert_eq!(in_flight(&dev), 0);
}

/// The image shrank under the VM: the kernel's short read is an error to the guest,
/// not a half-filled buffer reported as done.
#[test]
fn short_read_is_ioerr() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, _dev) = uring_driver(&file);
    std::fs::OpenOptions::new().write(true).open(&file.path).unwrap().set_len(6 * 512).unwrap();
    let out = d.alloc(2048, 0);
    assert_eq!(run_uring(&mut d, VIRTIO_BLK_T_IN, 4, &[(out, 2048, true)]).0, IOERR);
}

#[test]
fn completion_outcomes() {
    let done = |op, len, result| Completion { queue: 0, head: 0, status: GuestAddress(0), op, len, result };
    assert!(done(Op::Read, 512, Ok(512)).outcome().is_ok());
    assert!(done(Op::Write, 512, Ok(511)).outcome().is_err(), "a short write is an error");
    assert!(done(Op::Flush, 0, Ok(0)).outcome().is_ok());
    let eio = done(Op::Write, 512, Err(std::io::Error::from_raw_os_error(libc::EIO)));
    assert_eq!(eio.outcome().unwrap_err().kind(), std::io::Error::from_raw_os_error(libc::EIO).kind());
}

/// More requests than may be in flight, posted at once: the rest wait in the avail
/// ring and are served as slots free; every one completes with its own data.
#[test]
fn in_flight_is_bounded_and_everything_completes() {
    // The test queue holds 85 three-descriptor chains: a lower bound stands in for
    // MAX_IN_FLIGHT.
    let (limit, n) = (8, 80);
    let file = TempFile::new(&pattern(n * 512));
    let (mut d, dev) = uring_driver(&file);
    dev.lock().unwrap().worker.engine.as_mut().unwrap().set_limit(limit);
    let mut posted = Vec::new();
    for i in 0..n {
        let out = d.alloc(512, 0);
        let (head, status) = submit(&mut d, VIRTIO_BLK_T_IN, i as u64, &[(out, 512, true)]);
        posted.push((head, status, out, i));
    }
    d.kick(0);
    d.run_turn_count();
    assert!(in_flight(&dev) <= limit, "at most {limit} in flight");
    let used = used_n(&mut d, n);
    assert_eq!(used.len(), n, "each request completes once");
    let whole = pattern(n * 512);
    for (head, status, out, i) in posted {
        assert!(used.contains(&(u32::from(head), 513)), "request {i} completed");
        assert_eq!(d.read_bytes(status, 1)[0], OK);
        assert_eq!(d.read_bytes(out, 512), &whole[i * 512..(i + 1) * 512], "request {i}'s data");
    }
    assert_eq!(in_flight(&dev), 0);
}

/// A snapshot taken while requests are on the ring waits for them and puts them in
/// the used ring, so the state saved has nothing in flight.
#[test]
fn save_drains_requests_in_flight() {
    let n = 32;
    let file = TempFile::new(&pattern(n * 512));
    let (mut d, dev) = uring_driver(&file);
    for i in 0..n {
        let b = guest_buffer(&mut d, &[i as u8; 512]);
        submit(&mut d, VIRTIO_BLK_T_OUT, i as u64, &[(b, 512, false)]);
    }
    d.kick(0);
    // One turn: the requests are taken and submitted; completions are not served.
    d.run_turn_count();
    let _state = d.save();
    assert_eq!(in_flight(&dev), 0, "nothing in flight after a save");
    assert_eq!(d.used(0).len(), n, "every request is in the used ring the snapshot holds");
    let contents = file.contents();
    for i in 0..n {
        assert!(contents[i * 512..(i + 1) * 512].iter().all(|&b| b == i as u8), "sector {i} written");
    }
}

/// A reset (the guest's driver unloading) waits for the ring too: nothing may write
/// into guest memory the driver took back.
#[test]
fn reset_drains_requests_in_flight() {
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, dev) = uring_driver(&file);
    for i in 0..16 {
        let out = d.alloc(512, 0);
        submit(&mut d, VIRTIO_BLK_T_IN, i, &[(out, 512, true)]);
    }
    d.kick(0);
    d.run_turn_count();
    d.reset();
    assert_eq!(in_flight(&dev), 0);
}

#[test]
fn unsafe_cache_flush_is_answered_without_the_ring() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, dev) = TestDriver::new(Block::new(uring_options(&file, CacheMode::Unsafe)).unwrap());
    d.activate(0, 16);
    let (_, status) = submit(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1);
    assert_eq!(d.read_bytes(status, 1)[0], OK);
    assert_eq!(in_flight(&dev), 0);
}

#[test]
#[ignore = "a measurement, not a test"]
fn io_uring_engine_requests_per_second() {
    use super::bench::requests_per_second;
    let file = TempFile::new(&pattern(32 * 4096));
    let (mut d, _dev) = uring_driver(&file);
    let reads = requests_per_second(&mut d, VIRTIO_BLK_T_IN);
    let writes = requests_per_second(&mut d, VIRTIO_BLK_T_OUT);
    eprintln!("BENCH io_uring: {reads:.0} reads/s, {writes:.0} writes/s (4 KiB, batches of 32)");
}
