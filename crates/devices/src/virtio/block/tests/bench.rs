//! The data path's cost per request, through the device as the virtio thread runs it
//! (`cargo test -p devices --release --lib block::tests::bench -- --ignored --nocapture`):
//! batches of 4 KiB reads, then writes, from a page-cached file, and the same one request
//! at a time (queue depth 1, the guest waiting for each). Not a pass/fail test: figures
//! for the commit messages and docs/dropin.md.

use super::*;
use std::time::{Duration, Instant};

const BATCH: usize = 32;
const BATCHES: usize = 400;

/// Requests per second for `BATCHES` batches of `BATCH` 4 KiB requests of `kind`.
pub(super) fn requests_per_second(d: &mut TestDriver, kind: u32) -> f64 {
    requests_per_second_at(d, kind, BATCH, BATCHES)
}

/// The same one request at a time: what a guest waiting for each one sees.
pub(super) fn requests_per_second_qd1(d: &mut TestDriver, kind: u32) -> f64 {
    requests_per_second_at(d, kind, 1, BATCH * BATCHES / 4)
}

fn requests_per_second_at(d: &mut TestDriver, kind: u32, batch: usize, batches: usize) -> f64 {
    let write = kind == VIRTIO_BLK_T_OUT;
    let bufs: Vec<u64> = (0..batch).map(|_| d.alloc(4096, 0x5a)).collect();
    let start = Instant::now();
    for _ in 0..batches {
        for (i, &buf) in bufs.iter().enumerate() {
            submit(d, kind, (i * 8) as u64, &[(buf, 4096, !write)]);
        }
        d.kick(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut done = 0;
        while done < batch {
            assert!(Instant::now() < deadline, "requests lost");
            d.run_turn();
            done += d.used(0).len();
        }
    }
    (batch * batches) as f64 / start.elapsed().as_secs_f64()
}

/// Each engine's figures in one run, the engines alternating: QD1 and batches.
#[test]
#[ignore = "a measurement, not a test"]
fn engines_side_by_side() {
    let file = TempFile::new(&pattern(BATCH * 4096));
    let mut figures: Vec<(Engine, Vec<f64>)> =
        [Engine::Sync, Engine::Threads, Engine::IoUring].into_iter().map(|e| (e, Vec::new())).collect();
    for _round in 0..3 {
        for (engine, runs) in &mut figures {
            let opts = BlockOptions { engine: *engine, ..options(&file.path, false, CacheMode::Writeback) };
            let (mut d, dev) = TestDriver::new(Block::new(opts).unwrap());
            super::pool::start_workers(&dev);
            d.activate(0, 256);
            runs.push(requests_per_second_qd1(&mut d, VIRTIO_BLK_T_IN));
            runs.push(requests_per_second_qd1(&mut d, VIRTIO_BLK_T_OUT));
            runs.push(requests_per_second(&mut d, VIRTIO_BLK_T_IN));
            runs.push(requests_per_second(&mut d, VIRTIO_BLK_T_OUT));
        }
    }
    for (engine, runs) in figures {
        let median = |k: usize| {
            let mut v: Vec<f64> = runs.iter().skip(k).step_by(4).copied().collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        eprintln!(
            "BENCH {engine:?}: QD1 {:.0} reads/s {:.0} writes/s; batches of {BATCH}: {:.0} reads/s {:.0} writes/s",
            median(0),
            median(1),
            median(2),
            median(3)
        );
    }
}

#[test]
#[ignore = "a measurement, not a test"]
fn sync_engine_requests_per_second() {
    let file = TempFile::new(&pattern(BATCH * 4096));
    let (mut d, _) = TestDriver::new(Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap());
    d.activate(0, 256);
    let reads = requests_per_second(&mut d, VIRTIO_BLK_T_IN);
    let writes = requests_per_second(&mut d, VIRTIO_BLK_T_OUT);
    eprintln!("BENCH sync: {reads:.0} reads/s, {writes:.0} writes/s (4 KiB, batches of {BATCH})");
}
