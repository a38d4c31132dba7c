//! Clones of one snapshot (issue 22, acceptance 4) on the host's /dev/kvm: the tiny
//! counting guest (`tiny_guest::counter_on_serial`, 256 MiB, `-M microvm,legacy`) saved
//! once with `migrate file:`, then
//! - exec → first console line of a restore (`-incoming file:`) against the same for a fresh
//!   start of the same machine, alternating, and its p50/p99 over many restores;
//! - the clone server's request → first console line of the clone, p50/p99;
//! - exec → `query-status` says running, microvm's `-incoming file:` against QEMU's
//!   `-incoming "exec:cat FILE"` of the same guest saved by QEMU (this QEMU's restored tiny
//!   guest prints nothing on this host, so the console cannot time it);
//! - `Private_Dirty` of idle clones (a guest that printed and halted), files synced;
//! - the memory file's allocated size against the pages the guest touched;
//! - exec → first line with the file dropped from the page cache, with and without the
//!   working-set list of `microvm snapshot-pages`.
//!
//! Console lines are timed on a FIFO the VMM writes its `-serial file:` to, so the bench
//! wakes on the first byte instead of polling a file.

use super::median;
use super::qmp::Session;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Busy-wait turns between the counter's lines: short, so a restore prints at once.
const DELAY: u32 = 200;
const MEM: &str = "256m";
/// Idle clones alive at once for the memory figure.
const IDLE_CLONES: usize = 50;
/// The working set of the prefetch figure's guest (`tiny_guest::touch_then_count_on_serial`).
const WORKING_SET_MIB: u32 = 64;
/// How long any one step may take before the bench gives up on it.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Latencies in ms.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub n: usize,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Latency {
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        Latency { p50: median(&ms).unwrap_or(f64::NAN), p99: ms.get(n * 99 / 100).copied().unwrap_or(f64::NAN), n }
    }
}

#[derive(Debug, Default)]
pub struct CloneFigures {
    /// Alternating rounds: fresh start and restore, exec → first line.
    pub fresh: Latency,
    pub restore: Latency,
    /// Many restores one after another, and as many clone-server clones.
    pub restores: Latency,
    pub clones: Latency,
    /// exec → running (QMP), microvm and QEMU.
    pub running: (Latency, Option<Latency>),
    /// Private_Dirty KiB of idle clones (median, max) and of one plain restore.
    pub clone_kib: (f64, f64),
    pub restore_kib: f64,
    /// Memory file: allocated KiB, and KiB of RAM the guest had touched.
    pub file_kib: u64,
    pub touched_kib: u64,
    /// Cold page cache exec → first line, without and with the page list.
    pub cold: (Latency, Latency),
    /// The same for a guest that reads a working set of WORKING_SET_MIB before each line.
    pub cold_working_set: (Latency, Latency),
    pub qemu_error: Option<String>,
    pub load: Option<String>,
    pub cpu: CpuFigures,
}

/// Process CPU, µs: exec → first KVM_RUN of a fresh start and of a restore (alternating),
/// the median of each round's restore/fresh ratio, a clone's request → first KVM_RUN, and
/// the server's own CPU per request.
#[derive(Debug, Default)]
pub struct CpuFigures {
    pub fresh: Latency,
    pub restore: Latency,
    pub restore_ratio: f64,
    pub clone: Latency,
    pub server_per_request: Option<f64>,
}

/// The machine's options, without console or monitor.
fn machine(kernel: &Path) -> Vec<String> {
    let k = kernel.display().to_string();
    ["-M", "microvm,legacy", "-m", MEM, "-nodefaults", "-kernel", &k].iter().map(|s| s.to_string()).collect()
}

/// QEMU's microvm with the same devices (isa-serial only); `-arch-capabilities`: QEMU 7.2
/// fails on this host's emulated /dev/kvm without.
fn qemu(kernel: &Path) -> Command {
    let mut c = Command::new("/usr/bin/qemu-system-x86_64");
    c.args(["-M", "microvm,acpi=off,rtc=off,isa-serial=on,x-option-roms=off", "-accel", "kvm"]);
    c.args(["-cpu", "host,-arch-capabilities", "-m", MEM, "-nodefaults", "-no-user-config", "-display", "none"]);
    c.arg("-kernel").arg(kernel).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn serial(path: &Path) -> [String; 2] {
    ["-serial".into(), format!("file:{}", path.display())]
}

/// A FIFO the VMM's console writes to; open for reading before the VMM starts.
struct Console {
    file: File,
}

impl Console {
    fn new(path: &Path) -> Result<Console, String> {
        let _ = std::fs::remove_file(path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: c is a NUL-terminated path that outlives the call.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(format!("mkfifo {}: {}", path.display(), std::io::Error::last_os_error()));
        }
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Console { file })
    }

    /// When the first byte arrived; drains what is there.
    fn first_byte(&self) -> Result<Instant, String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut pfd = libc::pollfd { fd: self.file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n > 0 && pfd.revents & libc::POLLIN != 0 {
                let at = Instant::now();
                let mut buf = [0u8; 4096];
                // SAFETY: buf is writable for its length; the fd is ours.
                unsafe { libc::read(pfd.fd, buf.as_mut_ptr().cast(), buf.len()) };
                return Ok(at);
            }
            if Instant::now() > deadline {
                return Err("no console output".into());
            }
        }
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// exec → first console line of `args` (a fresh start or a restore); the child if kept.
fn to_first_line(bin: &Path, args: &[String], fifo: &Path, keep: bool) -> Result<(f64, Option<Child>), String> {
    let (ms, child) = timed_first_line(bin, args, fifo, false)?;
    if keep {
        return Ok((ms, Some(child)));
    }
    stop(child);
    Ok((ms, None))
}

/// The environment variable that makes microvm log its first KVM_RUN's CPU (`--report-start-time`).
const REPORT_START_TIME: &str = "MICROVM_REPORT_START_TIME";

/// exec → first console line, and the process CPU exec → first KVM_RUN microvm reported
/// (µs), the VMM then ended.
fn first_line_and_cpu(bin: &Path, args: &[String], fifo: &Path) -> Result<(f64, f64), String> {
    let (ms, child) = timed_first_line(bin, args, fifo, true)?;
    let mut child = child;
    let _ = child.kill();
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let cpu = first_run_cpu(&String::from_utf8_lossy(&output.stderr)).next();
    Ok((ms, cpu.ok_or(format!("no first KVM_RUN line from {args:?}"))?))
}

fn timed_first_line(bin: &Path, args: &[String], fifo: &Path, report: bool) -> Result<(f64, Child), String> {
    let console = Console::new(fifo)?;
    let t = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.args(args).args(serial(fifo)).stdin(Stdio::null()).stdout(Stdio::null());
    if report {
        cmd.env(REPORT_START_TIME, "1").stderr(Stdio::piped());
    } else {
        cmd.stderr(Stdio::null());
    }
    let child = cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
    let at = console.first_byte();
    Ok((super::ms(at.map_err(|e| format!("{e}: {bin:?} {args:?}"))? - t), child))
}

/// The CPU µs of each "first KVM_RUN after W us wall (...), C us CPU" line in `log`.
fn first_run_cpu(log: &str) -> impl Iterator<Item = f64> + '_ {
    log.lines().filter(|l| l.contains("first KVM_RUN after")).filter_map(|l| {
        let before = &l[..l.find(" us CPU")?];
        before[before.rfind(' ')? + 1..].parse().ok()
    })
}

/// `"key": N` in a QMP reply.
fn number(reply: &str, key: &str) -> Option<u64> {
    let rest = &reply[reply.find(&format!("\"{key}\""))? + key.len() + 2..];
    let rest = rest.trim_start_matches([':', ' ']);
    rest[..rest.find(|c: char| !c.is_ascii_digit())?].parse().ok()
}

/// Runs `cmd` until its console has 5 bytes (the counter's third line, the idle guest's `idle\n`), saves it to `snap` with `uri`: the RAM
/// pages query-migrate counted as written (not zero).
fn save(cmd: Command, name: &str, dir: &Path, out: &Path, uri: &str) -> Result<u64, String> {
    let mut s = Session::spawn(cmd, name, &dir.join(format!("{name}-save.sock")))?;
    let deadline = Instant::now() + TIMEOUT;
    while std::fs::metadata(out).map(|m| m.len()).unwrap_or(0) < 5 {
        if Instant::now() > deadline {
            return Err(format!("{name}: the guest printed nothing before the save"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    s.execute(r#"{"execute": "stop"}"#)?;
    s.execute(&format!(r#"{{"execute": "migrate", "arguments": {{"uri": "{uri}"}}}}"#))?;
    let reply = loop {
        let reply = s.execute(r#"{"execute": "query-migrate"}"#)?;
        if reply.contains("\"completed\"") || reply.contains("\"failed\"") || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !reply.contains("\"completed\"") {
        return Err(format!("{name}: migrate did not complete: {reply}"));
    }
    Ok(number(&reply, "normal").unwrap_or(0))
}

/// exec → `query-status` reports running, polled on the monitor.
fn to_running(cmd: Command, name: &str, sock: &Path) -> Result<f64, String> {
    let t = Instant::now();
    let mut s = Session::spawn(cmd, name, sock)?;
    let deadline = t + TIMEOUT;
    loop {
        if s.execute(r#"{"execute": "query-status"}"#)?.contains("\"running\"") {
            return Ok(super::ms(t.elapsed()));
        }
        if Instant::now() > deadline {
            return Err(format!("{name}: not running after {TIMEOUT:?}"));
        }
    }
}

/// `Private_Dirty` of process `pid`, KiB.
fn private_dirty(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Private_Dirty:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

fn drop_from_page_cache(path: &Path) -> Result<(), String> {
    let f = File::options().read(true).write(true).open(path).map_err(|e| e.to_string())?;
    // Dirty pages (a snapshot just written) are not dropped: write them back first.
    f.sync_data().map_err(|e| e.to_string())?;
    // SAFETY: a valid fd; the advice only affects the page cache.
    match unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) } {
        0 => Ok(()),
        e => Err(format!("posix_fadvise: {}", std::io::Error::from_raw_os_error(e))),
    }
}

/// A clone server for `snap`, once it listens on `sock`.
fn server(bin: &Path, snap: &Path, sock: &Path, machine: &[String]) -> Result<Child, String> {
    start_server(bin, snap, sock, machine, None)
}

/// A clone server as [`server`], with `MICROVM_REPORT_START_TIME=1` and its stderr (and
/// so its clones') in `log`.
fn server_logging(bin: &Path, snap: &Path, sock: &Path, machine: &[String], log: &Path) -> Result<Child, String> {
    start_server(bin, snap, sock, machine, Some(log))
}

fn start_server(bin: &Path, snap: &Path, sock: &Path, machine: &[String], log: Option<&Path>) -> Result<Child, String> {
    let mut cmd = Command::new(bin);
    cmd.args(["clone-server", "--snapshot"]).arg(snap).arg("--listen").arg(sock).arg("--").args(machine);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    match log {
        Some(log) => {
            let err = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
            cmd.env(REPORT_START_TIME, "1").stderr(err)
        }
        None => cmd.stderr(Stdio::null()),
    };
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.contains("listening") {
        stop(child);
        return Err(format!("the clone server did not start: {line:?}"));
    }
    Ok(child)
}

/// Waits for `child`; its user + system CPU in µs (wait4's rusage).
fn wait_usage(child: Child) -> Option<f64> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our unwaited child; status and usage are valid for writing.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    (pid > 0).then(|| us(usage.ru_utime) + us(usage.ru_stime))
}

/// One clone with `args`: its pid.
fn request_clone(sock: &Path, args: &[String]) -> Result<i32, String> {
    let mut stream = UnixStream::connect(sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    writeln!(stream, "{{\"args\": [{}]}}", quoted.join(", ")).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(|e| e.to_string())?;
    number(&answer, "pid").map(|p| p as i32).ok_or(format!("no clone: {answer}"))
}

/// Ends clone `pid` (the server's child, reaped by the kernel) and waits until it is gone.
fn end_clone(pid: i32) {
    // SAFETY: pid is a clone this bench asked for; SIGKILL ends it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + TIMEOUT;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub fn run(bin: &Path, dir: &Path, runs: usize, clones: usize) -> Result<CloneFigures, String> {
    let dir = dir.join("clones");
    let _ = std::fs::remove_dir_all(&dir);
    xtask::host::mkdir(&dir)?;
    let mut f = CloneFigures { load: super::load_average(), ..Default::default() };
    let kernel = dir.join("counter.elf");
    xtask::host::write(&kernel, tiny_guest::counter_on_serial(DELAY))?;
    let m = machine(&kernel);
    let (snap, out, fifo) = (dir.join("vm.snap"), dir.join("out0"), dir.join("console"));
    let mut cmd = Command::new(bin);
    cmd.args(&m).args(serial(&out)).stdin(Stdio::null()).stdout(Stdio::null());
    let touched = save(cmd, "microvm", &dir, &out, &format!("file:{}", snap.display()))?;
    f.touched_kib = touched * 4;
    f.file_kib = std::fs::metadata(&snap).map(|m| m.blocks() * 512 / 1024).map_err(|e| e.to_string())?;
    let restore_args: Vec<String> =
        m.iter().cloned().chain(["-incoming".into(), format!("file:{}", snap.display())]).collect();

    eprintln!("[bench] clones: {runs} alternating fresh starts and restores");
    let (mut fresh, mut restore, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fresh_cpu, mut restore_cpu) = (Vec::new(), Vec::new());
    to_first_line(bin, &restore_args, &fifo, false)?; // warm-up: page cache, binary
    for _ in 0..runs {
        let (ms, cpu) = first_line_and_cpu(bin, &m, &fifo)?;
        fresh.push(ms);
        fresh_cpu.push(cpu);
        let (ms, restored) = first_line_and_cpu(bin, &restore_args, &fifo)?;
        restore.push(ms);
        restore_cpu.push(restored);
        ratios.push(restored / cpu);
    }
    (f.fresh, f.restore) = (Latency::of(fresh), Latency::of(restore));
    f.cpu.fresh = Latency::of(fresh_cpu);
    f.cpu.restore = Latency::of(restore_cpu);
    f.cpu.restore_ratio = Latency::of(ratios).p50;

    eprintln!("[bench] clones: {clones} restores, then {clones} clone-server clones");
    let ms: Result<Vec<f64>, String> =
        (0..clones).map(|_| Ok(to_first_line(bin, &restore_args, &fifo, false)?.0)).collect();
    f.restores = Latency::of(ms?);
    let sock = dir.join("server.sock");
    let srv = server(bin, &snap, &sock, &m)?;
    let mut ms = Vec::with_capacity(clones);
    for _ in 0..clones {
        let console = Console::new(&fifo)?;
        let t = Instant::now();
        let pid = request_clone(&sock, &serial(&fifo))?;
        let at = console.first_byte();
        end_clone(pid);
        ms.push(super::ms(at? - t));
    }
    f.clones = Latency::of(ms);
    stop(srv);
    // Process CPU request → first KVM_RUN of each clone (it logs it to the server's
    // stderr), and the server's own CPU per request (wait4), in a run of their own.
    let log = dir.join("server.log");
    let mut srv = server_logging(bin, &snap, &sock, &m, &log)?;
    for _ in 0..runs {
        let console = Console::new(&fifo)?;
        let pid = request_clone(&sock, &serial(&fifo))?;
        console.first_byte()?;
        end_clone(pid);
    }
    let _ = srv.kill();
    let usage = wait_usage(srv);
    let text = String::from_utf8_lossy(&xtask::host::read(&log)?).into_owned();
    f.cpu.clone = Latency::of(first_run_cpu(&text).collect());
    f.cpu.server_per_request = usage.map(|us| us / runs as f64);

    eprintln!("[bench] clones: memory of {IDLE_CLONES} idle clones");
    (f.clone_kib, f.restore_kib) = idle_memory(bin, &dir)?;

    eprintln!("[bench] clones: {runs} cold-cache restores without and with the page list");
    f.cold = cold_restores(bin, &dir, &snap, &restore_args, runs)?;

    eprintln!("[bench] clones: {runs} cold-cache restores of a {WORKING_SET_MIB} MiB working set, without and with the page list");
    f.cold_working_set = working_set(bin, &dir, runs)?;

    eprintln!("[bench] clones: {runs} restores to running, microvm and QEMU");
    let mut mine = Vec::new();
    let qemu_snap = dir.join("qemu.snap");
    let mut qemu_ms = Vec::new();
    let qemu_out = dir.join("qemu-out");
    let mut c = qemu(&kernel);
    c.args(serial(&qemu_out));
    let qemu_saved = save(c, "QEMU", &dir, &qemu_out, &format!("exec:cat > {}", qemu_snap.display()));
    for _ in 0..runs {
        let mut c = Command::new(bin);
        c.args(&restore_args).args(serial(Path::new("/dev/null"))).stdin(Stdio::null()).stdout(Stdio::null());
        mine.push(to_running(c, "microvm", &dir.join("run.sock"))?);
        if qemu_saved.is_ok() {
            let mut c = qemu(&kernel);
            c.args(serial(Path::new("/dev/null"))).arg("-incoming").arg(format!("exec:cat {}", qemu_snap.display()));
            match to_running(c, "QEMU", &dir.join("qemu-run.sock")) {
                Ok(ms) => qemu_ms.push(ms),
                Err(e) => f.qemu_error = Some(e),
            }
        }
    }
    if let Err(e) = qemu_saved {
        f.qemu_error = Some(e);
    }
    f.running = (Latency::of(mine), (!qemu_ms.is_empty()).then(|| Latency::of(qemu_ms)));
    Ok(f)
}

/// Cold-cache exec → first line of a guest that reads WORKING_SET_MIB of its RAM before
/// each line, without and with the page list `microvm snapshot-pages` recorded.
fn working_set(bin: &Path, dir: &Path, runs: usize) -> Result<(Latency, Latency), String> {
    let kernel = dir.join("touch.elf");
    xtask::host::write(&kernel, tiny_guest::touch_then_count_on_serial(WORKING_SET_MIB, DELAY))?;
    let m = machine(&kernel);
    let (snap, out) = (dir.join("touch.snap"), dir.join("touch-out"));
    let mut cmd = Command::new(bin);
    cmd.args(&m).args(serial(&out)).stdin(Stdio::null()).stdout(Stdio::null());
    save(cmd, "microvm", dir, &out, &format!("file:{}", snap.display()))?;
    let restore: Vec<String> =
        m.iter().cloned().chain(["-incoming".into(), format!("file:{}", snap.display())]).collect();
    cold_restores(bin, dir, &snap, &restore, runs)
}

/// Records the page list of one restore of `snap` (`microvm snapshot-pages` once its first
/// line is out), then times `runs` cold-cache restores (exec → first line) without and
/// with it, alternating.
fn cold_restores(
    bin: &Path,
    dir: &Path,
    snap: &Path,
    restore: &[String],
    runs: usize,
) -> Result<(Latency, Latency), String> {
    let fifo = dir.join("cold-console");
    let (_, child) = to_first_line(bin, restore, &fifo, true)?;
    let child = child.ok_or("no restore to record")?;
    let rec =
        Command::new(bin).arg("snapshot-pages").arg(child.id().to_string()).arg(snap).stdout(Stdio::null()).status();
    stop(child);
    let (pages, aside) = (PathBuf::from(format!("{}.pages", snap.display())), dir.join("pages.aside"));
    if !rec.map(|s| s.success()).unwrap_or(false) || !pages.exists() {
        return Err(format!("microvm snapshot-pages recorded no list for {}", snap.display()));
    }
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        std::fs::rename(&pages, &aside).map_err(|e| e.to_string())?;
        drop_from_page_cache(snap)?;
        without.push(to_first_line(bin, restore, &fifo, false)?.0);
        std::fs::rename(&aside, &pages).map_err(|e| e.to_string())?;
        drop_from_page_cache(snap)?;
        with.push(to_first_line(bin, restore, &fifo, false)?.0);
    }
    let _ = std::fs::remove_file(&pages);
    Ok((Latency::of(without), Latency::of(with)))
}

/// Private_Dirty (KiB) of idle clones, median and max, and of one plain restore: a guest
/// that printed a line and halted, so the clones sit in KVM_RUN and write nothing.
fn idle_memory(bin: &Path, dir: &Path) -> Result<((f64, f64), f64), String> {
    let kernel = dir.join("halt.elf");
    xtask::host::write(&kernel, tiny_guest::serial_then_halt("idle\n"))?;
    let m = machine(&kernel);
    let (snap, out) = (dir.join("idle.snap"), dir.join("idle-out"));
    let mut cmd = Command::new(bin);
    cmd.args(&m).args(serial(&out)).stdin(Stdio::null()).stdout(Stdio::null());
    save(cmd, "microvm", dir, &out, &format!("file:{}", snap.display()))?;
    let sock = dir.join("idle.sock");
    let srv = server(bin, &snap, &sock, &m)?;
    let null = serial(Path::new("/dev/null"));
    let pids: Result<Vec<i32>, String> = (0..IDLE_CLONES).map(|_| request_clone(&sock, &null)).collect();
    let mut plain = Command::new(bin);
    plain.args(&m).arg("-incoming").arg(format!("file:{}", snap.display())).args(&null);
    let plain = plain.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: sync(2) takes no arguments; written-back file pages are no longer dirty.
    unsafe { libc::sync() };
    let sizes: Vec<f64> = pids.iter().flatten().filter_map(|&p| private_dirty(p as u32)).collect();
    let restore = plain.as_ref().ok().and_then(|c| private_dirty(c.id()));
    pids.iter().flatten().for_each(|&p| end_clone(p));
    if let Ok(c) = plain {
        stop(c);
    }
    stop(srv);
    if sizes.len() != IDLE_CLONES {
        return Err(format!("{} of {IDLE_CLONES} idle clones measured ({:?})", sizes.len(), pids.err()));
    }
    let max = sizes.iter().copied().fold(0.0, f64::max);
    Ok(((median(&sizes).unwrap_or(f64::NAN), max), restore.unwrap_or(f64::NAN)))
}

/// The report's clones section.
pub fn markdown(figures: &Result<CloneFigures, String>, runs: usize) -> String {
    let mut s = format!(
        "## Clones\n\nOne snapshot of the tiny counting guest ({MEM}, `-M microvm,legacy -nodefaults`, \
         console on a FIFO) restored over and over on the host's /dev/kvm (`xtask/src/bench/clones.rs`; \
         docs/snapshot.md \"Clones\" says what each figure means). Latencies in ms; {runs} alternating \
         rounds where not said.\n\n"
    );
    let f = match figures {
        Ok(f) => f,
        Err(e) => return s + &format!("**Not measured: {e}.**\n"),
    };
    let lat = |l: &Latency| format!("{:.2} / {:.2} (n={})", l.p50, l.p99, l.n);
    let qemu = match (&f.running.1, &f.qemu_error) {
        (Some(q), _) => lat(q),
        (None, Some(e)) => format!("not measured: {e}"),
        (None, None) => "not measured".into(),
    };
    s += "| figure | microvm, p50 / p99 | goal or peer |\n| --- | --- | --- |\n";
    s += &format!("| fresh start, exec → first console line | {} | |\n", lat(&f.fresh));
    s += &format!(
        "| restore (`-incoming file:`), exec → first console line | {} | ≤ 1.1 × fresh start: {:.2} × |\n",
        lat(&f.restore),
        f.restore.p50 / f.fresh.p50
    );
    s += &format!("| restores one after another, exec → first line | {} | |\n", lat(&f.restores));
    s += &format!(
        "| clone server, request → clone's first line | {} | ≤ 0.5 × fresh start: {:.2} × |\n",
        lat(&f.clones),
        f.clones.p50 / f.fresh.p50
    );
    s += &format!(
        "| exec → `query-status` running after restore | {} | QEMU `-incoming \"exec:cat FILE\"`: {qemu} |\n",
        lat(&f.running.0)
    );
    s += &format!(
        "| cold page cache (`POSIX_FADV_DONTNEED`), exec → first line, without / with `FILE.pages` | {} / {} | |\n",
        lat(&f.cold.0),
        lat(&f.cold.1)
    );
    s += &format!(
        "| the same, a guest reading a {WORKING_SET_MIB} MiB working set before each line (`touch_then_count_on_serial`) | {} / {} | |\n",
        lat(&f.cold_working_set.0),
        lat(&f.cold_working_set.1)
    );
    let c = &f.cpu;
    s += &format!(
        "\n| process CPU to the first KVM_RUN (`MICROVM_REPORT_START_TIME=1`), µs | p50 | goal |\n| --- | ---: | --- |\n\
         | fresh start, exec → | {:.0} | |\n\
         | restore, exec → (alternating with the fresh start) | {:.0}: {:.2} × the fresh start (median of each round's ratio) | ≤ 1.1 × |\n\
         | clone, its request → (n={}) | {:.0}: {:.2} × the fresh start's | ≤ 0.5 × |\n\
         | the server's own CPU per request (wait4, whole run / requests) | {} | |\n",
        c.fresh.p50,
        c.restore.p50,
        c.restore_ratio,
        c.clone.n,
        c.clone.p50,
        c.clone.p50 / c.fresh.p50,
        c.server_per_request.map_or("not measured".into(), |us| format!("{us:.0}")),
    );
    s += "\n| memory | KiB | goal |\n| --- | ---: | --- |\n";
    s += &format!(
        "| `Private_Dirty` per idle clone, median (max) of {IDLE_CLONES} at once, files synced | {:.0} ({:.0}) | ≤ 200 |\n",
        f.clone_kib.0, f.clone_kib.1
    );
    s += &format!("| `Private_Dirty` of one plain `-incoming` restore | {:.0} | |\n", f.restore_kib);
    s += &format!(
        "| snapshot file allocated (`st_blocks`, state included) / RAM the guest touched | {} / {} | about equal |\n",
        f.file_kib, f.touched_kib
    );
    if let Some(load) = &f.load {
        s += &format!("\nLoad average when the section started: {load}.\n");
    }
    s
}
