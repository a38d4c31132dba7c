//! The start path's own costs (docs/start-path.md): between `main` and the first KVM_RUN
//! of a solo VM, microvm makes no system call for its allocator (`start_arena.rs`) or for
//! std's stack-overflow handler (`entry.rs`), opens no signalfd, exit or reset eventfd
//! that only an event loop would watch (`vmm/src/solo.rs`), and what the entry keeps of std's start-up
//! still holds: descriptors 0-2 open on /dev/null when the caller closed them, SIGPIPE
//! ignored; 100 ms after the start, its code pages are given back and guest RAM is offered
//! to KSM, not before the guest runs (`vmm/src/after_start.rs`);
//! the process CPU clock is read only for `--report-start-time` (`vmm/src/startup.rs`).
//! Counted with strace, the real peer that sees every call, and /proc/PID/smaps.

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// System calls that would mean an allocator or runtime set-up on the start path.
const NOT_ON_THE_START_PATH: [&str; 5] = ["brk", "munmap", "mprotect", "sigaltstack", "mremap"];

/// The start bench's command line, up to its `-kernel` path.
const SOLO_LINE: [&str; 6] = ["-M", "microvm", "-m", "128m", "-nodefaults", "-kernel"];

/// A solo VM of the tiny guest that halts for good, in its own temp dir (kept alive with it).
fn halting_vm(tag: &str) -> (TempDir, Command) {
    let dir = TempDir::new(tag);
    let kernel = dir.file("halt.elf", &tiny_guest::halt_forever());
    let mut cmd = Command::new(microvm_path());
    cmd.args(SOLO_LINE).arg(&kernel);
    (dir, cmd)
}

fn strace_available() -> bool {
    let found = Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: no strace (apt package strace)");
    }
    found
}

/// The system calls (name and arguments) from microvm's first own call (`poll` of the
/// standard descriptors, `entry.rs`) to its first KVM_RUN, excluded.
fn start_path_calls(trace: &str) -> Vec<&str> {
    let lines: Vec<&str> = trace.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("poll([{fd=0")).expect("no poll of fds 0-2 in the trace");
    let run = lines.iter().position(|l| l.contains("KVM_RUN")).expect("no KVM_RUN in the trace");
    assert!(first < run, "{trace}");
    lines[first..run].to_vec()
}

#[test]
fn the_start_path_makes_no_allocator_or_runtime_system_calls() {
    if !kvm_tests_enabled() || !strace_available() {
        return;
    }
    let dir = TempDir::new("start-path");
    let kernel = dir.file("exit.elf", &tiny_guest::serial_then_triple_fault(""));
    let log = dir.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.arg("-qq").arg("-o").arg(&log).arg(microvm_path());
    cmd.args(SOLO_LINE).arg(&kernel);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    let trace = std::fs::read_to_string(&log).unwrap();
    let calls = start_path_calls(&trace);
    let name = |line: &&str| line.split('(').next().unwrap_or_default().to_string();
    let unwanted: Vec<&&str> = calls.iter().filter(|l| NOT_ON_THE_START_PATH.contains(&name(l).as_str())).collect();
    assert!(unwanted.is_empty(), "allocator or runtime calls on the start path: {unwanted:#?}\n{trace}");
    // Solo mode: no signalfd and no eventfd (the i8042 reset port tells the exit notifier).
    let fds: Vec<String> = calls.iter().map(name).filter(|n| n == "signalfd4" || n == "eventfd2").collect();
    assert!(fds.is_empty(), "{calls:#?}");
    // The process CPU clock is a system call; only --report-start-time reads it.
    let clocks: Vec<&&str> = calls.iter().filter(|l| l.contains("CLOCK_PROCESS_CPUTIME_ID")).collect();
    assert!(clocks.is_empty(), "a start that reports nothing read its CPU clock: {clocks:#?}");
    // mem-merge=on (the default): the KSM advice waits until the VM has run a while.
    let advice: Vec<&&str> = calls.iter().filter(|l| l.contains("MADV_MERGEABLE")).collect();
    assert!(advice.is_empty(), "KSM advice before the first KVM_RUN: {advice:#?}");
    // The only mappings: guest RAM and the vCPU's kvm_run area.
    let mmaps: Vec<&&str> = calls.iter().filter(|l| name(l) == "mmap").collect();
    assert_eq!(mmaps.len(), 2, "{mmaps:#?}");
    assert!(mmaps[0].contains("134217728") && mmaps[0].contains("MAP_NORESERVE"), "{mmaps:#?}");
    assert!(mmaps[1].contains("MAP_SHARED"), "{mmaps:#?}");
}

#[test]
fn closed_standard_descriptors_are_opened_on_dev_null_and_sigpipe_is_ignored() {
    if !kvm_tests_enabled() {
        return;
    }
    let (_dir, mut cmd) = halting_vm("start-fds");
    // SAFETY: between fork and exec only close(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    // Until the VM runs: its vCPU in KVM_RUN holds /dev/kvm's descriptors open.
    let fd_dir = format!("/proc/{pid}/fd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let links = loop {
        let links: Vec<(String, String)> = std::fs::read_dir(&fd_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let link = std::fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default();
                        (e.file_name().to_string_lossy().into_owned(), link)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if links.iter().any(|(_, l)| l.contains("kvm-vcpu")) || std::time::Instant::now() > deadline {
            break links;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    for fd in ["0", "1", "2"] {
        let link = links.iter().find(|(n, _)| n == fd).map(|(_, l)| l.as_str());
        assert_eq!(link, Some("/dev/null"), "fd {fd}: {links:?}");
    }
    assert!(links.iter().any(|(_, l)| l.contains("kvm-vcpu")), "the VM never ran: {links:?}");
    let ignored = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).map(str::trim).unwrap_or_default();
    let mask = u64::from_str_radix(ignored, 16).unwrap_or(0);
    assert_ne!(mask & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE not ignored: SigIgn {ignored}");
}

/// Resident KiB of the microvm binary's executable mapping in `/proc/PID/smaps`.
fn text_rss_kib(pid: u32, binary: &std::path::Path) -> Option<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let name = binary.canonicalize().ok()?.display().to_string();
    let mut in_text = false;
    for line in smaps.lines() {
        if line.contains(" r-xp ") {
            in_text = line.ends_with(&name);
        } else if let Some(rss) = line.strip_prefix("Rss:").filter(|_| in_text) {
            return rss.trim().strip_suffix("kB")?.trim().parse().ok();
        }
    }
    None
}

#[test]
fn a_vm_gives_its_start_up_code_back_once_it_has_run_a_while() {
    if !kvm_tests_enabled() {
        return;
    }
    // Solo mode (SIGALRM in KVM_RUN), and with -S the main loop of a VM with threads.
    for extra in [&[][..], &["-S"][..]] {
        let (_dir, mut cmd) = halting_vm("start-text");
        cmd.args(extra);
        let (most, after) = text_rss_during_and_after_start(cmd);
        assert!(most > 0, "{extra:?}: the start was never seen");
        assert!(
            after * 2 < most,
            "{extra:?}: text still resident: {after} KiB after, {most} KiB at most during the start"
        );
    }
}

/// The largest Rss of microvm's text seen while `cmd` starts, and its Rss once that has
/// dropped below half of it (or, if it never does within 10 s, the last reading), KiB.
/// Polled every 2 ms rather than read at fixed instants: on a loaded machine the start
/// alone can take longer than the release's 100 ms delay (vmm::after_start: 100 ms after
/// the VM starts to run), and a fixed 60 ms window then saw no start at all.
fn text_rss_during_and_after_start(mut cmd: Command) -> (u64, u64) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (mut most, mut now) = (0, None);
    while std::time::Instant::now() < deadline {
        now = text_rss_kib(child.id(), microvm_path());
        let kib = now.unwrap_or(0);
        most = most.max(kib);
        if most > 0 && kib * 2 < most {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    (most, now.expect("no text mapping: the VM is not running"))
}
