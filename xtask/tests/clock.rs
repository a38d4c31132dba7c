//! Issue 22, acceptance 1 (the clock) with a real Linux guest (xtask/scenarios/
//! clock-cloud.sh): Debian's cloud kernel saved, then restored 60 s later twice from the
//! one snapshot. With `-incoming file:...,clock=realtime` its wall clock is the host's at
//! once; without, it goes on from the saved instant, about 60 s behind. Neither restore
//! (nor the pause before the save) makes the guest report a soft lockup. Runs directly
//! where /dev/kvm can boot Linux, else in the nested rig.

use xtask::scenario::run_test_case;

/// One `CLOCK-GUEST n=N date=S time=S.U uptime=S host-date=S host-time=S.U` line: the
/// guest's clock and the host's as the scenario read the line.
#[derive(Debug)]
struct Sample {
    n: u64,
    date: i64,
    time: f64,
    uptime: f64,
    host_date: i64,
    host_time: f64,
    /// The host's time taken again right after `host_time`: the difference is what one
    /// stamp costs, about how late the stamp is.
    host_after: Option<f64>,
}

impl Sample {
    /// Guest minus host, seconds: negative when the guest is behind.
    fn offset(&self) -> f64 {
        self.time - self.host_time
    }
}

fn samples(text: &str) -> Vec<Sample> {
    let field = |line: &str, key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key)).map(str::to_owned);
    text.lines()
        .filter_map(|line| {
            let line = &line[line.find("CLOCK-GUEST ")?..];
            Some(Sample {
                n: field(line, "n=")?.parse().ok()?,
                date: field(line, "date=")?.parse().ok()?,
                time: field(line, "time=")?.parse().ok()?,
                uptime: field(line, "uptime=")?.parse().ok()?,
                host_date: field(line, "host-date=")?.parse().ok()?,
                host_time: field(line, "host-time=")?.parse().ok()?,
                host_after: field(line, "host-after=").and_then(|t| t.parse().ok()),
            })
        })
        .collect()
}

/// How far the restored guest's clock may be from the host's with `clock=realtime`,
/// measured. In the rig the guest's wall clock is off the host's from its boot already,
/// by a constant that differs between boots (0.78 and 1.40 s behind in two runs, the same
/// at every line before the save and after the restore), and the stamp is late by the
/// emulated UART, a pipe and a fork (the stamp's own cost there: 15 to 45 ms). The rig's
/// clocks run emulated (TCG), and that boot offset is the guest kernel's own business
/// (it takes its time of day once, early in its boot, which is slow under TCG): a restore
/// can only keep it. So the absolute bound is 2 s, and the acceptance's 1 s is checked,
/// tighter, as `REALTIME_FROM_BOOT` against the offset the same measure gives at boot.
const REALTIME_BOUND: f64 = 2.0;

/// How much the measured offset may change from boot to the `clock=realtime` restore
/// (measured: 0.004 s with the stamp taken first, 0.08 s without): half a second, well
/// under the acceptance's 1 s and well above what the rig's scheduling adds.
const REALTIME_FROM_BOOT: f64 = 0.5;

/// The scenario waits 60 s between the save and the first restore; the second restore
/// starts later still.
const WAIT: f64 = 60.0;

#[test]
fn a_restored_cloud_kernel_guest_keeps_or_catches_up_its_clock_without_a_soft_lockup() {
    let Some(case) = run_test_case("clock-cloud") else {
        return;
    };
    let report = case.report();
    let boot = samples(case.section("console boot"));
    let realtime = samples(case.section("console realtime"));
    let cont = samples(case.section("console continue"));
    let show = |name: &str, s: &[Sample]| {
        for x in s {
            eprintln!(
                "CLOCK {name} n={} guest-date={} host-date={} guest-uptime={} offset={:+.3}s stamp-cost={}",
                x.n,
                x.date,
                x.host_date,
                x.uptime,
                x.offset(),
                x.host_after.map_or("?".into(), |a| format!("{:.3}s", a - x.host_time))
            );
        }
    };
    show("boot", &boot);
    show("realtime", &realtime);
    show("continue", &cont);

    let last_saved = boot.last().unwrap_or_else(|| panic!("no clock lines at boot\n{report}"));
    let boot_offset = last_saved.offset();
    for (name, s) in [("realtime", &realtime), ("continue", &cont)] {
        assert!(s.len() >= 2, "the {name} restore printed too little\n{report}");
        assert!(s[0].n > last_saved.n, "the {name} restore went back: line {}\n{report}", s[0].n);
        assert!(s[0].uptime >= last_saved.uptime, "the {name} restore's uptime went back\n{report}");
    }

    // clock=realtime: the guest's first line after the restore has the host's time.
    let first = &realtime[0];
    assert!(
        first.offset().abs() <= REALTIME_BOUND,
        "clock=realtime: the guest is {:+.3} s off the host's time after the restore (at boot {boot_offset:+.3} s)\n{report}",
        first.offset()
    );
    assert!(
        (first.offset() - boot_offset).abs() <= REALTIME_FROM_BOOT,
        "clock=realtime: the guest's offset from the host went from {boot_offset:+.3} s at boot to {:+.3} s\n{report}",
        first.offset()
    );
    // Its uptime moved forward by the wait as well: kvmclock is the guest's monotonic
    // clock too, so CLOCK_MONOTONIC and CLOCK_REALTIME catch up together.
    assert!(first.uptime - last_saved.uptime >= WAIT - 5.0, "clock=realtime: uptime did not catch up\n{report}");

    // The default: the clock goes on from the saved instant, so the guest is behind by
    // the time since the save (the wait, and the first restore's run, at least).
    let lag = -cont[0].offset();
    assert!(
        (WAIT - 5.0..=WAIT + 240.0).contains(&lag),
        "without clock=realtime the guest should be about {WAIT} s behind; it is {lag:.3} s behind\n{report}"
    );
    assert!(cont[0].uptime - last_saved.uptime < 5.0, "without clock=realtime uptime jumped\n{report}");

    for run in ["boot", "realtime", "continue"] {
        let console = case.section(&format!("console {run}"));
        for bad in ["soft lockup", "watchdog: BUG"] {
            assert!(!console.contains(bad), "{run}: the guest reported '{bad}'\n{report}");
        }
        assert!(case.output.contains(&format!("VMM-EXIT-{run} status=0")), "{run}\n{report}");
    }
    eprintln!(
        "CLOCK-RESULT boot offset {boot_offset:+.3} s; clock=realtime {:+.3} s; default {:+.3} s",
        first.offset(),
        cont[0].offset()
    );
}
