//! Diff snapshots with a real Linux guest (docs/snapshot.md, "Diff snapshots";
//! xtask/scenarios/snapshot-diff.sh): a base and a diff through QMP with
//! `-M microvm,track-dirty-pages=on` and `x-diff-snapshot`, the VMM's own writes to guest
//! memory in between (console, virtio-net), the diff alone refused, `rebase-snap`, and the
//! merged file restoring the guest of the diff's instant. One rig boot.

use xtask::scenario::{self, Case};

/// The number after `key=` (or after `prefix ` when `key` is empty) on the first line
/// containing `prefix`.
fn number(case: &Case, prefix: &str, key: &str) -> Option<u64> {
    let rest = case.output.lines().find_map(|l| l.split(prefix).nth(1))?;
    let value = if key.is_empty() {
        rest.split_whitespace().next()
    } else {
        rest.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    value?.parse().ok()
}

/// The md5sum of the 1 MiB the guest writes to its disk (xtask/tests/snapshot.rs).
const DISK_MD5: &str = "33230f30f9c65f08458fcc2de84f31d3";

#[test]
fn a_linux_guest_s_diff_merged_into_its_base_restores_it_at_the_diff_s_instant() {
    let mut live = |s: &str| eprint!("{s}");
    let case = match scenario::run_one("snapshot-diff", &mut live) {
        Ok(Some(case)) => case,
        Ok(None) => return eprintln!("snapshot-diff: skipped (MICROVM_TEST_MODE=skip)"),
        Err(e) => panic!("snapshot-diff could not run: {e}"),
    };
    let report = case.report();
    assert_eq!(case.status, Some(0), "{report}");
    assert!(case.output.contains("DIFF-SRC-STATUS 0"), "the source did not exit 0 after quit\n{report}");
    let (base_tick, last) = (number(&case, "DIFF-BASE-TICK", ""), number(&case, "DIFF-LAST-TICK", ""));
    assert!(matches!((base_tick, last), (Some(b), Some(l)) if l >= b + 30), "{base_tick:?} {last:?}\n{report}");
    // Only what changed: the diff is a fraction of the base (the guest's kernel, its
    // page cache and the rootfs it read are the base's).
    let (base_kib, diff_kib) = (number(&case, "DIFF-FILES", "base-kib"), number(&case, "DIFF-FILES", "diff-kib"));
    assert!(matches!((base_kib, diff_kib), (Some(b), Some(d)) if d < b / 2), "{base_kib:?} {diff_kib:?}\n{report}");
    let alone = case.output.lines().find(|l| l.contains("DIFF-ALONE")).unwrap_or_default();
    assert!(alone.contains("status=1") && alone.contains("rebase-snap"), "the diff alone: {alone}\n{report}");
    assert!(case.output.contains("DIFF-REBASE status=0"), "{report}");
    // The guest goes on from the diff's instant, its console, tmpfs, disk and network whole.
    assert_eq!(number(&case, "DIFF-RESTORED-FIRST", "n"), last.map(|l| l + 1), "{report}");
    let restored = case.section("restored");
    assert!(restored.contains("SNAP-TMPFS tmpfs-data-"), "the tmpfs file\n{report}");
    assert!(restored.contains(&format!("SNAP-DISK md5={DISK_MD5}")), "the disk data\n{report}");
    assert!(restored.contains("SNAP-PING ok"), "ping over virtio-net after the restore\n{report}");
    assert!(case.section("console").contains("SNAP-PING ok"), "ping before the diff\n{report}");
}
