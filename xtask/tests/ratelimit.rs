//! Issue 17, acceptance 4 (rate limiter) with a real Linux guest (xtask/scenarios/
//! ratelimit.sh): a drive limited to 10 MB/s measures 10 ± 1 MB/s with O_DIRECT `dd` in
//! the guest, and one limited to 100 requests/s measures 100 ± 10, each limit given
//! through QEMU's `-drive throttling.*` (or its legacy spelling) and through Firecracker's
//! `rate_limiter` in a config file. Runs directly where /dev/kvm can boot Linux, else in
//! the nested rig.

use xtask::scenario::run_test_case;

/// The `RATELIMIT key=N` figure of a section.
fn figure(section: &str, key: &str) -> Option<u64> {
    let prefix = format!("RATELIMIT {key}=");
    section.lines().find_map(|l| l[l.find(&prefix)? + prefix.len()..].trim().parse().ok())
}

#[test]
fn limited_drives_measure_their_limit_in_the_guest() {
    let Some(case) = run_test_case("ratelimit") else {
        return;
    };
    let report = case.report();
    for front_end in ["qemu", "firecracker"] {
        let bps = case.section(&format!("{front_end} bps"));
        let measured = figure(bps, "bps").unwrap_or_else(|| panic!("{front_end}: no bps figure\n{report}"));
        assert!(
            (9_000_000..=11_000_000).contains(&measured),
            "{front_end}: 10 MB/s limit measured {measured} B/s\n{report}"
        );
        let iops = case.section(&format!("{front_end} iops"));
        let measured = figure(iops, "iops").unwrap_or_else(|| panic!("{front_end}: no iops figure\n{report}"));
        assert!((90..=110).contains(&measured), "{front_end}: 100 ops/s limit measured {measured}\n{report}");
        for limit in ["bps", "iops"] {
            let exit = format!("VMM-EXIT-{front_end}-{limit} status=0");
            assert!(case.output.contains(&exit), "{exit}\n{report}");
        }
    }
}
