//! Snapshots on the host's /dev/kvm with a tiny guest that counts on its serial port:
//! QMP `stop` + `migrate file:` + `quit`, then a new microvm with `-incoming file:`
//! goes on counting from the next number (registers, RAM, irqchip and clock restored),
//! many times and several at once; and every bad input is one line before any guest
//! instruction runs.

mod common;

use common::counter::{numbers, wait_lines};
use common::qmp::Qmp;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Busy-wait turns between the counter's lines: a few ms each here.
const DELAY: u32 = 10_000;

fn counter(dir: &TempDir) -> PathBuf {
    dir.file("counter.elf", &tiny_guest::counter_on_serial(DELAY))
}

/// The machine every test here saves and restores; `serial` receives the guest's output.
fn machine(kernel: &Path, serial: &Path, qmp: &Path, extra: &[&str]) -> std::process::Command {
    common::counter::machine("microvm,legacy", kernel, serial, qmp, extra)
}

/// The guest's output over several runs, joined: one count, never back nor skipping.
fn assert_counts_on(outputs: &[&Path]) {
    let text: String = outputs.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let numbers: Vec<u64> = complete.lines().map(|l| l.parse().unwrap_or_else(|_| panic!("bad line {l:?}"))).collect();
    for (i, pair) in numbers.windows(2).enumerate() {
        assert_eq!(pair[1], pair[0] + 1, "line {i}: {} then {}\n{text}", pair[0], pair[1]);
    }
}

/// Boots the counter, lets it count, saves it with QEMU's commands and quits.
fn take_snapshot(dir: &TempDir, kernel: &Path) -> (PathBuf, PathBuf) {
    let out = dir.path().join("out0");
    let sock = dir.path().join("qmp0");
    let snap = dir.path().join("vm.snap");
    let vm = Running::spawn(machine(kernel, &out, &sock, &[]));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out, 3);
    qmp.execute("stop", json!({})).unwrap();
    qmp.execute("migrate", json!({ "uri": format!("file:{}", snap.display()) })).unwrap();
    let info = qmp.execute("query-migrate", json!({})).unwrap();
    assert_eq!(info["status"], "completed", "{info}");
    assert_eq!(info["ram"]["total"], 32 << 20);
    let status = qmp.execute("query-status", json!({})).unwrap();
    assert_eq!(status["status"], "postmigrate");
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    (snap, out)
}

#[test]
fn a_restored_guest_counts_on_from_where_it_stopped() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-counter");
    let kernel = counter(&dir);
    let (snap, out0) = take_snapshot(&dir, &kernel);
    let saved = numbers(&out0);
    let out1 = dir.path().join("out1");
    let sock = dir.path().join("qmp1");
    let incoming = format!("file:{}", snap.display());
    let vm = Running::spawn(machine(&kernel, &out1, &sock, &["-incoming", &incoming]));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out1, 3);
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "running");
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    assert_counts_on(&[&out0, &out1]);
    assert!(numbers(&out1).len() >= 2 && saved.len() >= 3);
}

/// A drive with four queues on an iothread and an `aio=threads` pool: `stop` parks the
/// iothread with the virtio thread (the snapshot is taken), and the restored VM, built
/// from the same options (its iothread and workers started again), counts on.
#[test]
fn a_vm_with_an_iothread_and_a_pool_saves_and_restores() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-iothread");
    let kernel = counter(&dir);
    let disk = dir.file("disk.img", &[0u8; 65536]);
    let drive = format!("id=d,file={},format=raw,if=none,aio=threads", disk.display());
    let device = "virtio-blk-device,drive=d,num-queues=4,iothread=io0";
    let options = ["-object", "iothread,id=io0", "-drive", &drive, "-device", device];
    let (out0, sock0, snap) = (dir.path().join("out0"), dir.path().join("qmp0"), dir.path().join("vm.snap"));
    let vm = Running::spawn(machine(&kernel, &out0, &sock0, &options));
    let mut qmp = Qmp::connect(&sock0);
    wait_lines(&out0, 3);
    qmp.execute("stop", json!({})).unwrap();
    qmp.execute("migrate", json!({ "uri": format!("file:{}", snap.display()) })).unwrap();
    assert_eq!(qmp.execute("query-migrate", json!({})).unwrap()["status"], "completed");
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());

    let (out1, sock1) = (dir.path().join("out1"), dir.path().join("qmp1"));
    let incoming = format!("file:{}", snap.display());
    let restored = [&options[..], &["-incoming", &incoming]].concat();
    let vm = Running::spawn(machine(&kernel, &out1, &sock1, &restored));
    let mut qmp = Qmp::connect(&sock1);
    wait_lines(&out1, 3);
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "running");
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    assert_counts_on(&[&out0, &out1]);
}

#[test]
fn one_snapshot_restores_again_and_again_and_several_at_once() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-clones");
    let kernel = counter(&dir);
    let (snap, out0) = take_snapshot(&dir, &kernel);
    let incoming = format!("file:{}", snap.display());
    let restore = |n: usize| {
        let out = dir.path().join(format!("clone{n}"));
        let sock = dir.path().join(format!("qmpc{n}"));
        (Running::spawn(machine(&kernel, &out, &sock, &["-incoming", &incoming])), out, sock)
    };
    let finish = |(vm, out, sock): (Running, PathBuf, PathBuf)| {
        let mut qmp = Qmp::connect(&sock);
        wait_lines(&out, 2);
        qmp.execute("quit", json!({})).unwrap();
        let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
        assert_counts_on(&[&out0, &out]);
    };
    for n in 0..5 {
        finish(restore(n));
    }
    let clones: Vec<_> = (10..14).map(restore).collect();
    for clone in clones {
        finish(clone);
    }
}

#[test]
fn a_restore_starts_paused_with_dash_s_and_cont_resumes() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-paused");
    let kernel = counter(&dir);
    let (snap, out0) = take_snapshot(&dir, &kernel);
    let out = dir.path().join("out1");
    let sock = dir.path().join("qmp1");
    let incoming = format!("file:{}", snap.display());
    let vm = Running::spawn(machine(&kernel, &out, &sock, &["-incoming", &incoming, "-S"]));
    let mut qmp = Qmp::connect(&sock);
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "paused");
    std::thread::sleep(Duration::from_millis(100));
    assert!(numbers(&out).is_empty(), "a paused restore printed");
    qmp.execute("cont", json!({})).unwrap();
    wait_lines(&out, 2);
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_counts_on(&[&out0, &out]);
}

#[test]
fn cont_after_migrate_goes_on_in_the_source() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-cont");
    let kernel = counter(&dir);
    let out = dir.path().join("out");
    let sock = dir.path().join("qmp");
    let vm = Running::spawn(machine(&kernel, &out, &sock, &[]));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out, 2);
    qmp.execute("migrate-set-capabilities", json!({ "capabilities": [{ "capability": "events", "state": true }] }))
        .unwrap();
    // A running VM is stopped by the migration (STOP), as QEMU's source is.
    let snap = dir.path().join("snap");
    qmp.execute("migrate", json!({ "uri": format!("file:{},offset=0x1000", snap.display()) })).unwrap();
    let statuses: Vec<String> =
        (0..3).map(|_| qmp.wait_event("MIGRATION")["data"]["status"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(statuses, ["setup", "active", "completed"]);
    qmp.wait_event("STOP");
    let before = numbers(&out).len();
    qmp.execute("cont", json!({})).unwrap();
    qmp.wait_event("RESUME");
    wait_lines(&out, before + 2);
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_counts_on(&[&out]);
    // The offset is kept: the state starts 4 KiB into the file.
    let bytes = std::fs::read(&snap).unwrap();
    assert_eq!(&bytes[0x1000..0x1008], b"MVMSNAP\0");
}

/// Restores `snap` with the counter's command line plus `extra`: must fail in one line.
fn restore_fails(kernel: &Path, incoming: &str, extra: &[&str], culprits: &[&str]) -> String {
    let dir = TempDir::new("snapshot-bad");
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-nodefaults", "-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args(["-incoming", incoming])
        .args(extra);
    let _ = dir;
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(out.stdout.is_empty(), "the guest ran: {}", out.describe());
    assert_one_line_error(&out, culprits)
}

#[test]
fn bad_snapshots_are_one_line_before_the_guest_runs() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-errors");
    let kernel = counter(&dir);
    let (snap, _) = take_snapshot(&dir, &kernel);
    let good = std::fs::read(&snap).unwrap();
    let uri = |p: &Path| format!("file:{}", p.display());

    let e = restore_fails(&kernel, &uri(&snap), &["-m", "64m"], &["RAM"]);
    assert!(e.contains("32 MiB") && e.contains("64 MiB"), "{e}");
    let e = restore_fails(&kernel, &uri(&snap), &["-smp", "2"], &["vCPUs"]);
    assert!(e.contains("another machine"), "{e}");
    let e = restore_fails(&kernel, &uri(&snap), &["-device", "virtio-rng-device"], &["virtio-rng-device"]);
    assert!(e.contains("another machine"), "{e}");

    let truncated = dir.file("truncated", &good[..good.len() / 2]);
    restore_fails(&kernel, &uri(&truncated), &[], &["truncated"]);
    let short_state = dir.file("short", &good[..100]);
    restore_fails(&kernel, &uri(&short_state), &[], &["truncated"]);
    let mut flipped = good.clone();
    flipped[80] ^= 0x40;
    let corrupt = dir.file("corrupt", &flipped);
    restore_fails(&kernel, &uri(&corrupt), &[], &["corrupt", "checksum"]);
    let mut other = good.clone();
    other[8] = 99;
    let other = dir.file("version", &other);
    restore_fails(&kernel, &uri(&other), &[], &["format version 99"]);
    restore_fails(&kernel, &uri(&kernel), &[], &["not a microvm snapshot"]);
    restore_fails(&kernel, &uri(&dir.path().join("missing")), &[], &["missing"]);
    restore_fails(&kernel, "tcp:127.0.0.1:4444", &[], &["file:PATH"]);
    restore_fails(&kernel, &format!("{},clock=later", uri(&snap)), &[], &["clock=continue or clock=realtime"]);
}

#[test]
fn migrate_refuses_what_it_cannot_do() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-qmp-errors");
    let kernel = counter(&dir);
    let out = dir.path().join("out");
    let sock = dir.path().join("qmp");
    let vm = Running::spawn(machine(&kernel, &out, &sock, &[]));
    let mut qmp = Qmp::connect(&sock);
    let e = qmp.execute("migrate", json!({ "uri": "tcp:127.0.0.1:4444" })).unwrap_err();
    assert!(e.contains("file:PATH"), "{e}");
    let e = qmp.execute("migrate", json!({ "uri": "file:/nonexistent-dir/x" })).unwrap_err();
    assert!(e.contains("/nonexistent-dir/x"), "{e}");
    let failed = qmp.execute("query-migrate", json!({})).unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    let e = qmp
        .execute(
            "migrate-set-capabilities",
            json!({ "capabilities": [{ "capability": "postcopy-ram", "state": true }] }),
        )
        .unwrap_err();
    assert!(e.contains("postcopy-ram"), "{e}");
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
}

/// Rewrites the state of `snap` (same length: only fixed-size fields change) with `edit`.
fn edit_state(snap: &Path, to: &Path, edit: impl FnOnce(&mut vmm::snapshot::Snapshot)) {
    let bytes = std::fs::read(snap).unwrap();
    let (header, mut state) = vmm::snapshot::decode(&bytes).unwrap();
    edit(&mut state);
    let placement =
        snapshot::MemoryPlacement::Inline { base: 0, len: header.memory_len, align: snapshot::MEMORY_ALIGN };
    let (state_bytes, new_header) = vmm::snapshot::encode(&state, placement, &header.writer).unwrap();
    assert_eq!(new_header.memory_offset, header.memory_offset);
    let mut out = state_bytes;
    out.extend_from_slice(&bytes[out.len()..]);
    std::fs::write(to, out).unwrap();
}

#[test]
fn a_host_without_the_guests_cpu_features_is_refused_with_their_names_before_it_runs() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-cpu");
    let kernel = counter(&dir);
    let (snap, _) = take_snapshot(&dir, &kernel);
    // A bit no KVM offers on any host: leaf 1 ECX bit 16 is reserved on Intel and AMD
    // alike. snapshot-info --check agrees first that the untouched snapshot is fine.
    let report = run({
        let mut cmd = microvm();
        cmd.arg("snapshot-info").arg(&snap).arg("--check");
        cmd
    });
    assert!(report.status.success(), "a snapshot of this host is restorable here: {}", report.describe());
    assert!(report.stdout_lossy().contains("this host can restore it"), "{}", report.describe());
    let edited = dir.path().join("needs-more");
    edit_state(&snap, &edited, |state| {
        for vcpu in &mut state.vcpus {
            vcpu.cpuid.iter_mut().find(|e| e.function == 1).expect("leaf 1").ecx |= 1 << 16;
        }
    });
    let e = restore_fails(&kernel, &format!("file:{}", edited.display()), &[], &["CPUID.01H:ECX[bit 16]"]);
    assert!(e.contains("lacks CPU features"), "{e}");
    let report = run({
        let mut cmd = microvm();
        cmd.arg("snapshot-info").arg(&edited).arg("--check");
        cmd
    });
    assert_eq!(report.status.code(), Some(1), "{}", report.describe());
    assert!(report.stderr.contains("CPUID.01H:ECX[bit 16]"), "{}", report.describe());
}

#[test]
fn snapshot_info_says_what_the_snapshot_needs() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-info");
    let kernel = counter(&dir);
    let (snap, _) = take_snapshot(&dir, &kernel);
    let out = run({
        let mut cmd = microvm();
        cmd.arg("snapshot-info").arg(&snap);
        cmd
    });
    assert!(out.status.success(), "{}", out.describe());
    let text = out.stdout_lossy();
    for line in [
        "format version: 2",
        "type: full",
        "RAM: 32 MiB",
        "vCPUs: 1",
        "machine: pit=on acpi=off",
        "devices: none",
        "TSC: ",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    // The file is sparse: a 32 MiB guest that touched a few pages takes KiBs on disk.
    let allocated: u64 = text
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no allocated size in {text}"));
    assert!(allocated < 1024, "{allocated} KiB allocated for a guest that touched a few pages");
    let bad = run({
        let mut cmd = microvm();
        cmd.arg("snapshot-info").arg(&kernel);
        cmd
    });
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stderr.contains("not a microvm snapshot"), "{}", bad.describe());
}

#[test]
fn x_ignore_shared_leaves_ram_in_the_shared_backend_file() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-shared");
    let kernel = counter(&dir);
    let ram = dir.path().join("ram");
    let object = format!("memory-backend-file,id=mem,size=32M,mem-path={},share=on", ram.display());
    let backend = ["-object", object.as_str(), "-numa", "node,memdev=mem"];
    let (out0, sock) = (dir.path().join("out0"), dir.path().join("qmp0"));
    let vm = Running::spawn(machine(&kernel, &out0, &sock, &backend));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out0, 3);
    let caps = json!({ "capabilities": [{ "capability": "x-ignore-shared", "state": true }] });
    qmp.execute("migrate-set-capabilities", caps).unwrap();
    qmp.execute("stop", json!({})).unwrap();
    let snap = dir.path().join("snap");
    qmp.execute("migrate", json!({ "uri": format!("file:{}", snap.display()) })).unwrap();
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
    // Only the state: RAM stayed in the backend file, which the restore maps again.
    let size = std::fs::metadata(&snap).unwrap().len();
    assert!(size < 64 << 10, "the snapshot is {size} bytes: RAM was written");

    let (out1, sock) = (dir.path().join("out1"), dir.path().join("qmp1"));
    let incoming = format!("file:{}", snap.display());
    let mut extra = backend.to_vec();
    extra.extend(["-incoming", incoming.as_str()]);
    let vm = Running::spawn(machine(&kernel, &out1, &sock, &extra));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out1, 2);
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_counts_on(&[&out0, &out1]);

    // A clone of a template maps the file privately (share=off, as Kata's VM templates):
    // it counts on from the same state, and its writes do not reach the file.
    let template = std::fs::read(&ram).unwrap();
    let private = object.replace("share=on", "share=off");
    let (out2, sock) = (dir.path().join("out2"), dir.path().join("qmp2"));
    let vm = Running::spawn(machine(
        &kernel,
        &out2,
        &sock,
        &["-object", &private, "-numa", "node,memdev=mem", "-incoming", &incoming],
    ));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out2, 2);
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
    assert!(std::fs::read(&ram).unwrap() == template, "a private clone wrote to the template");

    // Without the backend there is no RAM to restore: one line.
    let e = restore_fails(&kernel, &incoming, &[], &["x-ignore-shared"]);
    assert!(e.contains("memory-backend-file"), "{e}");
}

#[test]
fn incoming_defer_waits_in_inmigrate_until_migrate_incoming() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-defer");
    let kernel = counter(&dir);
    let (snap, out0) = take_snapshot(&dir, &kernel);
    let uri = format!("file:{}", snap.display());

    // Without -S: runs once the state is loaded (QEMU's autostart).
    let (out1, sock) = (dir.path().join("out1"), dir.path().join("qmp1"));
    let vm = Running::spawn(machine(&kernel, &out1, &sock, &["-incoming", "defer"]));
    let mut qmp = Qmp::connect(&sock);
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "inmigrate");
    std::thread::sleep(Duration::from_millis(100));
    assert!(numbers(&out1).is_empty(), "the guest ran before its state was loaded");
    let e = qmp.execute("migrate-incoming", json!({ "uri": "tcp:127.0.0.1:4444" })).unwrap_err();
    assert!(e.contains("file:PATH"), "{e}");
    let e = qmp.execute("migrate-incoming", json!({ "uri": format!("file:{}", kernel.display()) })).unwrap_err();
    assert!(e.contains("not a microvm snapshot"), "{e}");
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "inmigrate", "a failed load changes nothing");
    qmp.execute("migrate-set-capabilities", json!({ "capabilities": [{ "capability": "events", "state": true }] }))
        .unwrap();
    qmp.execute("migrate-incoming", json!({ "uri": uri })).unwrap();
    qmp.wait_event("RESUME");
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "running");
    wait_lines(&out1, 2);
    let e = qmp.execute("migrate-incoming", json!({ "uri": uri })).unwrap_err();
    assert!(e.contains("'-incoming' was not specified"), "{e}");
    qmp.execute("quit", json!({})).unwrap();
    let _ = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_counts_on(&[&out0, &out1]);

    // With -S it waits paused after the load, unless a cont came meanwhile.
    for cont_first in [false, true] {
        let out = dir.path().join(format!("out-s-{cont_first}"));
        let sock = dir.path().join(format!("qmp-s-{cont_first}"));
        let vm = Running::spawn(machine(&kernel, &out, &sock, &["-incoming", "defer", "-S"]));
        let mut qmp = Qmp::connect(&sock);
        if cont_first {
            qmp.execute("cont", json!({})).unwrap();
            assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "inmigrate");
        }
        qmp.execute("migrate-incoming", json!({ "uri": uri })).unwrap();
        let status = qmp.execute("query-status", json!({})).unwrap()["status"].clone();
        assert_eq!(status, if cont_first { "running" } else { "paused" });
        if !cont_first {
            qmp.execute("cont", json!({})).unwrap();
        }
        wait_lines(&out, 2);
        qmp.execute("quit", json!({})).unwrap();
        let _ = vm.wait(RUN_TIMEOUT, Instant::now());
        assert_counts_on(&[&out0, &out]);
    }
}

#[test]
fn clock_realtime_catches_up_only_where_the_snapshot_has_a_wall_clock_and_says_so_otherwise() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-clock");
    let kernel = counter(&dir);
    let (snap, out0) = take_snapshot(&dir, &kernel);
    let info = run({
        let mut cmd = microvm();
        cmd.arg("snapshot-info").arg(&snap);
        cmd
    });
    let has_wall_clock = info.stdout_lossy().contains("KVM clock: with the wall-clock time");
    assert!(
        has_wall_clock || info.stdout_lossy().contains("KVM clock: without a wall-clock time"),
        "{}",
        info.describe()
    );
    let (out1, sock) = (dir.path().join("out1"), dir.path().join("qmp1"));
    let incoming = format!("file:{},clock=realtime", snap.display());
    let vm = Running::spawn(machine(&kernel, &out1, &sock, &["-incoming", &incoming]));
    let mut qmp = Qmp::connect(&sock);
    wait_lines(&out1, 2);
    qmp.execute("quit", json!({})).unwrap();
    let (_, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_counts_on(&[&out0, &out1]);
    let warned = output.stderr.matches("clock=realtime: the snapshot holds no wall-clock time").count();
    assert_eq!(warned, usize::from(!has_wall_clock), "{}", output.describe());
}

/// A restore's guest time goes on from the saved instant when its vCPUs start, not
/// from when the restore began: here the set-up waits 2 s for a monitor client
/// (`wait=on`) after the state is loaded, the guest is saved again as soon as it runs,
/// and its KVM clock moved on by much less than those 2 s.
#[test]
fn the_guest_clock_starts_with_the_vcpus_not_with_the_restore() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("snapshot-clock-late");
    let kernel = counter(&dir);
    let (snap, _) = take_snapshot(&dir, &kernel);
    let (out1, sock, held) = (dir.path().join("out1"), dir.path().join("qmp1"), dir.path().join("held"));
    let held_arg = format!("unix:{},server=on,wait=on", held.display());
    let incoming = format!("file:{}", snap.display());
    let vm = Running::spawn(machine(&kernel, &out1, &sock, &["-incoming", &incoming, "-qmp", &held_arg]));
    std::thread::sleep(Duration::from_secs(2));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let _client = loop {
        match std::os::unix::net::UnixStream::connect(&held) {
            Ok(s) => break s,
            Err(e) => assert!(Instant::now() < deadline, "cannot connect to {}: {e}", held.display()),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut qmp = Qmp::connect(&sock);
    qmp.execute("stop", json!({})).unwrap();
    let again = dir.path().join("again.snap");
    qmp.execute("migrate", json!({ "uri": format!("file:{}", again.display()) })).unwrap();
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
    let clock = |path: &Path| vmm::snapshot::read(path, 0).unwrap().2.vm.clock.clock;
    let ran_ms = clock(&again).saturating_sub(clock(&snap)) / 1_000_000;
    assert!(ran_ms < 1000, "the guest clock moved on {ran_ms} ms between the saves");
}
