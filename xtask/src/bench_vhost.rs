//! vhost benchmark (`cargo xtask bench --only vhost`), microvm against QEMU's
//! `-M microvm` in ONE rig run (scenario bench-vhost): vsock stream MB/s (64 MiB each
//! way at once), virtio-fs sequential write/read MB/s and files created per second with
//! the same virtiofsd, and TCP MB/s with vhost-net off and on. Prints numbers, no
//! threshold.

use crate::bench_io::parse;
use crate::host::Result;
use crate::scenario;

/// Figures as the guest names them (guest/rootfs/tests/bench-vhost), with their labels.
const FIGURES: [(&str, &str); 6] = [
    ("vsock-both-ways", "vsock, 64 MiB each way at once (MB/s)"),
    ("fs-write", "virtio-fs sequential write, 64 MiB (MB/s)"),
    ("fs-read", "virtio-fs sequential read, 64 MiB, cold (MB/s)"),
    ("fs-create", "virtio-fs files created per second"),
    ("tcp-guest-to-host", "TCP guest → rig, 64 MiB (MB/s)"),
    ("tcp-host-to-guest", "TCP rig → guest, 64 MiB (MB/s)"),
];
const SETUPS: [&str; 4] = ["microvm-vhost-off", "microvm-vhost-on", "qemu-vhost-off", "qemu-vhost-on"];

/// Runs the scenario (`runs` rounds) and returns a Markdown table of medians.
pub fn run(runs: usize) -> Result<String> {
    let runs = runs.max(1).to_string();
    Ok(table(&figures_of("bench-vhost", &runs)?, &runs))
}

/// Runs `scenario` (`runs` rounds, BENCH_RUNS) and returns its BENCH-IO samples.
pub fn figures_of(scenario: &str, runs: &str) -> Result<Vec<(String, String, f64)>> {
    let mut live = |s: &str| eprint!("{s}");
    let session = scenario::run(&[scenario], &[("BENCH_RUNS", runs)], &mut live)?
        .ok_or("MICROVM_TEST_MODE=skip: no benchmark")?;
    let case =
        session.cases.into_iter().find(|c| c.name == scenario).ok_or(format!("{scenario} printed no markers"))?;
    if case.status != Some(0) {
        return Err(format!("{scenario} failed\n{}", case.report()));
    }
    let samples = parse(&case.output);
    if samples.is_empty() {
        return Err(format!("{scenario}: no BENCH-IO figures\n{}", case.report()));
    }
    Ok(samples)
}

fn table(samples: &[(String, String, f64)], runs: &str) -> String {
    let header = format!(
        "| vhost devices, median of {runs} (rig clock) | microvm, vhost-net off | microvm, vhost-net on | \
         QEMU, vhost-net off | QEMU, vhost-net on |"
    );
    let mut t = medians_table(samples, &header, &SETUPS, &FIGURES);
    // With vhost-net on for both: the kernel's vhost on every device that has it.
    for (fig, what) in [
        ("vsock-both-ways", "vhost: vsock, 64 MiB each way at once (MB/s)"),
        ("fs-read", "vhost: virtio-fs sequential read, 64 MiB, cold (MB/s)"),
        ("tcp-host-to-guest", "vhost: TCP rig → guest, vhost-net on (MB/s)"),
    ] {
        let median = |setup: &str| crate::bench_io::median(samples, setup, fig);
        t += &crate::headline::line(what, median("microvm-vhost-on"), median("qemu-vhost-on"), false);
    }
    t += "\nThe same guest under both (xtask/scenarios/bench-vhost.sh): the minimal kernel, 1 vCPU, 512 MiB \
          in a shared memfd, vhost-vsock (the rig's kernel), virtio-fs through the same virtiofsd \
          (--cache=auto), virtio-net on a tap with vhost=off and vhost=on. vsock: the rig's vsockio; \
          files: `dd` with 1 MiB blocks (fsync on write, caches dropped before the read); TCP: busybox \
          `nc`. vsock and virtio-fs figures do not depend on vhost-net: the two columns of a VMM are two \
          samples of them. Times by the guest's /proc/uptime.\n";
    t
}

/// A Markdown table under `header` (one column per set-up): for each figure, the median
/// of its samples under each set-up ("–" where there is none).
pub fn medians_table(
    samples: &[(String, String, f64)],
    header: &str,
    setups: &[&str],
    figures: &[(&str, &str)],
) -> String {
    let median = |setup: &str, fig: &str| crate::bench_io::median(samples, setup, fig);
    let mut t = format!("{header}\n| --- |{}\n", " ---: |".repeat(setups.len()));
    for (fig, label) in figures {
        let cells: Vec<String> =
            setups.iter().map(|s| median(s, fig).map_or("–".to_string(), |x| format!("{x:.1}"))).collect();
        t += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians_per_setup_and_figure() {
        let text = "== bench-io vmm=microvm-vhost-on run=1\nBENCH-IO fs-read 80.0\nBENCH-IO fs-create 400\n\
                    == bench-io vmm=qemu-vhost-on run=1\nBENCH-IO fs-read 70.5\n";
        let t = super::table(&crate::bench_io::parse(text), "1");
        assert!(t.contains("| virtio-fs sequential read, 64 MiB, cold (MB/s) | – | 80.0 | – | 70.5 |"), "{t}");
        assert!(t.contains("| virtio-fs files created per second | – | 400.0 | – | – |"), "{t}");
    }
}
