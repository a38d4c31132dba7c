//! The seccomp filters' cost at start: microvm with `-sandbox on` (the default) against
//! `-sandbox off`, same tiny guest (it triple-faults at once, so the VM ends): process CPU
//! from exec to the first KVM_RUN (`--report-start-time`) and from exec to exit (wait4's
//! rusage), and wall exec to exit; the two modes alternate so drift hits both alike.
//! Firecracker's published target for its start (to API socket) is 8 CPU ms.

use super::local::{cpu_to_first_run_ms, wait4, Guests, Vmm};
use super::median;
use std::fs::File;
use std::time::Instant;

/// Medians of one mode, ms.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    pub cpu_to_run: f64,
    pub cpu_to_exit: f64,
    pub wall_to_exit: f64,
}

const MODES: [&str; 2] = ["on", "off"];

pub fn run(microvm: &Vmm, g: &Guests, runs: usize) -> Result<[Figures; 2], String> {
    let mut samples: [Vec<(f64, f64, f64)>; 2] = Default::default();
    let err_path = g.exit.with_extension("sandbox.stderr");
    // One warm-up run each, then alternate.
    for round in 0..=runs {
        for (mode, s) in MODES.iter().zip(samples.iter_mut()) {
            let err = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
            let mut c = microvm.command(&g.exit);
            c.args(["-sandbox", mode, "--report-start-time"]).stderr(err);
            let start = Instant::now();
            let child = c.spawn().map_err(|e| format!("microvm: {e}"))?;
            let (status, usage) = wait4(child.id())?;
            let wall = super::ms(start.elapsed());
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                return Err(format!("microvm -sandbox {mode} failed (wait status {status:#x}): {stderr}"));
            }
            let tv = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
            let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
            let to_run = cpu_to_first_run_ms(&stderr).ok_or(format!("no start time reported: {stderr}"))?;
            if round > 0 {
                s.push((to_run, cpu, wall));
            }
        }
    }
    let _ = std::fs::remove_file(&err_path);
    Ok(samples.map(|s| {
        let m = |f: fn(&(f64, f64, f64)) -> f64| median(&s.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN);
        Figures { cpu_to_run: m(|s| s.0), cpu_to_exit: m(|s| s.1), wall_to_exit: m(|s| s.2) }
    }))
}

pub fn markdown(f: &[Figures; 2], runs: usize) -> String {
    let mut out = format!(
        "### Sandbox: the seccomp filters at start\n\nmicrovm with the exit guest, `-sandbox on` (default) \
         against `off`, medians of {runs} runs each (alternating): process CPU from exec to the first KVM_RUN \
         and to exit, wall to exit, ms. Firecracker's published start target: 8 CPU ms to its API socket.\n\n\
         | `-sandbox` | CPU to first KVM_RUN | CPU to exit | wall to exit |\n| --- | --- | --- | --- |\n"
    );
    for (mode, f) in MODES.iter().zip(f) {
        out += &format!("| {mode} | {:.2} | {:.2} | {:.2} |\n", f.cpu_to_run, f.cpu_to_exit, f.wall_to_exit);
    }
    out += &format!(
        "| on − off | {:+.2} | {:+.2} | {:+.2} |\n",
        f[0].cpu_to_run - f[1].cpu_to_run,
        f[0].cpu_to_exit - f[1].cpu_to_exit,
        f[0].wall_to_exit - f[1].wall_to_exit
    );
    out
}
