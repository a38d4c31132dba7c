//! The control plane with a real Linux guest (xtask/scenarios/qmp-pause.sh): a guest
//! counting on its console is paused and resumed 20 times over QMP, then quit. Runs
//! directly where /dev/kvm can boot Linux, else in the nested rig, like boot.rs.

use xtask::scenario::Case;

/// Pauses the scenario makes.
const PAUSES: u64 = 20;

use xtask::scenario::run_test_case as run;

/// `key=value` of a PAUSE-CHECK line.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

fn section<'a>(case: &'a Case, title: &str) -> &'a str {
    let start = case.output.find(title).map_or(case.output.len(), |i| i + title.len());
    let rest = &case.output[start..];
    rest.find("\n== ").map_or(rest, |end| &rest[..end])
}

#[test]
fn linux_guest_paused_and_resumed_20_times_never_counts_back() {
    let Some(case) = run("qmp-pause") else {
        return;
    };
    let report = case.report();
    assert_eq!(case.status, Some(0), "microvm did not exit 0 after quit\n{report}");

    // While paused the count does not move; between pauses it does.
    let checks: Vec<(u64, u64)> = case
        .output
        .lines()
        .filter(|l| l.starts_with("PAUSE-CHECK n="))
        .map(|l| (field(l, "paused").expect("a count when paused"), field(l, "later").expect("a count later")))
        .collect();
    assert_eq!(checks.len() as u64, PAUSES, "not every pause was checked\n{report}");
    for (i, &(paused, later)) in checks.iter().enumerate() {
        assert_eq!(paused, later, "pause {}: the guest counted on while paused\n{report}", i + 1);
        if i > 0 {
            assert!(paused > checks[i - 1].0, "pause {}: the guest did not run after cont\n{report}", i + 1);
        }
    }

    // The guest's own sequence: every number once, in order, from 1.
    let counts: Vec<u64> = section(&case, "== console")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COUNT ")?.trim().parse().ok())
        .collect();
    assert!(counts.len() as u64 > PAUSES, "the guest hardly counted\n{report}");
    for (i, pair) in counts.windows(2).enumerate() {
        assert_eq!(pair[1], pair[0] + 1, "the count went from {} to {} (line {i})\n{report}", pair[0], pair[1]);
    }

    // The monitor announced each change, and why the VM ended.
    let qmp = section(&case, "== qmp");
    let events = |name: &str| qmp.matches(&format!("\"event\": \"{name}\"")).count() as u64;
    assert_eq!(events("STOP"), PAUSES, "STOP events\n{report}");
    assert_eq!(events("RESUME"), PAUSES, "RESUME events\n{report}");
    assert!(qmp.contains("\"reason\": \"host-qmp-quit\""), "no SHUTDOWN host-qmp-quit\n{report}");
    for n in 1..=PAUSES {
        assert!(qmp.contains(&format!("{{\"return\": {{}}, \"id\": {n}}}")), "stop {n} was not answered\n{report}");
    }
}
