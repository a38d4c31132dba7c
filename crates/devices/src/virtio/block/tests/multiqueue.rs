//! `num-queues=N`: VIRTIO_BLK_F_MQ and `num_queues` in config space, N queues each served
//! on its own (a request completes on the queue it came from), a driver that takes one
//! queue only, the bounds of N, and every queue through a snapshot.

use super::*;
use crate::state::StateError;
use crate::virtio::status;
use virtio_bindings::virtio_blk::VIRTIO_BLK_F_MQ;

const MQ: u64 = 1 << VIRTIO_BLK_F_MQ;

pub(super) fn mq_options(file: &TempFile, num_queues: u16, engine: Engine) -> BlockOptions {
    BlockOptions { num_queues, engine, ..options(&file.path, false, CacheMode::Writeback) }
}

fn num_queues_in_config(d: &mut TestDriver) -> u16 {
    let at = std::mem::offset_of!(virtio_blk_config, num_queues) as u64;
    u16::from_le_bytes(config(d, at, 2).try_into().unwrap())
}

#[test]
fn mq_is_offered_only_with_more_than_one_queue_and_config_says_how_many() {
    let file = TempFile::new(&pattern(8 * 512));
    for n in [1u16, 2, 4, MAX_QUEUES] {
        let (mut d, _) = TestDriver::new(Block::new(mq_options(&file, n, Engine::Sync)).unwrap());
        assert_eq!(has(d.device_features(), VIRTIO_BLK_F_MQ), n > 1, "num-queues={n}");
        assert_eq!(num_queues_in_config(&mut d), n);
        // The transport shows each queue's maximum size, and none beyond N.
        for q in 0..u32::from(n) {
            d.write_reg(0x30, q);
            assert_eq!(d.read_reg(0x34), u32::from(QUEUE_SIZE), "queue {q} of {n}");
        }
        d.write_reg(0x30, u32::from(n));
        assert_eq!(d.read_reg(0x34), 0, "no queue {n}");
    }
}

#[test]
fn a_number_of_queues_out_of_bounds_is_one_line_naming_the_drive() {
    let file = TempFile::new(&pattern(512));
    for n in [0, MAX_QUEUES + 1, u16::MAX] {
        let err = Block::new(mq_options(&file, n, Engine::Sync)).err().expect("refused");
        let msg = err.to_string();
        assert!(matches!(err, BlockError::NumQueues { .. }), "{err:?}");
        assert!(msg.contains(&format!("num-queues={n}")) && msg.contains("1 to 16"), "{msg}");
        assert!(msg.contains(&file.path.display().to_string()) && !msg.contains('\n'), "{msg}");
    }
}

/// Requests posted on every queue at once, each reading its own sector: each completes
/// once, on its own queue's used ring, with its own data; a write on the last queue
/// reaches the file.
pub(super) fn each_queue_serves_its_own_requests(engine: Engine) {
    let n = 4;
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, dev) = TestDriver::new(Block::new(mq_options(&file, n, engine)).unwrap());
    super::pool::start_workers(&dev);
    d.activate(MQ, 16);
    let mut posted = Vec::new();
    for q in 0..usize::from(n) {
        // Two requests per queue, so heads repeat across queues.
        for k in 0..2 {
            let out = d.alloc(512, 0);
            let sector = (q * 2 + k) as u64;
            let (head, status) = submit_on(&mut d, q, VIRTIO_BLK_T_IN, sector, &[(out, 512, true)]);
            posted.push((q, head, status, out, sector));
        }
    }
    let b = guest_buffer(&mut d, &[0x5a; 512]);
    let (wh, ws) = submit_on(&mut d, 3, VIRTIO_BLK_T_OUT, 15, &[(b, 512, false)]);
    for q in 0..u32::from(n) {
        d.kick(q);
    }
    let used = super::pool::used_on(&mut d, n, posted.len() + 1);
    let whole = pattern(16 * 512);
    for (q, head, status, out, sector) in posted {
        let want = (q, u32::from(head), 513);
        assert_eq!(used.iter().filter(|u| **u == want).count(), 1, "request on queue {q} completed there once");
        assert_eq!(d.read_bytes(status, 1)[0], OK);
        let at = sector as usize * 512;
        assert_eq!(d.read_bytes(out, 512), &whole[at..at + 512], "queue {q}, sector {sector}");
    }
    assert!(used.contains(&(3, u32::from(wh), 1)), "the write completed on queue 3");
    assert_eq!(d.read_bytes(ws, 1)[0], OK);
    assert_eq!(file.contents()[15 * 512..], [0x5a; 512]);
}

#[test]
fn each_queue_serves_its_own_requests_sync() {
    each_queue_serves_its_own_requests(Engine::Sync);
}

#[test]
fn each_queue_serves_its_own_requests_io_uring() {
    each_queue_serves_its_own_requests(Engine::IoUring);
}

#[test]
fn each_queue_serves_its_own_requests_threads() {
    each_queue_serves_its_own_requests(Engine::Threads);
}

/// A driver without VIRTIO_BLK_F_MQ (an old one) sets up queue 0 only: the device
/// activates with it and serves it.
#[test]
fn a_driver_without_mq_gets_one_queue() {
    let file = TempFile::new(&pattern(4 * 512));
    let (mut d, _) = TestDriver::new(Block::new(mq_options(&file, 4, Engine::Sync)).unwrap());
    d.negotiate(0);
    d.setup_queue(0, 16);
    assert_eq!(d.driver_ok() & status::DEVICE_NEEDS_RESET, 0, "activated with one queue");
    let out = d.alloc(512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 1, &[(out, 512, true)]), (OK, 513));
    assert_eq!(d.read_bytes(out, 512), &pattern(4 * 512)[512..1024]);
}

/// Every queue's position survives a snapshot: requests completed on queues 1 and 3
/// before it, more on every queue after it, the used indexes going on from where they
/// were; a restore onto a drive with another number of queues is refused.
#[test]
fn every_queue_goes_on_after_a_restore_and_another_count_is_refused() {
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, _) = TestDriver::new(Block::new(mq_options(&file, 4, Engine::Sync)).unwrap());
    d.activate(MQ, 16);
    for q in [1usize, 3] {
        let out = d.alloc(512, 0);
        submit_on(&mut d, q, VIRTIO_BLK_T_IN, q as u64, &[(out, 512, true)]);
        d.notify(q as u32);
        assert_eq!(d.used(q).len(), 1);
    }
    let state = d.save();
    let other = Block::new(mq_options(&TempFile::new(&file.contents()), 2, Engine::Sync)).unwrap();
    let refused = d.restored(other, state.clone()).err().expect("another queue count is refused");
    assert!(matches!(refused, StateError::QueueCount { saved: 4, now: 2 }), "{refused:?}");

    let copy = TempFile::new(&file.contents());
    let (mut r, _) = d.restored(Block::new(mq_options(&copy, 4, Engine::Sync)).unwrap(), state).unwrap();
    for q in 0..4usize {
        let out = r.alloc(512, 0);
        let (head, status) = submit_on(&mut r, q, VIRTIO_BLK_T_IN, 8 + q as u64, &[(out, 512, true)]);
        r.notify(q as u32);
        assert_eq!(r.used(q), vec![(u32::from(head), 513)], "queue {q} after the restore");
        assert_eq!(r.read_bytes(status, 1)[0], OK);
        let at = (8 + q) * 512;
        assert_eq!(r.read_bytes(out, 512), &pattern(16 * 512)[at..at + 512]);
        let before = usize::from(q == 1 || q == 3);
        assert_eq!(usize::from(r.used_idx(q)), before + 1, "queue {q}'s used index went on");
    }
}
