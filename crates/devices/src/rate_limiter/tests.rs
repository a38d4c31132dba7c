use super::*;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;

fn bucket(size: u64, refill_time_ms: u64) -> Option<BucketConfig> {
    Some(BucketConfig { size, one_time_burst: 0, refill_time_ms })
}

fn bytes(size: u64, refill_time_ms: u64) -> RateLimiter {
    RateLimiter::new(&LimiterConfig { bandwidth: bucket(size, refill_time_ms), ops: None }, 0)
}

#[test]
fn a_full_bucket_serves_its_size_then_waits_for_the_refill() {
    let mut l = bytes(1000, 100);
    assert_eq!(l.consume(1, 600, 0), None);
    assert_eq!(l.consume(1, 400, 0), None);
    // Empty: 500 bytes take half the refill time.
    assert_eq!(l.consume(1, 500, 0), Some(50 * MS));
    // Nothing was taken by the refusal: at 50 ms exactly 500 are there.
    assert_eq!(l.consume(1, 500, 50 * MS - 1), Some(1));
    assert_eq!(l.consume(1, 500, 50 * MS), None);
    assert_eq!(l.consume(1, 1, 50 * MS), Some(MS / 10));
}

#[test]
fn the_refill_keeps_fractions_of_a_token() {
    // 3 tokens per 10 ms: a token every 3.33 ms; asking every 1 ms must not lose the
    // fractions (30 tokens in 100 ms, not fewer).
    let mut l = bytes(3, 10);
    assert_eq!(l.consume(1, 3, 0), None);
    let mut served = 0;
    for t in 1..=100 {
        if l.consume(1, 1, t * MS).is_none() {
            served += 1;
        }
    }
    assert_eq!(served, 30);
}

#[test]
fn the_bucket_never_holds_more_than_its_size() {
    let mut l = bytes(1000, 100);
    assert_eq!(l.consume(1, 1000, 0), None);
    // An hour idle still leaves one bucket's worth.
    assert_eq!(l.consume(1, 1000, 3600 * SEC), None);
    assert!(l.consume(1, 1, 3600 * SEC).is_some());
}

#[test]
fn a_request_larger_than_the_bucket_passes_when_full_and_leaves_a_debt() {
    let mut l = bytes(1000, 100);
    assert_eq!(l.consume(1, 3000, 0), None);
    // 2000 in debt plus 1 byte: 2001 bytes of refill.
    assert_eq!(l.consume(1, 1, 0), Some(200 * MS + 100_000));
    // Not full: a large request waits for a full bucket only.
    assert_eq!(l.consume(1, 5000, 250 * MS), Some(50 * MS));
    assert_eq!(l.consume(1, 5000, 300 * MS), None);
}

#[test]
fn the_one_time_burst_is_spent_first_and_never_comes_back() {
    let config = LimiterConfig {
        bandwidth: Some(BucketConfig { size: 100, one_time_burst: 1000, refill_time_ms: 1000 }),
        ops: None,
    };
    let mut l = RateLimiter::new(&config, 0);
    assert_eq!(l.consume(1, 1000, 0), None);
    assert_eq!(l.consume(1, 100, 0), None);
    assert_eq!(l.consume(1, 100, 0), Some(SEC));
    // A day later: the bucket is full again, the burst is not.
    assert_eq!(l.consume(1, 100, 86_400 * SEC), None);
    assert!(l.consume(1, 1, 86_400 * SEC).is_some());
}

#[test]
fn a_burst_partly_left_covers_part_of_a_request() {
    let config = LimiterConfig {
        bandwidth: Some(BucketConfig { size: 100, one_time_burst: 50, refill_time_ms: 1000 }),
        ops: None,
    };
    let mut l = RateLimiter::new(&config, 0);
    // 50 from the burst, 100 from the bucket.
    assert_eq!(l.consume(1, 150, 0), None);
    assert_eq!(l.consume(1, 10, 0), Some(100 * MS));
}

#[test]
fn ops_and_bandwidth_are_both_checked_before_either_is_spent() {
    let config = LimiterConfig { bandwidth: bucket(1000, 1000), ops: bucket(2, 1000) };
    let mut l = RateLimiter::new(&config, 0);
    assert_eq!(l.consume(1, 900, 0), None);
    // Bytes are short: the op must not be spent either.
    assert_eq!(l.consume(1, 200, 0), Some(100 * MS));
    assert_eq!(l.consume(1, 100, 0), None);
    // Two ops spent: ops are short now, and wait the longer of the two.
    assert_eq!(l.consume(1, 1, 0), Some(500 * MS));
}

#[test]
fn the_long_run_rate_is_size_over_refill_time() {
    // 10 MB/s as Firecracker's users write it, with 128 KiB requests served as soon as
    // the limiter allows: 10 s must move 100 MB plus one bucket, within one request.
    let mut l = bytes(10_000_000, 1000);
    let (mut now, mut moved) = (0u64, 0u64);
    while now <= 10 * SEC {
        match l.consume(1, 128 << 10, now) {
            None => moved += 128 << 10,
            Some(wait) => now += wait,
        }
    }
    let expected = 110_000_000u64;
    assert!(moved.abs_diff(expected) <= 128 << 10, "moved {moved}");
}

#[test]
fn empty_buckets_limit_nothing() {
    for config in [LimiterConfig::default(), LimiterConfig { bandwidth: bucket(0, 100), ops: bucket(10, 0) }] {
        assert!(!config.limits());
        let mut l = RateLimiter::new(&config, 0);
        assert!(!l.limits());
        assert_eq!(l.consume(1_000_000, u64::MAX, 0), None);
    }
}

#[test]
fn a_clock_that_goes_nowhere_refills_nothing() {
    let mut l = bytes(10, 10);
    assert_eq!(l.consume(1, 10, 5 * MS), None);
    // The caller's clock read earlier than the last update (two reads racing): no refill,
    // no underflow.
    assert_eq!(l.consume(1, 1, 4 * MS), Some(MS));
}
