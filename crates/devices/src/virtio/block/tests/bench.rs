//! The data path's cost per request, through the device as the virtio thread runs it
//! (`cargo test -p devices --release --lib block::tests::bench -- --ignored --nocapture`):
//! batches of 4 KiB reads, then writes, from a page-cached file. Not a pass/fail test:
//! figures for the commit messages and docs/dropin.md.

use super::*;
use std::time::{Duration, Instant};

const BATCH: usize = 32;
const BATCHES: usize = 400;

/// Requests per second for `BATCHES` batches of `BATCH` 4 KiB requests of `kind`.
pub(super) fn requests_per_second(d: &mut TestDriver, kind: u32) -> f64 {
    let write = kind == VIRTIO_BLK_T_OUT;
    let bufs: Vec<u64> = (0..BATCH).map(|_| d.alloc(4096, 0x5a)).collect();
    let start = Instant::now();
    for _ in 0..BATCHES {
        for (i, &buf) in bufs.iter().enumerate() {
            submit(d, kind, (i * 8) as u64, &[(buf, 4096, !write)]);
        }
        d.kick(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut done = 0;
        while done < BATCH {
            assert!(Instant::now() < deadline, "requests lost");
            d.run_turn();
            done += d.used(0).len();
        }
    }
    (BATCH * BATCHES) as f64 / start.elapsed().as_secs_f64()
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
