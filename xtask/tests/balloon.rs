//! virtio-balloon with a real Linux guest (xtask/scenarios/balloon.sh): memory the guest
//! frees returns to the host with free-page-reporting, QMP `balloon` shrinks and
//! restores what the guest can use, and BALLOON_CHANGE events report it. Runs directly where /dev/kvm can boot Linux, else in
//! the nested rig.

use xtask::scenario::run_test_case as run;
use xtask::scenario::Case;

const MIB: u64 = 1024; // in KiB, as VmRSS and MemTotal count

fn number(case: &Case, prefix: &str, key: &str) -> u64 {
    case.output
        .lines()
        .filter(|l| l.starts_with(prefix))
        .flat_map(str::split_whitespace)
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} {key}=\n{}", case.report()))
}

#[test]
fn freed_memory_returns_to_the_host_and_the_balloon_moves_memtotal() {
    let Some(case) = run("balloon") else {
        return;
    };
    let report = case.report();
    assert_eq!(case.status, Some(0), "microvm did not exit 0 after quit\n{report}");

    let (filled, freed) = (number(&case, "BALLOON-RSS", "filled"), number(&case, "BALLOON-RSS", "freed"));
    // Some of the 300 MiB lands on pages the guest had touched before (freed page cache).
    assert!(filled >= number(&case, "BALLOON-RSS", "start") + 200 * MIB, "the fill did not show in RSS\n{report}");
    assert!(filled - freed >= 200 * MIB, "RSS fell by only {} MiB after the free\n{report}", (filled - freed) / MIB);

    let full = number(&case, "BALLOON-MEM", "full");
    let inflated = number(&case, "BALLOON-MEM", "inflated");
    let deflated = number(&case, "BALLOON-MEM", "deflated");
    assert!(full - inflated >= 250 * MIB, "balloon to 256 MiB took only {} MiB\n{report}", (full - inflated) / MIB);
    assert!(deflated + 8 * MIB >= full, "deflating did not give the memory back\n{report}");

    let qmp = case.output.split("== qmp").nth(1).unwrap_or("");
    let actual = |id: &str| {
        qmp.lines()
            .find(|l| l.contains(&format!("\"id\": \"{id}\"")))
            .and_then(|l| l.split("\"actual\": ").nth(1))
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no query-balloon answer {id}\n{report}"))
    };
    let mib = 1 << 20;
    assert!((250 * mib..=262 * mib).contains(&actual("inflated")), "actual after inflating\n{report}");
    assert!(actual("deflated") >= 504 * mib, "actual after deflating\n{report}");

    // BALLOON_CHANGE followed the driver's reports (at most one a second, the last
    // always): down to about 256 MiB, and back.
    let changes: Vec<u64> = qmp
        .lines()
        .filter(|l| l.contains("\"event\": \"BALLOON_CHANGE\""))
        .filter_map(|l| l.split("\"actual\": ").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    assert!(changes.iter().any(|a| (250 * mib..=262 * mib).contains(a)), "no BALLOON_CHANGE near 256 MiB\n{report}");
    assert!(
        changes.last().is_some_and(|&a| a >= 504 * mib),
        "the last BALLOON_CHANGE is not the deflated size\n{report}"
    );
}
