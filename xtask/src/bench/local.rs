//! Benchmarks on the host's /dev/kvm with tiny PVH guests (crates/tiny-guest), which any
//! /dev/kvm runs, even the emulated one of the project's machines.
//!
//! Both VMMs boot the same ELF. The "ends at once" guest triple-faults: QEMU's microvm has
//! no i8042 to reset through, and with -no-reboot a triple fault ends QEMU (status 0), as
//! it ends microvm.

use super::median;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Guest RAM of every tiny VM: QEMU's and microvm's default.
pub const MEM_MIB: u64 = 128;

pub struct Guests {
    /// Triple-faults as its first instructions.
    pub exit: PathBuf,
    /// Halts with interrupts off, for good.
    pub idle: PathBuf,
}

impl Guests {
    pub fn write(dir: &Path) -> Result<Guests, String> {
        xtask::host::mkdir(dir)?;
        let g = Guests { exit: dir.join("triple-fault.elf"), idle: dir.join("halt.elf") };
        xtask::host::write(&g.exit, tiny_guest::serial_then_triple_fault(""))?;
        xtask::host::write(&g.idle, tiny_guest::halt_forever())?;
        Ok(g)
    }
}

pub struct Vmm {
    pub name: &'static str,
    pub bin: PathBuf,
    args: &'static [&'static str],
}

impl Vmm {
    /// No serial port, no RTC, nothing on the command line QEMU's version below lacks.
    pub fn microvm(bin: &Path) -> Vmm {
        Vmm { name: "microvm", bin: bin.into(), args: &["-M", "microvm", "-m", "128m", "-nodefaults"] }
    }

    /// QEMU's microvm cut down to what microvm has: no ACPI, RTC, ISA serial or option
    /// ROMs; `-arch-capabilities`: QEMU 7.2 fails on this host's emulated /dev/kvm without.
    pub fn qemu(bin: &Path) -> Vmm {
        Vmm {
            name: "QEMU",
            bin: bin.into(),
            args: &[
                "-M",
                "microvm,acpi=off,rtc=off,isa-serial=off,x-option-roms=off",
                "-accel",
                "kvm",
                "-cpu",
                "host,-arch-capabilities",
                "-m",
                "128m",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ],
        }
    }

    /// The same VMM and options, run from `bin`.
    pub(super) fn with_bin(&self, bin: PathBuf) -> Vmm {
        Vmm { name: self.name, bin, args: self.args }
    }

    pub(super) fn command(&self, kernel: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(self.args).arg("-kernel").arg(kernel).stdin(Stdio::null()).stdout(Stdio::null());
        c
    }

    pub fn describe(&self) -> String {
        format!("{} {} -kernel GUEST", self.bin.display(), self.args.join(" "))
    }
}

/// One run: spawn to exit.
#[derive(Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss_kib: u64,
}

/// Runs the VMM to its end; stderr goes to a file so it can never block on a full pipe.
fn run_once(vmm: &Vmm, kernel: &Path) -> Result<Sample, String> {
    let err_path = kernel.with_extension(format!("{}.{:?}.stderr", vmm.name, std::thread::current().id()));
    let err_file = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
    let start = Instant::now();
    let child = vmm.command(kernel).stderr(err_file).spawn().map_err(|e| format!("{}: {e}", vmm.bin.display()))?;
    let (status, usage) = wait4(child.id())?;
    let wall = start.elapsed();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("{} failed (wait status {status:#x}): {}\n{stderr}", vmm.name, vmm.describe()));
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Ok(Sample { wall, cpu: tv(usage.ru_utime) + tv(usage.ru_stime), max_rss_kib: usage.ru_maxrss as u64 })
}

/// wait4(2): the exit status and the child's own rusage (std's wait gives no rusage).
pub(super) fn wait4(pid: u32) -> Result<(libc::c_int, libc::rusage), String> {
    let mut status = 0;
    // SAFETY: rusage is plain data, all-zero is valid; the pointers are to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: see above; pid is our unreaped child (its Child handle is dropped unwaited).
        if unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) } == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {err}"));
        }
    }
}

/// Medians of the start runs of one VMM.
pub struct Start {
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub max_rss_mib: f64,
}

/// exec to exit of the triple-fault guest, the VMMs alternating so that any drift of the
/// machine hits both alike; one warm-up run each (page cache, binary loading).
pub fn start(vmms: &[Vmm; 2], g: &Guests, runs: usize) -> Result<[Start; 2], String> {
    let mut samples: [Vec<Sample>; 2] = Default::default();
    for vmm in vmms {
        run_once(vmm, &g.exit)?;
    }
    for _ in 0..runs {
        for (vmm, s) in vmms.iter().zip(samples.iter_mut()) {
            s.push(run_once(vmm, &g.exit)?);
        }
    }
    Ok(samples.map(|s| {
        let m = |f: fn(&Sample) -> f64| median(&s.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN);
        Start {
            wall_ms: m(|s| super::ms(s.wall)),
            cpu_ms: m(|s| super::ms(s.cpu)),
            max_rss_mib: m(|s| s.max_rss_kib as f64 / 1024.0),
        }
    }))
}

/// microvm's own view of the start guest, from runs apart from the timed ones (the trace
/// adds a port device and a file write), ms.
pub struct StartTrace {
    /// Medians of -trace-boot's vmm_init_end and guest_exit (since process start).
    pub init: f64,
    pub exit: f64,
    /// Process CPU from exec to the first KVM_RUN (--report-start-time): median and best.
    pub cpu_to_run: f64,
    pub cpu_to_run_best: f64,
}

pub fn start_trace(microvm: &Vmm, g: &Guests, runs: usize) -> Result<StartTrace, String> {
    let json = g.exit.with_extension("trace.json");
    let (mut init, mut exit, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut c = microvm.command(&g.exit);
        let out =
            c.arg("-trace-boot-json").arg(&json).arg("--report-start-time").output().map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e} ({})", json.display(), out.status))?;
        init.extend(super::boot::json_number(&text, "vmm_init_end_ms"));
        exit.extend(super::boot::json_number(&text, "guest_exit_ms"));
        cpu.extend(cpu_to_first_run_ms(&String::from_utf8_lossy(&out.stderr)));
    }
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    Ok(StartTrace {
        init: nan(median(&init)),
        exit: nan(median(&exit)),
        cpu_to_run: nan(median(&cpu)),
        cpu_to_run_best: cpu.iter().copied().fold(f64::NAN, f64::min),
    })
}

/// From "microvm: first KVM_RUN after N us wall (since main), M us CPU (since exec)".
pub(super) fn cpu_to_first_run_ms(stderr: &str) -> Option<f64> {
    let line = stderr.lines().find(|l| l.contains("first KVM_RUN after"))?;
    let before_cpu = line.split(" us CPU").next()?;
    let us: f64 = before_cpu.rsplit(' ').next()?.parse().ok()?;
    Some(us / 1e3)
}

/// Medians, MiB, of a VMM's resident memory while the halting guest idles.
pub struct Footprint {
    pub total_mib: f64,
    /// Resident pages of the guest RAM mapping: what the guest (and the loader) touched.
    pub guest_mib: f64,
    /// total - guest: the VMM's own memory (code, heap, stacks, libraries).
    pub vmm_mib: f64,
}

/// How long a VM gets to settle before its memory is read; reading stops earlier once two
/// readings 100 ms apart agree.
const SETTLE: Duration = Duration::from_secs(3);

pub fn footprint(vmms: &[Vmm; 2], g: &Guests, runs: usize) -> Result<[Footprint; 2], String> {
    let mut out = Vec::new();
    for vmm in vmms {
        let mut samples = Vec::new();
        for _ in 0..runs {
            let mut child = vmm.command(&g.idle).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
            let smaps = format!("/proc/{}/smaps", child.id());
            let deadline = Instant::now() + SETTLE;
            std::thread::sleep(Duration::from_millis(300));
            let mut last = None;
            let reading = loop {
                let now = std::fs::read_to_string(&smaps).ok().and_then(|t| rss_split(&t));
                if now.is_some() && (now == last || Instant::now() > deadline) {
                    break now;
                }
                last = now;
                std::thread::sleep(Duration::from_millis(100));
            };
            let _ = child.kill();
            let exited = child.wait().map_err(|e| e.to_string())?;
            let (total, guest) = reading.ok_or(format!(
                "{}: no {MEM_MIB} MiB guest RAM mapping in {smaps} (exited early? {exited})",
                vmm.name
            ))?;
            samples.push((total, guest));
        }
        let m =
            |f: fn(&(u64, u64)) -> u64| median(&samples.iter().map(f).collect::<Vec<_>>()).unwrap_or(0) as f64 / 1024.0;
        out.push(Footprint { total_mib: m(|s| s.0), guest_mib: m(|s| s.1), vmm_mib: m(|s| s.0 - s.1) });
    }
    Ok(out.try_into().map_err(|_| "two VMMs")?)
}

/// (total Rss, Rss of the guest RAM mapping), KiB, from /proc/PID/smaps. The guest RAM is
/// the one mapping of 128 MiB to 128 MiB + 4 MiB (QEMU adds alignment and guard pages).
fn rss_split(smaps: &str) -> Option<(u64, u64)> {
    let (mut total, mut guest, mut size) = (0, None, 0);
    for line in smaps.lines() {
        let kib = |key: &str| line.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok();
        if let Some(s) = kib("Size:") {
            size = s;
        } else if let Some(rss) = kib("Rss:") {
            total += rss;
            if (MEM_MIB * 1024..=(MEM_MIB + 4) * 1024).contains(&size) {
                guest = Some(guest.unwrap_or(0) + rss);
            }
        }
    }
    guest.map(|g| (total, g))
}

/// Tiny VMs started and ended per second, `at_once` of them running at a time.
pub struct Density {
    pub at_once: usize,
    pub per_sec: [f64; 2],
}

pub const CONCURRENCY: [usize; 3] = [1, 2, 8];

pub fn density(vmms: &[Vmm; 2], g: &Guests, total: usize) -> Result<Vec<Density>, String> {
    let mut out = Vec::new();
    for at_once in CONCURRENCY {
        let mut per_sec = [0.0; 2];
        for (vmm, rate) in vmms.iter().zip(per_sec.iter_mut()) {
            let next = AtomicUsize::new(0);
            let start = Instant::now();
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..at_once)
                    .map(|_| {
                        s.spawn(|| {
                            while next.fetch_add(1, Ordering::Relaxed) < total {
                                run_once(vmm, &g.exit)?;
                            }
                            Ok::<(), String>(())
                        })
                    })
                    .collect();
                workers.into_iter().try_for_each(|w| w.join().map_err(|_| "worker panicked".to_string())?)
            })?;
            *rate = total as f64 / start.elapsed().as_secs_f64();
        }
        out.push(Density { at_once, per_sec });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_to_first_run_is_read_from_the_report_line() {
        let line = "microvm: first KVM_RUN after 1012 us wall (since main), 1734 us CPU (since exec)\n";
        assert_eq!(cpu_to_first_run_ms(line), Some(1.734));
        assert_eq!(cpu_to_first_run_ms("microvm: something else\n"), None);
    }

    #[test]
    fn guest_ram_is_split_from_the_rest() {
        let smaps = "55d0-55d1 r-xp 0 08:01 1 /usr/bin/qemu\nSize: 8000 kB\nRss: 6000 kB\n\
                     7f00-7f08 rw-p 0 00:00 0\nSize: 133120 kB\nRss: 300 kB\n\
                     7f09-7f10 rw-p 0 00:00 0\nSize: 262144 kB\nRss: 10 kB\n";
        assert_eq!(rss_split(smaps), Some((6310, 300)));
        assert_eq!(rss_split("x\nSize: 4 kB\nRss: 4 kB\n"), None);
    }
}
