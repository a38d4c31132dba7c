//! virtio-blk under rate limits: requests beyond the budget wait in the ring (neither
//! dropped nor failed) until the refill timer brings the device back.

use super::*;
use crate::rate_limiter::{BucketConfig, LimiterConfig};
use std::time::{Duration, Instant};

fn limited(file: &TempFile, limits: DriveLimits) -> TestDriver {
    let opts = BlockOptions { limits, ..options(&file.path, false, CacheMode::Writeback) };
    driver_for(opts, 0)
}

fn bucket(size: u64, refill_time_ms: u64) -> Option<BucketConfig> {
    Some(BucketConfig { size, one_time_burst: 0, refill_time_ms })
}

/// Posts `n` one-sector reads and kicks once; returns their status bytes' addresses.
fn post_reads(d: &mut TestDriver, n: usize) -> Vec<u64> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let buf = d.alloc(512, 0);
        let (_, status) = submit(d, VIRTIO_BLK_T_IN, i as u64, &[(buf, 512, true)]);
        statuses.push(status);
    }
    d.kick(0);
    statuses
}

/// Runs the device's loop until `n` completions arrived (or 5 s passed); returns them.
fn wait_used(d: &mut TestDriver, n: usize) -> Vec<(u32, u32)> {
    let start = Instant::now();
    let mut used = Vec::new();
    while used.len() < n && start.elapsed() < Duration::from_secs(5) {
        d.run_turn();
        used.extend(d.used(0));
    }
    used
}

#[test]
fn an_ops_limit_serves_the_bucket_then_one_request_per_refill() {
    let file = TempFile::new(&pattern(64 * 512));
    // 2 requests, then one every 50 ms.
    let total = LimiterConfig { bandwidth: None, ops: bucket(2, 100) };
    let mut d = limited(&file, DriveLimits { total, ..Default::default() });
    let start = Instant::now();
    let statuses = post_reads(&mut d, 5);
    d.run_ready();
    assert_eq!(d.used(0).len(), 2, "the bucket's two requests are served at once, the rest wait");
    let rest = wait_used(&mut d, 3);
    let elapsed = start.elapsed();
    assert_eq!(rest.len(), 3, "the waiting requests are served, none dropped");
    assert!(elapsed >= Duration::from_millis(150), "three refills of 50 ms, took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    for status in statuses {
        assert_eq!(d.read_bytes(status, 1)[0], OK, "a request that waited is not failed");
    }
}

#[test]
fn a_read_limit_leaves_writes_alone_and_bandwidth_counts_data_bytes() {
    let file = TempFile::new(&pattern(64 * 512));
    // 1024 bytes a second of reads: two one-sector reads, then the third waits ~0.5 s.
    let read = LimiterConfig { bandwidth: bucket(1024, 1000), ops: None };
    let mut d = limited(&file, DriveLimits { read, ..Default::default() });
    post_reads(&mut d, 3);
    d.run_ready();
    assert_eq!(d.used(0).len(), 2);
    // A write behind the blocked read waits too (the ring is served in order), but the
    // limit itself never counts it: after the read's refill both complete together.
    let data = guest_buffer(&mut d, &pattern(512));
    submit(&mut d, VIRTIO_BLK_T_OUT, 10, &[(data, 512, false)]);
    d.kick(0);
    let used = wait_used(&mut d, 2);
    assert_eq!(used.len(), 2, "{used:?}");
}

#[test]
fn new_limits_apply_at_once_and_release_what_waited() {
    let file = TempFile::new(&pattern(64 * 512));
    // One request an hour: the second would wait that long.
    let total = LimiterConfig { bandwidth: None, ops: bucket(1, 3_600_000) };
    let (mut d, block) = TestDriver::new(
        Block::new(BlockOptions {
            limits: DriveLimits { total, ..Default::default() },
            ..options(&file.path, false, CacheMode::Writeback)
        })
        .unwrap(),
    );
    d.activate(0, 16);
    post_reads(&mut d, 3);
    d.run_ready();
    assert_eq!(d.used(0).len(), 1);
    block.lock().unwrap().set_limits(&DriveLimits::default());
    d.run_ready();
    assert_eq!(d.used(0).len(), 2, "lifting the limit serves the waiting requests");
    assert!(d.interrupted());
}

/// The data path's cost with no limit, to compare with a build without rate limiters:
/// `cargo test -p devices --release --lib unlimited_read_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn unlimited_read_cost() {
    let file = TempFile::new(&pattern(64 * 512));
    let mut d = driver(&file);
    let buf = d.alloc(512, 0);
    let hdr = header(&mut d, VIRTIO_BLK_T_IN, 0);
    let status = d.alloc(1, 0);
    let rounds = 20_000u32;
    let start = Instant::now();
    for _ in 0..rounds {
        // Four requests a kick (12 of the 16 descriptors), the same buffers each time.
        for _ in 0..4 {
            d.add_chain(0, &[(hdr, 16, false), (buf, 512, true), (status, 1, true)]);
        }
        d.kick(0);
        d.run_ready();
        assert_eq!(d.used(0).len(), 4);
    }
    let per_request = start.elapsed() / (rounds * 4);
    println!("virtio-blk unlimited: {per_request:?} per one-sector read (whole path, test driver included)");
}
