//! Huge pages with a real Linux guest (issue 19 item 2; xtask/scenarios/hugepages.sh): the
//! minimal kernel boots with its 256 MiB on a hugetlb memfd, writes 128 MiB into a tmpfs,
//! and the VMM's RAM mapping is on 2 MiB pages holding 128 of the pool's pages; the same
//! guest on default memory is on 4 KiB pages and holds none; a pool too small for the
//! guest is one line before it runs. One rig boot.

use xtask::scenario::{run_test_case as run, Case};

/// `key=value` of every line starting with `prefix`.
fn runs<'a>(case: &'a Case, prefix: &str) -> Vec<Vec<(&'a str, &'a str)>> {
    let lines = case.output.lines().filter_map(|l| l.strip_prefix(prefix));
    lines.map(|rest| rest.split_whitespace().filter_map(|kv| kv.split_once('=')).collect()).collect()
}

fn get<'a>(run: &[(&'a str, &'a str)], key: &str) -> &'a str {
    run.iter().find(|(k, _)| *k == key).map_or("", |(_, v)| v)
}

#[test]
fn a_linux_guest_runs_on_huge_pages_and_a_short_pool_is_one_line() {
    let Some(case) = run("hugepages") else { return };
    let report = case.report();
    assert_eq!(case.status, Some(0), "{report}");
    let all = runs(&case, "HUGE-RUN ");
    assert_eq!(all.len(), 2, "one run per mode\n{report}");
    for run in &all {
        let mode = get(run, "mode");
        assert_eq!(get(run, "status"), "0", "{mode}: microvm did not exit 0\n{report}");
        assert!(get(run, "touch").parse::<f64>().is_ok(), "{mode}: the guest did not write its 128 MiB\n{report}");
        let (page, held) = if mode == "huge" { ("2048", "128") } else { ("4", "0") };
        assert_eq!(get(run, "pagekib"), page, "{mode}: the RAM mapping's page size\n{report}");
        assert_eq!(get(run, "held"), held, "{mode}: huge pages held while the guest ran\n{report}");
    }
    let short = case.output.lines().find_map(|l| l.strip_prefix("HUGE-SHORT ")).unwrap_or("");
    assert!(short.starts_with("status=1 "), "a short pool must stop microvm: {short}\n{report}");
    assert!(short.contains("not enough free huge pages") && short.contains("128 pages of 2048 kB"), "{short}");
}
