//! The nested rig: where this host's /dev/kvm cannot boot Linux (no svm/vmx, see
//! PLATFORM-KVM.md), run a QEMU VM ("L2") under TCG with an emulated EPYC CPU that has
//! SVM; its kernel (Debian's cloud kernel) loads kvm_amd and gets a real /dev/kvm, and
//! microvm runs inside it booting real guests through real KVM.
//!
//! Host side: pack an uncompressed initramfs (decompressing it under TCG would cost more
//! than reading it), start QEMU, stream its serial console to a log and a callback,
//! enforce a timeout, and hand back the console text.

use crate::cpio::Cpio;
use crate::host::{self, Result};
use crate::images::{cloud::CloudKernel, initramfs};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const QEMU: &str = "qemu-system-x86_64";
/// Rig VM shape from PLATFORM-KVM.md §2, but with ONE vCPU by default (MICROVM_RIG_SMP
/// and MICROVM_RIG_TCG=multi|single override): measured here, a 2-vCPU rig under
/// multi-threaded TCG oopsed in L2's kvm module about once in ten boots ("Oops: int3" at
/// a static-key site patched while the other vCPU ran it), and under single-threaded TCG
/// hung two `-smp 2` guests in six; one vCPU passed every run, at about the same speed.
/// `quiet` because every byte through the emulated UART is slow; `panic=-1` and
/// `-no-reboot` so a dead L2 ends QEMU instead of hanging.
#[rustfmt::skip]
const QEMU_ARGS: &[&str] = &[
    "-M", "q35", "-cpu", "EPYC,+svm,+npt", "-m", "3072",
    "-nodefaults", "-nographic", "-serial", "stdio", "-no-reboot",
];
const APPEND: &str = "console=ttyS0 quiet panic=-1";
/// A rig that prints nothing for this long while its QEMU burns (almost) no CPU has
/// stalled, and would only sit out the scenario's timeout (up to an hour). Seen in bench
/// runs on 2026-12-07, three times: the rig's vCPU halted and QEMU's next timer deadline
/// 14 hours away, so the rig's kernel had armed no timer at all, though its scripts were
/// sleeping on timers (a rig problem: nothing in L2 can stop L1's clock). A working rig
/// under TCG uses CPU all the time: its scenarios poll, and every guest tick is emulated.
const STALL_AFTER: Duration = Duration::from_secs(180);
/// The QEMU CPU time over `STALL_AFTER` below which the rig counts as idle.
const STALL_CPU: Duration = Duration::from_secs(3);
/// What a stalled rig's error starts with: callers may run it again.
pub const STALLED: &str = "rig stalled";

/// What one rig boot carries and runs.
pub struct RigRun {
    /// Names the log (`target/xtask-logs/rig-<name>.log`) and the scratch archive.
    pub name: String,
    /// (path inside L2, host path); executables and data alike.
    pub files: Vec<(String, PathBuf)>,
    /// Body of /rig/run.sh, run by the rig's /init once /dev/kvm is there.
    pub script: String,
    pub timeout: Duration,
}

pub struct RigOutcome {
    /// The serial console, '\r' removed.
    pub output: String,
    pub log: PathBuf,
    /// From QEMU's start until the rig printed RIG-READY (kvm modules loaded).
    pub ready_after: Option<Duration>,
    pub wall: Duration,
    /// Exit status of run.sh.
    pub status: i32,
}

/// Boots the rig, runs `run.script` in it, streams the console through `live`.
/// Errors: the rig itself failed (timeout, no /dev/kvm, QEMU died); the scenarios'
/// verdicts are for the caller to read from `output`.
pub fn run(run: &RigRun, cloud: &CloudKernel, live: &mut dyn FnMut(&str)) -> Result<RigOutcome> {
    let scratch = host::repo_root().join("target/rig");
    host::mkdir(&scratch)?;
    let archive = scratch.join(format!("{}.cpio", run.name));
    pack(run, cloud, &archive)?;
    let log_path = host::logs_dir()?.join(format!("rig-{}.log", run.name));
    let result = boot(run, cloud, &archive, &log_path, live);
    let _ = fs::remove_file(&archive);
    result
}

fn pack(run: &RigRun, cloud: &CloudKernel, path: &Path) -> Result<()> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut a = Cpio::new(BufWriter::new(file));
    initramfs::busybox_skeleton(&mut a)?;
    let io = |e: std::io::Error| format!("writing rig initramfs {}: {e}", path.display());
    a.file("init", 0o755, &host::read(&host::repo_root().join("guest/rig/init"))?).map_err(io)?;
    let mut order = String::new();
    for ko in &cloud.rig_modules {
        let stem = ko.file_stem().unwrap().to_string_lossy();
        a.file_from(&format!("lib/modules/{stem}.ko"), 0o644, ko).map_err(io)?;
        order += &format!("{stem}\n");
    }
    a.file("lib/modules/order", 0o644, order.as_bytes()).map_err(io)?;
    a.file("rig/run.sh", 0o755, run.script.as_bytes()).map_err(io)?;
    for (dest, src) in &run.files {
        a.file_from(dest.trim_start_matches('/'), 0o755, src).map_err(io)?;
    }
    a.finish().and_then(|mut w| w.flush()).map_err(io)
}

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
    Closed,
}

fn boot(
    run: &RigRun,
    cloud: &CloudKernel,
    archive: &Path,
    log_path: &Path,
    live: &mut dyn FnMut(&str),
) -> Result<RigOutcome> {
    let mut log = File::create(log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(QEMU);
    let smp = std::env::var("MICROVM_RIG_SMP").unwrap_or_else(|_| "1".into());
    let tcg = std::env::var("MICROVM_RIG_TCG").unwrap_or_else(|_| "multi".into());
    cmd.args(QEMU_ARGS).args(["-smp", &smp, "-accel", &format!("tcg,thread={tcg}")]);
    cmd.arg("-kernel").arg(&cloud.vmlinuz).arg("-initrd").arg(archive).args(["-append", APPEND]);
    let _ = writeln!(log, "# {cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {QEMU} (apt-get install qemu-system-x86): {e}"))?;
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    for (stream, is_err) in [
        (Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, false),
        (Box::new(child.stderr.take().unwrap()), true),
    ] {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || pump(stream, is_err, tx)));
    }
    drop(tx);

    let deadline = start + run.timeout;
    let (mut output, mut stderr, mut open, mut ready_after) = (String::new(), String::new(), 2, None);
    let mut unescape = Unescape::default();
    let mut silence = Silence::new(child.id());
    while open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(idle) = silence.stalled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{STALLED}: no console output for {} s, QEMU used {:.1} s of CPU in them (killed); log: {}\n{}",
                STALL_AFTER.as_secs(),
                idle.as_secs_f64(),
                log_path.display(),
                tail(&output, 40)
            ));
        }
        match rx.recv_timeout(left.min(STALL_AFTER / 6)) {
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => continue,
            Ok(Chunk::Out(bytes)) => {
                silence.heard();
                let _ = log.write_all(&bytes);
                let text = unescape.feed(&String::from_utf8_lossy(&bytes));
                live(&text);
                output += &text;
                if ready_after.is_none() && output.contains("RIG-READY") {
                    ready_after = Some(start.elapsed());
                }
            }
            Ok(Chunk::Err(bytes)) => {
                let _ = log.write_all(&bytes);
                stderr += &String::from_utf8_lossy(&bytes);
            }
            Ok(Chunk::Closed) => open -= 1,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "rig timed out after {} s (QEMU killed); log: {}\n{}",
                    run.timeout.as_secs(),
                    log_path.display(),
                    tail(&output, 40)
                ));
            }
        }
    }
    let qemu_status = child.wait().map_err(|e| e.to_string())?;
    readers.into_iter().for_each(|r| drop(r.join()));
    let wall = start.elapsed();
    let _ = writeln!(log, "\n# QEMU {qemu_status}, {:.1} s", wall.as_secs_f64());

    let rig_error = output.lines().find(|l| l.contains("RIG-ERROR")).map(str::to_string);
    let status = output.lines().find_map(|l| l.split("RIG-DONE status=").nth(1)).and_then(|s| s.trim().parse().ok());
    match (status, rig_error) {
        (Some(status), None) => Ok(RigOutcome { output, log: log_path.to_path_buf(), ready_after, wall, status }),
        (_, err) => Err(format!(
            "rig failed ({}; QEMU {qemu_status}); log: {}\n{}{}",
            err.unwrap_or_else(|| "no RIG-DONE marker".into()),
            log_path.display(),
            tail(&output, 40),
            if stderr.trim().is_empty() { String::new() } else { format!("\nQEMU stderr: {}", tail(&stderr, 10)) }
        )),
    }
}

/// How long the rig has been silent, and what CPU its QEMU used meanwhile.
struct Silence {
    pid: u32,
    since: Instant,
    cpu_then: Option<Duration>,
}

impl Silence {
    fn new(pid: u32) -> Self {
        Silence { pid, since: Instant::now(), cpu_then: cpu_time(pid) }
    }

    /// Console output came: the silence starts again now.
    fn heard(&mut self) {
        if self.since.elapsed() >= STALL_AFTER / 6 {
            *self = Silence::new(self.pid);
        }
    }

    /// The CPU QEMU used over the silence, if it lasted `STALL_AFTER` with less than
    /// `STALL_CPU`; a longer silence with CPU in it starts a new window.
    fn stalled(&mut self) -> Option<Duration> {
        if self.since.elapsed() < STALL_AFTER {
            return None;
        }
        let used = cpu_time(self.pid)?.checked_sub(self.cpu_then?)?;
        if used < STALL_CPU {
            return Some(used);
        }
        *self = Silence::new(self.pid);
        None
    }
}

/// User and system CPU of process `pid` (/proc/PID/stat, in clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn pump(mut stream: Box<dyn Read + Send>, is_err: bool, tx: mpsc::Sender<Chunk>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let data = buf[..n].to_vec();
                let _ = tx.send(if is_err { Chunk::Err(data) } else { Chunk::Out(data) });
            }
        }
    }
    let _ = tx.send(Chunk::Closed);
}

/// Removes '\r' and terminal escape sequences from the console, across chunks (QEMU
/// writes the serial port byte by byte). SeaBIOS starts with "ESC c", a full terminal
/// reset that would wipe the screen of `cargo xtask run`.
#[derive(Default)]
struct Unescape {
    /// 0: text, 1: after ESC, 2: inside a CSI sequence (ESC '[' ... final byte)
    state: u8,
}

impl Unescape {
    fn feed(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            self.state = match (self.state, c) {
                (0, '\x1b') => 1,
                (0, '\r') => 0,
                (0, c) => {
                    out.push(c);
                    0
                }
                (1, '[') => 2,
                (1, _) => 0,
                (_, c) if ('@'..='~').contains(&c) => 0,
                (s, _) => s,
            };
        }
        out
    }
}

/// The last `n` lines of `text`, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut s = String::new();
    if skip > 0 {
        s += &format!("[... {skip} earlier lines ...]\n");
    }
    s + &lines[skip..].join("\n")
}

/// QEMU itself inside the rig, as a reference VMM for scenarios: the binary, the shared
/// libraries `ldd` lists, its firmware directory. ~40 MB, so only for runs that use it.
/// A dynamically linked host binary and the libraries ldd lists, each at its host path.
pub fn binary_files(bin: &Path) -> Result<Vec<(String, PathBuf)>> {
    let ldd = host::output(Command::new("ldd").arg(bin))?;
    let mut files = vec![(bin.to_string_lossy().to_string(), bin.to_path_buf())];
    for line in ldd.lines() {
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            files.push((path.to_string(), PathBuf::from(path)));
        }
    }
    Ok(files)
}

pub fn qemu_files() -> Result<Vec<(String, PathBuf)>> {
    let bin = PathBuf::from("/usr/bin").join(QEMU);
    let mut files = binary_files(&bin)?;
    // Debian keeps SeaBIOS (bios-256k.bin, which -M q35 needs) apart from QEMU's own files.
    for share in [Path::new("/usr/share/qemu"), Path::new("/usr/share/seabios")] {
        for e in fs::read_dir(share).map_err(|e| format!("{}: {e}", share.display()))?.flatten() {
            if e.path().is_file() {
                files.push((e.path().to_string_lossy().to_string(), e.path()));
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::{cpu_time, Duration, Instant};

    #[test]
    fn a_process_cpu_time_is_read_and_grows() {
        let me = std::process::id();
        let before = cpu_time(me).expect("our own /proc/PID/stat");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_time(me).unwrap() > before, "100 ms of spinning showed no CPU");
        assert!(cpu_time(u32::MAX).is_none());
    }

    #[test]
    fn escapes_are_stripped_across_chunks() {
        let raw = "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\nok";
        let mut u = super::Unescape::default();
        let out: String = raw.chars().map(|c| u.feed(&c.to_string())).collect();
        assert_eq!(out, "SeaBIOS\nok");
    }
}
