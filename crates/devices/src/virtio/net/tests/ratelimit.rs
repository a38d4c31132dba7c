//! virtio-net under rate limits, RX and TX separately: frames beyond the budget wait
//! (TX in the ring, RX pending with the tap unwatched) and none is lost.

use super::*;
use crate::rate_limiter::{BucketConfig, LimiterConfig};
use std::time::{Duration, Instant};

/// Two frames, then one every 50 ms.
const TWO_THEN_20_PER_S: LimiterConfig =
    LimiterConfig { bandwidth: None, ops: Some(BucketConfig { size: 2, one_time_burst: 0, refill_time_ms: 100 }) };

fn limited(rx: LimiterConfig, tx: LimiterConfig) -> (TestDriver, Peer) {
    let (mut net, peer) = device(false);
    net.set_limits(&rx, &tx);
    let (mut d, _) = TestDriver::new(net);
    d.activate(0, 16);
    (d, peer)
}

/// Runs the loop until `done` says so or 5 s passed.
fn run_until(d: &mut TestDriver, mut done: impl FnMut(&mut TestDriver) -> bool) {
    let start = Instant::now();
    while !done(d) && start.elapsed() < Duration::from_secs(5) {
        d.run_turn();
    }
}

#[test]
fn tx_over_the_budget_waits_in_the_ring_and_rx_is_not_limited() {
    let (mut d, peer) = limited(LimiterConfig::default(), TWO_THEN_20_PER_S);
    let start = Instant::now();
    for seed in 0..5 {
        send_from_guest(&mut d, &packet(&frame(100, seed)));
    }
    d.notify(TX as u32);
    let mut sent = Vec::new();
    while let Some(p) = peer.recv() {
        sent.push(p);
    }
    assert_eq!(sent.len(), 2, "the bucket's two frames go at once");
    // RX meanwhile is unlimited.
    let (head, _) = post_rx(&mut d, 2048);
    d.notify(RX as u32);
    peer.send(&packet(&frame(100, 9)));
    d.run_ready();
    assert_eq!(d.used(RX).len(), 1, "rx frame {head} delivered at once");
    run_until(&mut d, |_| {
        while let Some(p) = peer.recv() {
            sent.push(p);
        }
        sent.len() == 5
    });
    assert_eq!(sent.len(), 5, "every frame leaves, in order");
    for (seed, p) in sent.iter().enumerate() {
        assert_eq!(p, &packet(&frame(100, seed as u8)));
    }
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
}

#[test]
fn rx_over_the_budget_waits_on_the_host_side_and_none_is_lost() {
    let (mut d, peer) = limited(TWO_THEN_20_PER_S, LimiterConfig::default());
    for _ in 0..5 {
        post_rx(&mut d, 2048);
    }
    d.notify(RX as u32);
    let start = Instant::now();
    for seed in 0..5 {
        peer.send(&packet(&frame(300, seed)));
    }
    d.run_ready();
    let mut used = d.used(RX);
    assert_eq!(used.len(), 2, "the bucket's two frames are delivered, the rest wait");
    // The loop does not spin meanwhile: the tap is unwatched and nothing else is ready.
    assert_eq!(d.run_turn_count(), 0, "a blocked RX must leave the loop idle");
    run_until(&mut d, |d| {
        used.extend(d.used(RX));
        used.len() == 5
    });
    assert_eq!(used.len(), 5, "none dropped");
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    // TX is unlimited.
    send_from_guest(&mut d, &packet(&frame(100, 1)));
    send_from_guest(&mut d, &packet(&frame(100, 2)));
    send_from_guest(&mut d, &packet(&frame(100, 3)));
    d.notify(TX as u32);
    assert_eq!(std::iter::from_fn(|| peer.recv()).count(), 3);
}
