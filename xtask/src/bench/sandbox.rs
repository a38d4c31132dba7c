//! The start run against its floor (issue 19), with the seccomp filters on and off: the
//! tiny guest (it triple-faults at once, so the VM ends) under microvm with `-sandbox on`
//! (the default) and `-sandbox off`, and under `kvm-floor` (floor.c: the same KVM calls
//! microvm makes for this guest and nothing else). Process CPU from exec to the first
//! KVM_RUN (`--report-start-time`) and from exec to exit (wait4's rusage), wall exec to
//! exit. The three run in turn, the order rotating every round, so drift of the shared
//! machine hits all alike; microvm/floor is the median of each round's own ratio over a
//! block of rounds (issue 19's measure: 20), taken [`BLOCKS`] times, as one block's figure
//! moves by several percent from block to block on a quiet machine. Each
//! measured run comes right after an unmeasured one of the same command line: what ran just
//! before moves a run's CPU (microvm's by ~150 µs after another program, the floor's by
//! ~25: docs/start-path.md), and a host starting VMs runs one microvm after another.
//! CPU and wall to exit come from runs without `--report-start-time` (its per-step clock
//! reads and its report cost microvm ~3.5% of the run, which the floor does not pay);
//! each round also runs both modes with it, for the CPU to the first KVM_RUN.
//! Both programs run from copies made for the section (an installed binary's state): how
//! a binary came into the page cache moves its start by up to ~5% (written by a copy or
//! read back by exec's faults, docs/start-path.md), so the two must come the same way.
//! Firecracker's published target for its start (to API socket) is 8 CPU ms.

use super::local::{cpu_to_first_run_ms, wait4, Guests, Vmm};
use super::median;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Blocks of `runs` rounds the section takes; each block gives CPU to exit over the floor's
/// as the median of its rounds' own ratios.
pub const BLOCKS: usize = 10;

/// Medians of one mode, ms (CPU to the first KVM_RUN: microvm only).
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    pub cpu_to_run: f64,
    pub cpu_to_exit: f64,
    pub wall_to_exit: f64,
    /// This mode's CPU to exit over the floor's: the median of the blocks' figures (each
    /// the median of its rounds' own ratios), and the lowest and highest block.
    pub over_floor: f64,
    pub over_floor_range: (f64, f64),
}

/// What one round runs: microvm with each `-sandbox` mode, the floor, then microvm again
/// with `--report-start-time` in each mode (the CPU to the first KVM_RUN).
const MODES: [&str; 5] = ["on", "off", "floor", "on", "off"];
/// Runs from this index on report their start time.
const REPORTING: usize = 3;

/// One run: (CPU to first KVM_RUN, CPU to exit, wall to exit), ms.
type Sample = (f64, f64, f64);

pub fn run(microvm: &Vmm, g: &Guests, runs: usize) -> Result<[Figures; 3], String> {
    let dir = g.exit.parent().ok_or("the guest has no directory")?;
    let floor = installed(&build_floor(dir)?, &dir.join("start-floor"))?;
    let microvm = &microvm.with_bin(installed(&microvm.bin, &dir.join("start-microvm"))?);
    let mut samples: [Vec<Sample>; 5] = Default::default();
    let err_path = g.exit.with_extension("sandbox.stderr");
    // One warm-up round, then `BLOCKS` blocks of `runs` rounds.
    // Each run's stderr in a file of its own (read back for the reported start time).
    let fresh_err = || File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()));
    for round in 0..=runs * BLOCKS {
        for i in 0..MODES.len() {
            let mode = (round + i) % MODES.len();
            let err = fresh_err()?;
            let mut c = if MODES[mode] == "floor" {
                let mut c = Command::new(&floor);
                c.arg(&g.exit).stdin(Stdio::null()).stdout(Stdio::null());
                c
            } else {
                let mut c = microvm.command(&g.exit);
                c.args(["-sandbox", MODES[mode]]);
                if mode >= REPORTING {
                    c.arg("--report-start-time");
                }
                c
            };
            c.stderr(err);
            // The lead-in: the same command line once, unmeasured.
            run_one(&mut c, &err_path, MODES[mode], mode >= REPORTING)?;
            c.stderr(fresh_err()?);
            let sample = run_one(&mut c, &err_path, MODES[mode], mode >= REPORTING)?;
            if round > 0 {
                samples[mode].push(sample);
            }
        }
    }
    let _ = std::fs::remove_file(&err_path);
    let floor_cpu: Vec<f64> = samples[2].iter().map(|s| s.1).collect();
    let medians =
        |s: &[Sample], f: fn(&Sample) -> f64| median(&s.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN);
    let figures = |plain: &[Sample], reporting: Option<&[Sample]>| {
        let ratios: Vec<f64> = plain.iter().zip(&floor_cpu).map(|(s, f)| s.1 / f).collect();
        let blocks: Vec<f64> = ratios.chunks(runs.max(1)).filter_map(median).collect();
        let lowest = blocks.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = blocks.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Figures {
            cpu_to_run: reporting.map_or(f64::NAN, |r| medians(r, |s| s.0)),
            cpu_to_exit: medians(plain, |s| s.1),
            wall_to_exit: medians(plain, |s| s.2),
            over_floor: median(&blocks).unwrap_or(f64::NAN),
            over_floor_range: (lowest, highest),
        }
    };
    Ok([
        figures(&samples[0], Some(&samples[REPORTING])),
        figures(&samples[1], Some(&samples[REPORTING + 1])),
        figures(&samples[2], None),
    ])
}

fn run_one(c: &mut Command, err_path: &Path, mode: &str, reporting: bool) -> Result<Sample, String> {
    let start = Instant::now();
    let child = c.spawn().map_err(|e| format!("{mode}: {e}"))?;
    let (status, usage) = wait4(child.id())?;
    let wall = super::ms(start.elapsed());
    let stderr = std::fs::read_to_string(err_path).unwrap_or_default();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("{mode} failed (wait status {status:#x}): {stderr}"));
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let to_run = if reporting {
        cpu_to_first_run_ms(&stderr).ok_or(format!("no start time reported: {stderr}"))?
    } else {
        f64::NAN
    };
    Ok((to_run, cpu, wall))
}

/// A fresh copy of `bin` at `to`, written and synced as an installer would: the page
/// cache then holds it as written, whichever way `bin` itself got there (the linker's
/// output, or read back by exec after the cache dropped it).
fn installed(bin: &Path, to: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_file(to);
    std::fs::copy(bin, to).map_err(|e| format!("cannot copy {} to {}: {e}", bin.display(), to.display()))?;
    File::open(to).and_then(|f| f.sync_all()).map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(to.to_path_buf())
}

/// Compiles floor.c (embedded, so the bench needs no source tree layout) next to the guest.
fn build_floor(dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join("kvm-floor.c");
    let bin = dir.join("kvm-floor");
    xtask::host::write(&src, include_str!("floor.c"))?;
    xtask::images::compile_static(&src, &bin)?;
    Ok(bin)
}

pub fn markdown(f: &[Figures; 3], runs: usize) -> String {
    let blocks = BLOCKS;
    let mut out = format!(
        "### Start against the floor, sandbox on and off\n\nThe exit guest under microvm with `-sandbox on` \
         (default) and `off`, and under `kvm-floor` (xtask/src/bench/floor.c, `cc -static`: the same KVM \
         calls microvm makes for this guest, nothing else), both run from copies written and synced for the \
         section (how a binary came into the page cache moves its start by up to ~5%: docs/start-path.md), {blocks} blocks of {runs} rounds of the three in \
         rotating order: each measured run right after an unmeasured one of the same command line (what ran just \
         before moves a start's CPU: docs/start-path.md); medians of process CPU to exit and wall to exit, ms; \
         CPU to exit over the floor's: in each block the median of its rounds' own ratios, here the median of \
         the {blocks} blocks and their range (one block's figure moves by several percent from block to block \
         on a quiet machine); CPU from exec to the first KVM_RUN from one more run of each mode per \
         round with `--report-start-time` (whose clock reads and report the others do not pay). Firecracker's published \
         start target: 8 CPU ms to its API socket.\n\n\
         | run | CPU to first KVM_RUN | CPU to exit | wall to exit | CPU to exit / floor |\n\
         | --- | --- | --- | --- | --- |\n"
    );
    let names = ["microvm `-sandbox on`", "microvm `-sandbox off`", "floor (kvm-floor)"];
    for (i, (name, f)) in names.iter().zip(f).enumerate() {
        let to_run = if f.cpu_to_run.is_nan() { "—".to_string() } else { format!("{:.2}", f.cpu_to_run) };
        let (lo, hi) = f.over_floor_range;
        // The floor's own row is 1 in every block: no range to give.
        let ratio = if i < 2 {
            format!("{:.2}× ({lo:.2}–{hi:.2}×)", f.over_floor)
        } else {
            format!("{:.2}×", f.over_floor)
        };
        out += &format!("| {name} | {to_run} | {:.2} | {:.2} | {ratio} |\n", f.cpu_to_exit, f.wall_to_exit);
    }
    out += &format!(
        "| on − off | {:+.2} | {:+.2} | {:+.2} | |\n",
        f[0].cpu_to_run - f[1].cpu_to_run,
        f[0].cpu_to_exit - f[1].cpu_to_exit,
        f[0].wall_to_exit - f[1].wall_to_exit
    );
    for (mode, m) in ["on", "off"].iter().zip(f) {
        let what = format!("start: CPU to exit, -sandbox {mode}, QEMU column = floor program (ms)");
        out += &xtask::headline::line(&what, Some(m.cpu_to_exit), Some(f[2].cpu_to_exit), true);
    }
    // The ratio moves with what else runs on the machine (docs/start-path.md): say how busy it was.
    if let Some(load) = super::load_average() {
        out += &format!("\nLoad average when the section ended: {load}.\n");
    }
    out
}
