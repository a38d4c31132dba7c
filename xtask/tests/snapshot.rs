//! Snapshot and restore with a real Linux guest (issue 16, acceptance 1 and 2;
//! xtask/scenarios/snapshot.sh): a guest saved with `migrate file:` goes on in a new
//! microvm from where it stopped, with its tmpfs, disk, console, network and vsock; then
//! the same snapshot restored 20 times in turn and 4 times at once, and once more as a
//! clone of the clone server. One rig boot.

use xtask::scenario::{self, Case};

fn run(name: &str) -> Option<Case> {
    let mut live = |s: &str| eprint!("{s}");
    match scenario::run_one(name, &mut live) {
        Ok(Some(case)) => Some(case),
        Ok(None) => {
            eprintln!("{name}: skipped (MICROVM_TEST_MODE=skip)");
            None
        }
        Err(e) => panic!("{name} could not run: {e}"),
    }
}

/// `key=value` from the first line containing `prefix`.
fn field<'a>(case: &'a Case, prefix: &str, key: &str) -> Option<&'a str> {
    let line = case.output.lines().find_map(|l| l.split(prefix).nth(1))?;
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The md5sum of the 1 MiB the guest writes to its disk (`yes "microvm snapshot disk
/// data" | head -c 1048576`).
const DISK_MD5: &str = "33230f30f9c65f08458fcc2de84f31d3";

#[test]
fn a_saved_linux_guest_goes_on_in_new_processes_20_in_turn_and_4_at_once() {
    let Some(case) = run("snapshot") else { return };
    let report = case.report();
    assert_eq!(case.status, Some(0), "{report}");
    assert!(case.output.contains("SNAP-SRC-STATUS 0"), "the source did not exit 0 after quit\n{report}");
    assert!(case.section("qmp").contains("\"status\": \"completed\""), "query-migrate\n{report}");

    // Acceptance 1: the count, boot id and uptime go on from the saved instant.
    let num = |p: &str, k: &str| field(&case, p, k).and_then(|v| v.parse::<f64>().ok());
    let (last, first) = (num("SNAP-SRC-LAST ", "n"), num("SNAP-RESTORED-FIRST ", "n"));
    assert!(last.is_some() && first == last.map(|n| n + 1.0), "count {last:?} -> {first:?}\n{report}");
    let boot = field(&case, "SNAP-SRC-LAST ", "boot");
    assert!(boot.is_some_and(|b| b.len() == 36), "{report}");
    assert_eq!(field(&case, "SNAP-RESTORED-FIRST ", "boot"), boot, "another boot id\n{report}");
    let (up0, up1) = (num("SNAP-SRC-LAST ", "up"), num("SNAP-RESTORED-FIRST ", "up"));
    assert!(matches!((up0, up1), (Some(a), Some(b)) if b >= a && b < a + 1.0), "uptime {up0:?} -> {up1:?}\n{report}");
    assert!(case.output.contains("SNAP-RESTORED-GOES-ON ok"), "{report}");
    let restored = case.section("restored");
    assert!(restored.contains("SNAP-ECHO hello-restored"), "the console did not answer\n{report}");
    let tmpfs = format!("SNAP-TMPFS tmpfs-data-{}", boot.unwrap_or("?"));
    assert!(restored.contains(&tmpfs), "the tmpfs file\n{report}");
    assert!(restored.contains(&format!("SNAP-DISK md5={DISK_MD5}")), "the disk data\n{report}");
    assert!(restored.contains("SNAP-PING ok"), "ping over virtio-net\n{report}");
    assert!(restored.contains("GUEST-VSOCK-TX bytes=65536"), "a new vsock connection\n{report}");
    assert!(restored.contains("GUEST-VSOCK-RX bytes=65536"), "a new vsock connection\n{report}");
    assert!(case.section("rig-vsock").contains("RIG-VSOCK-RX bytes=65536"), "{report}");

    // Acceptance 2: every clone ticks on from the saved count and echoes a line.
    for k in 1..=20 {
        assert!(case.output.contains(&format!("CLONE seq={k} ok")), "restore {k} of 20 in turn\n{report}");
    }
    for k in 1..=4 {
        assert!(case.output.contains(&format!("CLONE par={k} ok")), "clone {k} of 4 at once\n{report}");
    }
    // A clone of the clone server, whose VM was made before the request, goes on too.
    assert!(case.output.contains("CLONE server=1 ok"), "the clone server's clone\n{report}");
    let alive: Vec<&str> = case.output.lines().map(str::trim_end).filter(|l| l.starts_with("CLONE-ALIVE ")).collect();
    assert_eq!(alive.len(), 4, "{report}");
    assert!(
        alive.iter().all(|l| l.ends_with(" yes")),
        "a clone ended: {alive:?}
{report}"
    );
}
