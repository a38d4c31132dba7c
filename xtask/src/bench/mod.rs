//! `cargo xtask bench [--quick] [--runs N]`: microvm against QEMU's `-M microvm`, measured
//! in the same run on this machine, written to docs/benchmarks/README.md (report),
//! docs/benchmarks/chart.svg and the table in README.md's "Benchmarks" section.
//!
//! - start, footprint, density: tiny PVH guests on the host's /dev/kvm (local.rs);
//! - boot: the minimal kernel and Debian's cloud kernel (also under QEMU's -M q35) in the
//!   nested rig, or directly where /dev/kvm boots Linux (boot.rs, scenarios/bench-boot.sh);
//! - I/O: virtio-blk and virtio-net figures (`xtask::bench_io`, its own rig boot);
//! - QMP: round trips, stop/cont to event, the monitor's memory (qmp.rs);
//! - sandbox: start CPU with the seccomp filters on and off, against the floor program's
//!   (the same KVM calls and nothing else, floor.c), as microvm/floor (sandbox.rs);
//! - clones: one snapshot restored and cloned over and over, against a fresh start and
//!   QEMU's `-incoming` (clones.rs);
//! - power: the cloud kernel with acpi=on against acpi=off and QEMU's microvm,acpi=on, to
//!   the init marker and to exit after poweroff (power.rs, scenarios/bench-power.sh).
//!
//! `--only qmp` / `--only power` / `--only sandbox` / `--only io` (the I/O rig boot, each
//! block engine against QEMU's same `aio=`) measures that section alone and rewrites
//! only it in the report; so do `--only vhost` (vsock, virtio-fs, vhost-net against QEMU:
//! `xtask::bench_vhost`, its own rig boot), `--only netuser` (TCP over `-netdev user`,
//! passt against QEMU's libslirp: `xtask::bench_netuser`, its own rig boot) and `--only
//! snapshot` (save and restore against QEMU's migration to a file, snapshot.rs, its own rig
//! boot; then microvm's diff snapshots on the host's /dev/kvm, snapshot_diff.rs) and
//! `--only qcow2` (the disk figures on raw and on qcow2, microvm's and QEMU's:
//! `xtask::bench_qcow2`, its own rig boot, only with --only), `--only hugepages` (a Linux boot and a memory-touching workload on 2 MiB pages and on
//! default memory, hugepages.rs, its own rig boot) and `--only firecracker` (boot and
//! restore through Firecracker's API against QMP, firecracker.rs, its own rig boot) and
//! `--only fio` (fio in a Linux guest on each block engine against QEMU's same `aio=`:
//! `xtask::bench_fio`, its own rig boot), which the full run leaves out.
//! `--quick` takes a few runs and writes to target/bench/quick/ instead of docs/;
//! `--no-io` skips the I/O rig boot (the report then says so).

mod boot;
mod clones;
mod firecracker;
mod hugepages;
mod local;
mod power;
mod qmp;
mod report;
mod sandbox;
mod snapshot;
mod snapshot_diff;

use std::path::PathBuf;
use std::time::Duration;
use xtask::host;

/// Runs per measurement: host-side ones are cheap, rig boots take a second or more each.
const RUNS: (usize, usize) = (20, 10);
const QUICK_RUNS: (usize, usize) = (5, 3);
const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--runs N] [--no-io] [--only qmp|power|sandbox|clones|firecracker|hugepages|vhost|netuser|snapshot|io|qcow2|fio]";
/// Clones and restores per run for the clones section's p50/p99 (1,000 at the default 20 runs).
const CLONES_PER_RUN: usize = 50;

pub struct Opts {
    /// (host runs, rig boot runs)
    runs: (usize, usize),
    quick: bool,
    no_io: bool,
    /// Measure one section and splice it into the existing report.
    only: Option<String>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    host::ensure_packages()?;
    let microvm = xtask::binary::ensure_static()?;
    let qemu = PathBuf::from("/usr/bin/qemu-system-x86_64");
    let machine = report::Machine::probe(&qemu);
    let (runs, boot_runs) = opts.runs;
    let dir = host::repo_root().join("target/bench");
    let guests = local::Guests::write(&dir)?;
    let vmms = [local::Vmm::microvm(&microvm), local::Vmm::qemu(&qemu)];
    if let Some(section) = &opts.only {
        return only_section(section, &vmms, &guests, &dir, (runs, boot_runs));
    }

    eprintln!("[bench] start: {runs} runs per VMM (+1 warm-up)");
    let start = local::start(&vmms, &guests, runs)?;
    eprintln!("[bench] footprint: {} runs per VMM", runs.min(5));
    let footprint = local::footprint(&vmms, &guests, runs.min(5))?;
    let start_trace = local::start_trace(&vmms[0], &guests, runs)?;
    eprintln!("[bench] density: {} VMs per VMM and concurrency", runs * 4);
    let density = local::density(&vmms, &guests, runs * 4)?;
    eprintln!("[bench] boot: {boot_runs} runs per VMM (one rig boot where /dev/kvm cannot boot Linux)");
    let boot = boot::run(boot_runs);
    if let Err(e) = &boot {
        eprintln!("[bench] boot not measured: {e}");
    }
    let io = io_figures(boot_runs, opts.no_io);
    eprintln!("[bench] QMP: {runs} stop/cont pairs per VMM");
    let qmp = qmp::run(&vmms, &guests, &dir, runs);
    eprintln!("[bench] power: {boot_runs} runs per configuration (one more rig boot)");
    let power = power::run(boot_runs);

    let results = report::Results {
        machine,
        runs,
        boot_runs,
        vmm_lines: (vmms[0].describe(), vmms[1].describe()),
        start,
        start_trace,
        footprint,
        density,
        boot,
        io,
        qmp,
        power,
    };
    let out = if opts.quick { dir.join("quick") } else { host::repo_root().join("docs/benchmarks") };
    host::mkdir(&out)?;
    eprintln!("[bench] sandbox: {runs} rounds of -sandbox on, off and the floor program");
    let mut text = report::markdown(&results);
    match sandbox::run(&vmms[0], &guests, runs) {
        Ok(figures) => text = report::splice_section(&text, "sandbox", &sandbox::markdown(&figures, runs)),
        Err(e) => eprintln!("[bench] sandbox not measured: {e}"),
    }
    eprintln!("[bench] clones: {} clones and restores", runs * CLONES_PER_RUN);
    let clones = clones::run(&microvm, &dir, runs, runs * CLONES_PER_RUN);
    text = report::splice_section(&text, "clones", &clones::markdown(&clones, runs));
    host::write(&out.join("README.md"), text)?;
    host::write(&out.join("chart.svg"), report::svg(&results))?;
    if !opts.quick {
        let readme = host::repo_root().join("README.md");
        let text = String::from_utf8_lossy(&host::read(&readme)?).into_owned();
        host::write(&readme, report::splice_readme(&text, &report::summary(&results))?)?;
    }
    println!("{}", report::summary(&results));
    println!("report: {}", out.join("README.md").display());
    Ok(())
}

/// `--only SECTION`: measures one section and rewrites it in docs/benchmarks/README.md.
fn only_section(
    section: &str,
    vmms: &[local::Vmm; 2],
    guests: &local::Guests,
    dir: &std::path::Path,
    (runs, boot_runs): (usize, usize),
) -> Result<(), String> {
    let text = match section {
        "qmp" => qmp::markdown(&qmp::run(vmms, guests, dir, runs), runs),
        "sandbox" => sandbox::markdown(&sandbox::run(&vmms[0], guests, runs)?, runs),
        "firecracker" => firecracker::markdown(&firecracker::run(boot_runs), boot_runs),
        "hugepages" => hugepages::markdown(&hugepages::run(boot_runs), boot_runs),
        "clones" => clones::markdown(&clones::run(&vmms[0].bin, dir, runs, runs * CLONES_PER_RUN), runs),
        // Rig boots: as few runs as the boot section takes.
        "power" => power::markdown(&power::run(boot_runs), boot_runs),
        "vhost" => xtask::bench_vhost::run(boot_runs)?,
        "netuser" => xtask::bench_netuser::run(boot_runs)?,
        "snapshot" => {
            let diff = snapshot_diff::markdown(&snapshot_diff::run(&vmms[0].bin, &dir.join("diff"), runs));
            snapshot::markdown(&snapshot::run(boot_runs), boot_runs) + "\n" + &diff
        }
        "io" => xtask::bench_io::run(boot_runs)?,
        "qcow2" => xtask::bench_qcow2::run(boot_runs)?,
        "fio" => xtask::bench_fio::run(boot_runs)?,
        other => {
            return Err(format!(
                "--only: no section '{other}' (sections: qmp, power, sandbox, clones, firecracker, hugepages, vhost, netuser, snapshot, io, qcow2, fio)"
            ))
        }
    };
    let path = host::repo_root().join("docs/benchmarks/README.md");
    let report = String::from_utf8_lossy(&host::read(&path)?).into_owned();
    host::write(&path, report::splice_section(&report, section, &text))?;
    println!("{text}");
    Ok(())
}

/// The virtio I/O figures (xtask::bench_io, its own rig boot), unless --no-io.
fn io_figures(runs: usize, skip: bool) -> Result<String, String> {
    if skip {
        return Err("not measured in this run (--no-io)".into());
    }
    eprintln!("[bench] I/O: {runs} runs per VMM (xtask::bench_io, one more rig boot)");
    xtask::bench_io::run(runs)
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts { runs: RUNS, quick: false, no_io: false, only: None };
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        match arg {
            "--quick" => {
                opts.quick = true;
                opts.runs = QUICK_RUNS;
            }
            "--no-io" => opts.no_io = true,
            "--only" => opts.only = Some(it.next().ok_or(format!("--only needs a section\n{USAGE}"))?.to_owned()),
            "--runs" | "-n" => {
                let v = it.next().ok_or(format!("--runs needs a value\n{USAGE}"))?;
                let n =
                    v.parse().ok().filter(|&n| n > 0).ok_or(format!("--runs wants a positive integer, not '{v}'"))?;
                opts.runs = (n, n);
            }
            _ => return Err(format!("unknown bench argument '{arg}'\n{USAGE}")),
        }
    }
    Ok(opts)
}

/// `/proc/loadavg`'s first three fields: how busy the host was when a section started
/// (rig and wall-clock figures grow with the load of the machine's other users).
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Runs rig scenario `name` with `BENCH_RUNS=runs`, echoing xtask's lines and those that
/// contain `marker` as they come: the one case it printed.
pub fn rig_scenario(name: &str, runs: usize, marker: &str) -> Result<xtask::scenario::Case, String> {
    let runs = runs.to_string();
    let mut pending = String::new();
    let mut live = |s: &str| {
        pending += s;
        while let Some((line, rest)) = pending.split_once('\n') {
            if line.starts_with("[xtask]") || line.contains(marker) {
                eprintln!("{line}");
            }
            pending = rest.to_string();
        }
    };
    let session =
        xtask::scenario::run(&[name], &[("BENCH_RUNS", &runs)], &mut live)?.ok_or("MICROVM_TEST_MODE=skip")?;
    session.cases.into_iter().next().ok_or(format!("{name} printed no @@CASE markers"))
}

/// Median (upper middle of an even count) of values; None if empty.
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> Option<T> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&args(&[])).unwrap().runs, RUNS);
        assert_eq!(parse_args(&args(&["--quick"])).unwrap().runs, QUICK_RUNS);
        assert_eq!(parse_args(&args(&["--runs", "12"])).unwrap().runs, (12, 12));
        assert!(parse_args(&args(&["--runs", "0"])).is_err());
        assert!(parse_args(&args(&["start"])).is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4, 1, 3, 2]), Some(3));
        assert_eq!(median::<u64>(&[]), None);
    }
}
