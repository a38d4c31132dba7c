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
//! `xtask::bench_fio`, its own rig boot).
//! The full run measures every section in one go (issue 19: one run on a quiet machine),
//! each rig section with its own number of runs (`RIG_RUNS`: a fio or snapshot run takes
//! minutes in the rig); a section that fails says so in the report, the others still run.
//! `--runs N` sets every count; `--quick` takes a few runs and writes to target/bench/quick/
//! instead of docs/; `--no-io` skips the rig sections (the report then says so).

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

/// Runs per host-side measurement (cheap: the start run is a few ms).
const RUNS: usize = 20;
const QUICK_RUNS: usize = 5;
/// Runs per rig section, by section: a rig boot takes seconds to minutes (fio's jobs and
/// the snapshot's restores most), so each gets what its figures need and no more.
const RIG_RUNS: [(&str, usize); 10] = [
    ("boot", 10),
    ("io", 3),
    ("power", 5),
    ("vhost", 3),
    ("snapshot", 10),
    ("firecracker", 5),
    ("hugepages", 5),
    ("netuser", 3),
    ("qcow2", 3),
    ("fio", 2),
];
/// The most runs any rig section takes with `--quick`.
const QUICK_RIG_RUNS: usize = 2;
/// The rig sections a full run measures after the report's own, in this order.
const EXTRA_SECTIONS: [&str; 7] = ["vhost", "snapshot", "firecracker", "hugepages", "netuser", "qcow2", "fio"];
const USAGE: &str =
    "usage: cargo xtask bench [--quick] [--runs N] [--no-io] [--readme] [--only qmp|power|sandbox|clones|firecracker|hugepages|vhost|netuser|snapshot|io|qcow2|fio]";
/// Clones and restores per run for the clones section's p50/p99 (1,000 at the default 20 runs).
const CLONES_PER_RUN: usize = 50;

pub struct Opts {
    /// Runs per host-side measurement.
    runs: usize,
    /// `--runs N`: every rig section's count too, instead of `RIG_RUNS`.
    rig_runs: Option<usize>,
    quick: bool,
    no_io: bool,
    /// Measure one section and splice it into the existing report.
    only: Option<String>,
    /// `--readme`: measure nothing; README's table rebuilt from the report as it is.
    readme: bool,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    if opts.readme {
        let report = host::read(&host::repo_root().join("docs/benchmarks/README.md"))?;
        return refresh_readme(&String::from_utf8_lossy(&report));
    }
    host::ensure_packages()?;
    let microvm = xtask::binary::ensure_static()?;
    let qemu = PathBuf::from("/usr/bin/qemu-system-x86_64");
    let machine = report::Machine::probe(&qemu);
    let runs = opts.runs;
    let rig = |section: &str| opts.rig_runs_of(section);
    let dir = host::repo_root().join("target/bench");
    let guests = local::Guests::write(&dir)?;
    let vmms = [local::Vmm::microvm(&microvm), local::Vmm::qemu(&qemu)];
    if let Some(section) = &opts.only {
        return only_section(section, &vmms, &guests, &dir, (runs, rig(section)));
    }

    eprintln!("[bench] start: {runs} runs per VMM (+1 warm-up)");
    let start = local::start(&vmms, &guests, runs)?;
    eprintln!("[bench] footprint: {} runs per VMM", runs.min(5));
    let footprint = local::footprint(&vmms, &guests, runs.min(5))?;
    let start_trace = local::start_trace(&vmms[0], &guests, runs)?;
    eprintln!("[bench] density: {} VMs per VMM and concurrency", runs * 4);
    let density = local::density(&vmms, &guests, runs * 4)?;
    let boot_runs = rig("boot");
    eprintln!("[bench] boot: {boot_runs} runs per VMM (one rig boot where /dev/kvm cannot boot Linux)");
    let boot = rig_measure("boot", opts.no_io, || boot::run(boot_runs));
    if let Err(e) = &boot {
        eprintln!("[bench] boot not measured: {e}");
    }
    let io = io_figures(rig("io"), opts.no_io);
    eprintln!("[bench] QMP: {runs} stop/cont pairs per VMM");
    let qmp = qmp::run(&vmms, &guests, &dir, runs);
    let power_runs = rig("power");
    eprintln!("[bench] power: {power_runs} runs per configuration (one more rig boot)");
    let power = rig_measure("power", opts.no_io, || power::run(power_runs));

    let results = report::Results {
        machine,
        runs,
        boot_runs,
        power_runs,
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
    eprintln!("[bench] sandbox: {} blocks of {runs} rounds of -sandbox on, off and the floor program", sandbox::BLOCKS);
    let mut text = report::markdown(&results);
    match sandbox::run(&vmms[0], &guests, runs) {
        Ok(figures) => text = report::splice_section(&text, "sandbox", &sandbox::markdown(&figures, runs)),
        Err(e) => eprintln!("[bench] sandbox not measured: {e}"),
    }
    eprintln!("[bench] clones: {} clones and restores", runs * CLONES_PER_RUN);
    let clones = clones::run(&microvm, &dir, runs, runs * CLONES_PER_RUN);
    text = report::splice_section(&text, "clones", &clones::markdown(&clones, runs));
    for section in EXTRA_SECTIONS {
        let n = rig(section);
        let began = std::time::Instant::now();
        eprintln!("[bench] {section}: {n} runs (its own rig boot)");
        let figures = rig_measure(section, opts.no_io, || rig_section(section, &vmms[0], &dir, (runs, n)));
        let figures = figures.unwrap_or_else(|e| {
            eprintln!("[bench] {section} not measured: {e}");
            format!("**Not measured in this run: {e}.**\n")
        });
        eprintln!("[bench] {section} took {:.1} min", began.elapsed().as_secs_f64() / 60.0);
        text = report::splice_section(&text, section, &figures);
    }
    host::write(&out.join("README.md"), &text)?;
    host::write(&out.join("chart.svg"), report::svg(&results))?;
    if !opts.quick {
        refresh_readme(&text)?;
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
    (runs, rig_runs): (usize, usize),
) -> Result<(), String> {
    let text = match section {
        "qmp" => qmp::markdown(&qmp::run(vmms, guests, dir, runs), runs),
        "sandbox" => sandbox::markdown(&sandbox::run(&vmms[0], guests, runs)?, runs),
        "clones" => clones::markdown(&clones::run(&vmms[0].bin, dir, runs, runs * CLONES_PER_RUN), runs),
        "power" => power::markdown(&power::run(rig_runs), rig_runs),
        "io" => xtask::bench_io::run(rig_runs)?,
        other if EXTRA_SECTIONS.contains(&other) => rig_section(other, &vmms[0], dir, (runs, rig_runs))?,
        other => {
            return Err(format!(
                "--only: no section '{other}' (sections: qmp, power, sandbox, clones, firecracker, hugepages, vhost, netuser, snapshot, io, qcow2, fio)"
            ))
        }
    };
    let path = host::repo_root().join("docs/benchmarks/README.md");
    let report = report::splice_section(&String::from_utf8_lossy(&host::read(&path)?), section, &text);
    host::write(&path, &report)?;
    // README's table carries the section's headline figures: its rows follow.
    refresh_readme(&report)?;
    println!("{text}");
    Ok(())
}

/// README's table rebuilt from `report` (the whole report as just written).
fn refresh_readme(report: &str) -> Result<(), String> {
    let readme = host::repo_root().join("README.md");
    let old = String::from_utf8_lossy(&host::read(&readme)?).into_owned();
    host::write(&readme, report::splice_readme(&old, &report::readme_table(report))?)
}

/// One of `EXTRA_SECTIONS`, each its own rig boot of `rig_runs` runs: its report text.
fn rig_section(
    section: &str,
    microvm: &local::Vmm,
    dir: &std::path::Path,
    (runs, rig_runs): (usize, usize),
) -> Result<String, String> {
    Ok(match section {
        "firecracker" => firecracker::markdown(&firecracker::run(rig_runs), rig_runs),
        "hugepages" => hugepages::markdown(&hugepages::run(rig_runs), rig_runs),
        "vhost" => format!("## vhost devices\n\n{}", xtask::bench_vhost::run(rig_runs)?),
        "netuser" => format!(
            "## -netdev user throughput\n\n{}\nWhy the rig's sink sends one byte first, and a 9-round run: \
             [docs/dropin.md](../dropin.md).\n",
            xtask::bench_netuser::run(rig_runs)?
        ),
        "snapshot" => {
            // Then microvm's diff snapshots, on the host's /dev/kvm: host-side runs.
            let diff = snapshot_diff::markdown(&snapshot_diff::run(&microvm.bin, &dir.join("diff"), runs));
            snapshot::markdown(&snapshot::run(rig_runs), rig_runs) + "\n" + &diff
        }
        "qcow2" => format!("## qcow2\n\n{}", xtask::bench_qcow2::run(rig_runs)?),
        "fio" => format!(
            "## fio in the guest\n\n{}\nWhat bounds these figures in the rig, and the narrower runs behind issue 19's \
             engine work: [fio-notes.md](fio-notes.md).\n",
            xtask::bench_fio::run(rig_runs)?
        ),
        other => return Err(format!("no rig section '{other}'")),
    })
}

/// Runs a rig section unless `--no-io` (`skip`), and once more if the rig stalled
/// (`xtask::rig::STALLED`: the rig's own clock stopped, not what the section measures),
/// so one stall costs a section its time, not its figures.
fn rig_measure<T>(section: &str, skip: bool, mut measure: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    if skip {
        return Err("not measured in this run (--no-io)".into());
    }
    match measure() {
        Err(e) if e.contains(xtask::rig::STALLED) => {
            eprintln!("[bench] {section}: the rig stalled, measuring it again: {}", e.lines().next().unwrap_or(""));
            measure()
        }
        other => other,
    }
}

/// The virtio I/O figures (xtask::bench_io, its own rig boot), unless --no-io.
fn io_figures(runs: usize, skip: bool) -> Result<String, String> {
    eprintln!("[bench] I/O: {runs} runs per VMM (xtask::bench_io, one more rig boot)");
    rig_measure("io", skip, || xtask::bench_io::run(runs))
}

impl Opts {
    /// Runs for rig section `section`: `--runs N`, else its `RIG_RUNS` entry (at most
    /// `QUICK_RIG_RUNS` with `--quick`).
    fn rig_runs_of(&self, section: &str) -> usize {
        let default = RIG_RUNS.iter().find(|(s, _)| *s == section).map_or(RIG_RUNS[0].1, |(_, n)| *n);
        let default = if self.quick { default.min(QUICK_RIG_RUNS) } else { default };
        self.rig_runs.unwrap_or(default)
    }
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts { runs: RUNS, rig_runs: None, quick: false, no_io: false, only: None, readme: false };
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        match arg {
            "--quick" => {
                opts.quick = true;
                opts.runs = QUICK_RUNS;
            }
            "--no-io" => opts.no_io = true,
            "--readme" => opts.readme = true,
            "--only" => opts.only = Some(it.next().ok_or(format!("--only needs a section\n{USAGE}"))?.to_owned()),
            "--runs" | "-n" => {
                let v = it.next().ok_or(format!("--runs needs a value\n{USAGE}"))?;
                let n =
                    v.parse().ok().filter(|&n| n > 0).ok_or(format!("--runs wants a positive integer, not '{v}'"))?;
                opts.runs = n;
                opts.rig_runs = Some(n);
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
        let twelve = parse_args(&args(&["--runs", "12"])).unwrap();
        assert_eq!((twelve.runs, twelve.rig_runs_of("fio"), twelve.rig_runs_of("boot")), (12, 12, 12));
        assert!(parse_args(&args(&["--runs", "0"])).is_err());
        assert!(parse_args(&args(&["start"])).is_err());
        assert!(parse_args(&args(&["--readme"])).unwrap().readme && !parse_args(&args(&[])).unwrap().readme);
    }

    #[test]
    fn every_rig_section_has_its_own_count() {
        let full = parse_args(&args(&[])).unwrap();
        let quick = parse_args(&args(&["--quick"])).unwrap();
        for section in EXTRA_SECTIONS.iter().chain(&["boot", "io", "power"]) {
            let n = RIG_RUNS.iter().find(|(s, _)| s == section).map(|(_, n)| *n);
            assert_eq!(Some(full.rig_runs_of(section)), n, "{section} has no RIG_RUNS entry");
            assert!(quick.rig_runs_of(section) <= QUICK_RIG_RUNS);
        }
        assert_eq!(full.rig_runs_of("fio"), 2);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4, 1, 3, 2]), Some(3));
        assert_eq!(median::<u64>(&[]), None);
    }
}
