//! Multiqueue virtio-net (issue 19, item 3) with a real Linux guest in the rig, which
//! keeps one vCPU: the guest sees 4 queue pairs once it enables them (ETHTOOL_SCHANNELS,
//! guest/tools/netqueues.c), TCP flows both ways over them, more than one pair carries
//! packets each way (the guest driver's per-queue counters), and microvm keeps exactly
//! the enabled pairs' tap queues attached (the rig's sysfs), with and without vhost=on.
//! One scenario (xtask/scenarios/dev-net-mq.sh) and one rig boot per test.

use xtask::scenario::{run_test_case, Case};

fn value<'a>(case: &'a Case, key: &str) -> Option<&'a str> {
    let prefix = format!("{key} ");
    case.output.lines().find_map(|l| l.split(&prefix).nth(1)).map(str::trim)
}

/// The guest driver's kick counter of each queue in `dir` ("rx" or "tx"): the
/// `MQ-STAT NAME VALUE` lines whose NAME starts with `dir`, holds the queue's number
/// and ends in `_kicks` (Linux 6.12's `rx1_kicks`; its per-queue packet counts are
/// netlink's only). A transmit queue kicks when it sends; a receive queue when the
/// driver fills it as the pair is enabled, later only when the device asks (EVENT_IDX),
/// so its kicks do not measure what it received: that the host's flows spread over
/// the receive queues is the unit test's (net/tests/real_tap_mq.rs, a real tap).
fn per_queue(case: &Case, dir: &str) -> Vec<(u32, u64)> {
    let mut counts: Vec<(u32, u64)> = case
        .output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("MQ-STAT "))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            let rest = name.strip_prefix(dir)?;
            if !name.ends_with("_kicks") {
                return None;
            }
            let digits: String =
                rest.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
            Some((digits.parse().ok()?, value.trim().parse().ok()?))
        })
        .collect();
    counts.sort();
    counts.dedup_by_key(|c| c.0);
    counts
}

fn assert_four_pairs_carry_tcp(name: &str) {
    let Some(case) = run_test_case(name) else { return };
    let r = case.report();
    // One vCPU: the driver enables one pair at probe, and microvm attaches one tap queue.
    assert_eq!(value(&case, "MQ-QUEUES-PROBE"), Some("rx=1 tx=1"), "{r}");
    assert_eq!(value(&case, "L2-TAP-QUEUES-PROBE"), Some("1"), "{r}");
    assert_eq!(value(&case, "MQ-CHANNELS"), Some("max_combined=4 combined=1"), "{r}");
    assert_eq!(value(&case, "MQ-QUEUES-SET"), Some("rx=4 tx=4"), "{r}");
    assert_eq!(value(&case, "L2-TAP-QUEUES-SET"), Some("4"), "all four tap queues attached\n{r}");
    assert!(case.output.contains("NET-PING ok"), "ping failed\n{r}");
    let sent = value(&case, "GUEST-TX-MD5").unwrap_or_else(|| panic!("guest sent nothing\n{r}"));
    for port in 5101..=5108 {
        let line = value(&case, &format!("L2-RX {port}"));
        assert_eq!(line, Some(format!("bytes=2097152 md5={sent}").as_str()), "connection {port}\n{r}");
    }
    let l2 = value(&case, "L2-TX-MD5").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(value(&case, "GUEST-RX-BYTES"), Some("16777216"), "L2→guest length\n{r}");
    assert_eq!(value(&case, "GUEST-RX-MD5"), Some(l2), "L2→guest data differ\n{r}");
    let rx = per_queue(&case, "rx");
    assert_eq!(rx.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2, 3], "rx queues\n{r}");
    assert!(rx.iter().all(|c| c.1 > 0), "every enabled pair's receive queue is filled: {rx:?}\n{r}");
    let tx = per_queue(&case, "tx");
    assert_eq!(tx.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2, 3], "tx queues\n{r}");
    let busy = tx.iter().filter(|c| c.1 > 0).count();
    assert!(busy >= 2, "8 flows over 4 pairs were sent on {busy} of them: {tx:?}\n{r}");
    assert_eq!(value(&case, "MICROVM-GUEST-RUN-EXIT"), Some("status=0"), "{r}");
    assert_eq!(case.status, Some(0), "{r}");
}

#[test]
fn four_queue_pairs_carry_tcp_both_ways() {
    assert_four_pairs_carry_tcp("dev-net-mq");
}

#[test]
fn four_queue_pairs_carry_tcp_both_ways_with_vhost() {
    assert_four_pairs_carry_tcp("dev-net-mq-vhost");
}
