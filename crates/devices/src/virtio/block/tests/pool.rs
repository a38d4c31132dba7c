//! The `threads` engine (a pool of worker threads) against a temp file: the same answers
//! as the sync engine, many requests in flight completed in whatever order the workers
//! finish them, errors as IOERR, and nothing in flight after a snapshot or a reset.

use super::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts the pool's workers on plain threads (the VMM starts them under their filter).
pub(super) fn start_workers(dev: &Mutex<Block>) {
    start_workers_after(dev, Duration::ZERO);
}

/// The workers start only after `delay`: whatever the device hands them meanwhile stays
/// in flight.
fn start_workers_after(dev: &Mutex<Block>, delay: Duration) {
    for worker in dev.lock().unwrap().take_pool_workers() {
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            worker.run();
        });
    }
}

fn pool_driver(file: &TempFile) -> (TestDriver, Arc<Mutex<Block>>) {
    let opts = BlockOptions { engine: Engine::Threads, ..options(&file.path, false, CacheMode::Writeback) };
    let (mut d, dev) = TestDriver::new(Block::new(opts).unwrap());
    d.activate(0, 256);
    (d, dev)
}

fn in_flight(dev: &Mutex<Block>) -> usize {
    dev.lock().unwrap().worker.engine.as_ref().expect("a pool drive").in_flight()
}

/// Runs the event loop until `n` requests are in the used rings of queues `0..queues`;
/// returns each as (queue, head, length).
pub(super) fn used_on(d: &mut TestDriver, queues: u16, n: usize) -> Vec<(usize, u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut used = Vec::new();
    while used.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} requests completed", used.len());
        d.run_turn();
        for q in 0..usize::from(queues) {
            used.extend(d.used(q).into_iter().map(|(head, len)| (q, head, len)));
        }
    }
    used
}

fn run_pool(d: &mut TestDriver, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u8, u32) {
    let (head, status) = submit(d, kind, sector, data);
    d.kick(0);
    let used = used_on(d, 1, 1);
    assert_eq!(used, vec![(0, u32::from(head), used[0].2)]);
    (d.read_bytes(status, 1)[0], used[0].2)
}

#[test]
fn writes_read_back_and_flush_through_the_pool() {
    let file = TempFile::new(&pattern(64 * 512));
    let (mut d, dev) = pool_driver(&file);
    start_workers(&dev);
    assert!(dev.lock().unwrap().take_pool_workers().is_empty(), "the workers are handed out once");
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 253) as u8).collect();
    let a = guest_buffer(&mut d, &data[..1024]);
    let b = guest_buffer(&mut d, &data[1024..]);
    assert_eq!(run_pool(&mut d, VIRTIO_BLK_T_OUT, 8, &[(a, 1024, false), (b, 3072, false)]), (OK, 1));
    assert_eq!(&file.contents()[8 * 512..8 * 512 + 4096], &data[..], "the write reached the file");
    let out = d.alloc(4096, 0);
    assert_eq!(run_pool(&mut d, VIRTIO_BLK_T_IN, 8, &[(out, 4096, true)]), (OK, 4097));
    assert_eq!(d.read_bytes(out, 4096), data);
    assert_eq!(run_pool(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]), (OK, 1));
    assert_eq!(in_flight(&dev), 0);
}

/// Many requests at once, more than may be in flight: the workers finish them in any
/// order, and each completes exactly once with its own data and status.
#[test]
fn many_in_flight_each_complete_once_in_any_order() {
    let (limit, n) = (8, 80);
    let file = TempFile::new(&pattern(n * 512));
    let (mut d, dev) = pool_driver(&file);
    start_workers(&dev);
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
    let used = used_on(&mut d, 1, n);
    assert_eq!(used.len(), n);
    let whole = pattern(n * 512);
    for (head, status, out, i) in posted {
        assert_eq!(used.iter().filter(|u| **u == (0, u32::from(head), 513)).count(), 1, "request {i} once");
        assert_eq!(d.read_bytes(status, 1)[0], OK);
        assert_eq!(d.read_bytes(out, 512), &whole[i * 512..(i + 1) * 512], "request {i}'s data");
    }
    assert_eq!(in_flight(&dev), 0);
}

/// The image shrank under the VM: the worker's read meets end of file, an error to the
/// guest (not a half-filled buffer reported as done); the next request is served.
#[test]
fn a_failed_transfer_is_ioerr_and_the_pool_goes_on() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, dev) = pool_driver(&file);
    start_workers(&dev);
    std::fs::OpenOptions::new().write(true).open(&file.path).unwrap().set_len(4 * 512).unwrap();
    let out = d.alloc(2048, 0);
    assert_eq!(run_pool(&mut d, VIRTIO_BLK_T_IN, 4, &[(out, 2048, true)]).0, IOERR);
    let ok = d.alloc(512, 0);
    assert_eq!(run_pool(&mut d, VIRTIO_BLK_T_IN, 0, &[(ok, 512, true)]), (OK, 513));
    assert_eq!(d.read_bytes(ok, 512), &pattern(512)[..]);
}

/// A snapshot taken while the pool holds requests (its workers not even started yet)
/// waits for them and completes them into the used ring of the queue each came from:
/// the state saved has nothing in flight, and the data is in the file.
#[test]
fn save_waits_for_every_request_in_flight_on_every_queue() {
    let n = 24;
    let file = TempFile::new(&pattern(n * 512));
    let opts = super::multiqueue::mq_options(&file, 3, Engine::Threads);
    let (mut d, dev) = TestDriver::new(Block::new(opts).unwrap());
    d.activate(1 << virtio_bindings::virtio_blk::VIRTIO_BLK_F_MQ, 64);
    start_workers_after(&dev, Duration::from_millis(200));
    for i in 0..n {
        let b = guest_buffer(&mut d, &[i as u8; 512]);
        submit_on(&mut d, i % 3, VIRTIO_BLK_T_OUT, i as u64, &[(b, 512, false)]);
    }
    for q in 0..3 {
        d.kick(q);
    }
    // One turn: the requests are taken and handed to the pool; none can be done yet.
    d.run_turn_count();
    assert_eq!(in_flight(&dev), n, "every request is in flight when the snapshot starts");
    let _state = d.save();
    assert_eq!(in_flight(&dev), 0, "nothing in flight after a save");
    for q in 0..3 {
        assert_eq!(d.used(q).len(), n / 3, "queue {q}'s requests are in its used ring");
    }
    let contents = file.contents();
    for i in 0..n {
        assert!(contents[i * 512..(i + 1) * 512].iter().all(|&b| b == i as u8), "sector {i} written");
    }
}

/// A reset (the guest's driver unloading) waits for the pool too: nothing may write into
/// guest memory the driver took back.
#[test]
fn reset_waits_for_the_pool() {
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, dev) = pool_driver(&file);
    start_workers_after(&dev, Duration::from_millis(100));
    for i in 0..16 {
        let out = d.alloc(512, 0);
        submit(&mut d, VIRTIO_BLK_T_IN, i, &[(out, 512, true)]);
    }
    d.kick(0);
    d.run_turn_count();
    assert_eq!(in_flight(&dev), 16);
    d.reset();
    assert_eq!(in_flight(&dev), 0);
}

/// A drive dropped (the VM ending) with requests in the pool waits for them first: they
/// write into guest memory and through the image's descriptor, which go with it.
#[test]
fn dropping_the_drive_waits_for_the_pool() {
    let n = 32;
    let file = TempFile::new(&vec![0u8; n * 512]);
    let (mut d, dev) = pool_driver(&file);
    start_workers(&dev);
    for i in 0..n {
        let b = guest_buffer(&mut d, &[i as u8 + 1; 512]);
        submit(&mut d, VIRTIO_BLK_T_OUT, i as u64, &[(b, 512, false)]);
    }
    d.kick(0);
    d.run_turn_count();
    drop((d, dev));
    let contents = file.contents();
    for i in 0..n {
        assert!(
            contents[i * 512..(i + 1) * 512].iter().all(|&b| b == i as u8 + 1),
            "sector {i} written before the drop"
        );
    }
}

#[test]
#[ignore = "a measurement, not a test"]
fn threads_engine_requests_per_second() {
    use super::bench::requests_per_second;
    let file = TempFile::new(&pattern(32 * 4096));
    let (mut d, dev) = pool_driver(&file);
    start_workers(&dev);
    let reads = requests_per_second(&mut d, VIRTIO_BLK_T_IN);
    let writes = requests_per_second(&mut d, VIRTIO_BLK_T_OUT);
    eprintln!("BENCH threads: {reads:.0} reads/s, {writes:.0} writes/s (4 KiB, batches of 32)");
}
