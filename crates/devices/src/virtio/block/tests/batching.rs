//! Batching on the engines' path: the chains of one kick are handed over in one batch
//! (one io_uring_enter, one pool wake-up); with io_uring, what the kernel finished
//! within that call completes in the same turn with one interrupt and leaves the
//! thread idle (no eventfd written); a request the kernel still holds stays in flight,
//! untouched, until it finishes.
//!
//! The image lives in the host's page cache beside the build (the workspace's target
//! directory), not in the temp directory: tmpfs has no non-blocking reads
//! (FMODE_NOWAIT), so io_uring hands every read on it to a kernel worker (an iou-wrk
//! thread) instead of carrying it out within io_uring_enter, while ext4, xfs and btrfs
//! serve a page-cache hit at once.

use super::*;
use crate::virtio::block::engine::{Completion, InFlight, Op, Queued, Uring};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// A file where the build is, on the disk's file system (see above).
fn image(contents: &[u8]) -> TempFile {
    TempFile::new_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-images"), contents)
}

fn submits(dev: &Mutex<Block>) -> usize {
    dev.lock().unwrap().worker.engine.as_ref().expect("a drive with an engine").submits()
}

fn engine_driver(file: &TempFile, engine: Engine) -> (TestDriver, std::sync::Arc<Mutex<Block>>) {
    let opts = BlockOptions { engine, ..options(&file.path, false, CacheMode::Writeback) };
    let (mut d, dev) = TestDriver::new(Block::new(opts).unwrap());
    super::pool::start_workers(&dev);
    d.activate(0, 256);
    (d, dev)
}

/// Posts `n` 4 KiB reads of sectors 8i; returns (head, status, buffer) of each.
fn post_reads(d: &mut TestDriver, n: usize) -> Vec<(u16, u64, u64)> {
    (0..n)
        .map(|i| {
            let out = d.alloc(4096, 0);
            let (head, status) = submit(d, VIRTIO_BLK_T_IN, (i * 8) as u64, &[(out, 4096, true)]);
            (head, status, out)
        })
        .collect()
}

fn check_reads(d: &mut TestDriver, posted: &[(u16, u64, u64)], used: &[(u32, u32)], whole: &[u8]) {
    assert_eq!(used.len(), posted.len(), "each request completes once");
    for (i, &(head, status, out)) in posted.iter().enumerate() {
        assert!(used.contains(&(u32::from(head), 4097)), "request {i} completed");
        assert_eq!(d.read_bytes(status, 1)[0], OK, "request {i}'s status");
        assert_eq!(d.read_bytes(out, 4096), &whole[i * 4096..(i + 1) * 4096], "request {i}'s data");
    }
}

#[test]
fn a_kick_of_many_chains_is_one_enter_and_one_interrupt() {
    let n = 32;
    let whole = pattern(n * 4096);
    let file = image(&whole);
    let (mut d, dev) = engine_driver(&file, Engine::IoUring);
    let posted = post_reads(&mut d, n);
    d.kick(0);
    assert_eq!(d.run_turn_count(), 1, "the kick");
    let used = d.used(0);
    check_reads(&mut d, &posted, &used, &whole);
    assert_eq!(submits(&dev), 1, "one io_uring_enter for the kick's {n} chains");
    assert_eq!(d.interrupts(), 1, "one interrupt for the batch");
    // The kernel wrote no eventfd during the turn: nothing wakes the thread again.
    assert_eq!(d.run_turn_count(), 0, "the thread is idle");
}

/// Queue depth 1: the request is answered within the turn of its kick, not a turn
/// later when the ring's eventfd would have woken the thread.
#[test]
fn one_request_completes_within_the_turn_of_its_kick() {
    let whole = pattern(4096);
    let file = image(&whole);
    let (mut d, dev) = engine_driver(&file, Engine::IoUring);
    for round in 1..=3 {
        let posted = post_reads(&mut d, 1);
        d.kick(0);
        assert_eq!(d.run_turn_count(), 1, "round {round}: the kick");
        let used = d.used(0);
        check_reads(&mut d, &posted, &used, &whole);
        assert_eq!(d.interrupts(), 1, "round {round}");
        assert_eq!(d.run_turn_count(), 0, "round {round}: the thread is idle");
        assert_eq!(submits(&dev), round);
    }
}

/// The pool too gets a kick's chains in one batch (one lock, one wake-up).
#[test]
fn a_kick_of_many_chains_is_one_batch_for_the_pool() {
    let n = 32;
    let whole = pattern(n * 4096);
    let file = image(&whole);
    let (mut d, dev) = engine_driver(&file, Engine::Threads);
    let posted = post_reads(&mut d, n);
    d.kick(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut used = Vec::new();
    while used.len() < n {
        assert!(std::time::Instant::now() < deadline, "only {} of {n} completed", used.len());
        d.run_turn();
        used.extend(d.used(0));
    }
    check_reads(&mut d, &posted, &used, &whole);
    assert_eq!(submits(&dev), 1, "one batch for the kick's {n} chains");
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which has room for them.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just opened and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) {
    // SAFETY: writes `bytes`, which outlive the call, to a descriptor this test owns.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

/// Two reads on a pipe (a file whose reads the kernel holds until data comes): the
/// first data finishes one and leaves the other in flight, untouched; with wake-ups held
/// the eventfd stays quiet and releasing them reports the completion; with wake-ups on,
/// the second completion writes the eventfd.
#[test]
fn a_partial_completion_leaves_the_rest_in_flight() {
    let (rx, tx) = pipe();
    let mut ring = Uring::new().unwrap();
    let mut bufs = [[0u8; 8]; 2];
    for (i, buf) in bufs.iter_mut().enumerate() {
        let mut iovs = vec![libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() }];
        let request = Queued { queue: 0, head: i as u16, status: GuestAddress(0), op: Op::Read, len: 8 };
        ring.push(rx.as_raw_fd(), 0, &mut iovs, request).unwrap();
    }
    ring.submit().unwrap();
    assert_eq!(ring.submits(), 1);
    let mut done: Vec<Completion> = Vec::new();
    ring.take_ready(&mut |c| done.push(c));
    assert!(done.is_empty(), "the pipe is empty: nothing finished");
    assert_eq!(ring.in_flight(), 2);

    ring.hold_wakeups();
    write_all(&tx, b"12345678");
    assert!(ring.event().read().is_err(), "wake-ups held: the eventfd was not written");
    assert!(ring.release_wakeups(), "a completion arrived while wake-ups were held");
    ring.take_ready(&mut |c| done.push(c));
    assert_eq!(done.len(), 1, "one read finished");
    assert_eq!(done[0].result.as_ref().ok(), Some(&8));
    let first = usize::from(done[0].head);
    assert_eq!(&bufs[first], b"12345678");
    assert_eq!(ring.in_flight(), 1, "the other read is still in flight");
    assert_eq!(bufs[1 - first], [0; 8], "and its buffer untouched");

    assert!(!ring.release_wakeups(), "nothing more finished");
    write_all(&tx, b"abcdefgh");
    assert!(ring.event().read().is_ok(), "wake-ups on: the completion wrote the eventfd");
    ring.reap(&mut |c| done.push(c));
    assert_eq!(done.len(), 2);
    assert_eq!(usize::from(done[1].head), 1 - first);
    assert_eq!(&bufs[1 - first], b"abcdefgh");
    assert_eq!(ring.in_flight(), 0);
    drop(ring);
}

/// The ring holds no reference to the image once the drive is gone: a drive opened again
/// at once (the next VM on the same image) finds it unlocked. (A registered file would
/// keep it, and its flock, until the kernel's asynchronous teardown of the ring.)
#[test]
fn a_drive_closed_can_be_opened_again_at_once() {
    let whole = pattern(4096);
    let file = image(&whole);
    for round in 0..20 {
        let (mut d, dev) = engine_driver(&file, Engine::IoUring);
        let posted = post_reads(&mut d, 1);
        d.kick(0);
        d.run_turn_count();
        let used = d.used(0);
        check_reads(&mut d, &posted, &used, &whole);
        drop((d, dev));
        let again =
            Block::new(BlockOptions { engine: Engine::IoUring, ..options(&file.path, false, CacheMode::Writeback) });
        assert!(again.is_ok(), "round {round}: {:?}", again.err());
    }
}
