//! Firecracker's `i8042`, `signals`, `entropy`, `balloon`, `latencies_us` and `api_server`
//! metrics sections from a running tiny guest: each counter moves by what the guest, the
//! API client or the host did. (`mmds` is checked in the rig, with a Linux guest's
//! requests: xtask/tests/mmds.rs; `vsock` and the rest of `mmds` by the devices' unit
//! tests, whose drivers speak their queues: the tiny guests have no vsock driver.)

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// A field summed over every line (counters are deltas; gauges are read from the last).
fn sum(lines: &[Value], section: &str, field: &str) -> u64 {
    lines.iter().map(|l| l[section][field].as_u64().unwrap_or_else(|| panic!("no {section}.{field} in {l}"))).sum()
}

/// Starts `kernel` with `extra` configuration (sections of the config file) and a
/// metrics file; returns the VM and the metrics file's path.
fn start(dir: &TempDir, kernel: &[u8], extra: Value) -> (Running, PathBuf) {
    let kernel = dir.file("vmlinux", kernel);
    let mut config = json!({
        "boot-source": { "kernel_image_path": kernel, "boot_args": "console=ttyS0" },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": 32 },
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    let file = dir.file("vm.json", config.to_string().as_bytes());
    let metrics = dir.path().join("metrics.json");
    let mut cmd = microvm();
    cmd.args(["--no-api", "--config-file"]).arg(&file).arg("--metrics-path").arg(&metrics);
    (Running::spawn(cmd), metrics)
}

/// The guest's reset command on port 0x64 is one byte written and one reset; the VM ends
/// (status 0, as Firecracker's) and its last line has them.
#[test]
fn the_i8042_section_counts_the_guests_reset() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-i8042");
    let (vm, metrics) = start(&dir, &tiny_guest::serial_then_reset("bye\n"), json!({}));
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", out.describe());
    let written = lines(&metrics);
    assert_eq!(sum(&written, "i8042", "reset_count"), 1, "{written:?}");
    assert!(sum(&written, "i8042", "write_count") >= 1, "{written:?}");
    assert_eq!(sum(&written, "i8042", "missed_write_count"), 0);
    assert_eq!(sum(&written, "i8042", "error_count"), 0);
    assert_eq!(sum(&written, "signals", "sighup"), 0, "no SIGHUP was sent");
}

/// SIGHUP ends the VM in order (as SIGTERM); the line written at the end has
/// `signals.sighup` 1, the other signals 0.
#[test]
fn the_signals_section_records_a_sighup() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-sighup");
    let (mut vm, metrics) = start(&dir, &tiny_guest::serial_then_halt("up\n"), json!({}));
    assert!(vm.wait_for_stdout(b"up\n", RUN_TIMEOUT), "the guest did not write");
    // The line written at start (it may come just after the guest's first output).
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    while lines(&metrics).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no line written at start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(lines(&metrics)[0]["signals"]["sighup"], 0);
    vm.signal(libc::SIGHUP);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    let last = lines(&metrics).pop().unwrap();
    assert_eq!(last["signals"]["sighup"], 1, "{last}");
    for other in ["sigbus", "sigsegv", "sigill", "sigxfsz", "sigxcpu", "sigpipe"] {
        assert_eq!(last["signals"][other], 0, "{other}: {last}");
    }
}

/// The guest asks its virtio-rng (the only virtio device, so slot 0) for two 4 KiB
/// buffers: two requests and 8 KiB of entropy counted, none throttled.
#[test]
fn the_entropy_section_counts_the_guests_requests_and_bytes() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-entropy");
    // VIRTIO_F_VERSION_1 (bit 32); each request's readable part is ignored by the device,
    // which fills the 4 KiB writable buffer after it.
    let guest = tiny_guest::virtio::virtio_requests_then_halt([0, 1], 1, &[vec![0; 4], vec![0; 4]], "done\n");
    let (mut vm, metrics) = start(&dir, &guest, json!({ "entropy": {} }));
    assert!(vm.wait_for_stdout(b"done\n", RUN_TIMEOUT), "the guest's requests were not answered");
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    let written = lines(&metrics);
    assert_eq!(sum(&written, "entropy", "entropy_event_count"), 2, "{written:?}");
    assert_eq!(sum(&written, "entropy", "entropy_bytes"), 2 * 4096);
    assert_eq!(sum(&written, "entropy", "entropy_rate_limiter_throttled"), 0);
    assert_eq!(sum(&written, "entropy", "entropy_event_fails"), 0);
    assert_eq!(sum(&written, "entropy", "host_rng_fails"), 0);
}

/// The guest's balloon driver (the only virtio device: slot 0) gives one page back on
/// the inflate queue: one inflate turn counted, no deflate, no statistics.
#[test]
fn the_balloon_section_counts_the_guests_inflate() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-balloon");
    // VIRTIO_F_VERSION_1 only: the inflate and deflate queues. The request is one PFN
    // (the page at 3 MiB, which the guest does not use).
    let pfn = (3u32 << 20) / 4096;
    let guest = tiny_guest::virtio::virtio_requests_then_halt([0, 1], 2, &[pfn.to_le_bytes().to_vec()], "done\n");
    let balloon = json!({ "balloon": { "amount_mib": 0, "deflate_on_oom": false } });
    let (mut vm, metrics) = start(&dir, &guest, balloon);
    assert!(vm.wait_for_stdout(b"done\n", RUN_TIMEOUT), "the inflate buffer was not returned");
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    let written = lines(&metrics);
    assert_eq!(sum(&written, "balloon", "inflate_count"), 1, "{written:?}");
    assert_eq!(sum(&written, "balloon", "deflate_count"), 0);
    assert_eq!(sum(&written, "balloon", "stats_updates_count"), 0);
    assert_eq!(sum(&written, "balloon", "event_fails"), 0);
    assert_eq!(sum(&written, "balloon", "activate_fails"), 0);
}

/// `latencies_us`: a pause, a resume and a Full snapshot through the API set their fields
/// (the API level at least the VMM's part, both above zero); a load into a new process
/// sets `load_snapshot` and `vmm_load_snapshot`. Values, not deltas: a later line shows
/// them again.
#[test]
fn the_latencies_section_times_pause_resume_snapshot_and_load() {
    if !kvm_tests_enabled() {
        return;
    }
    use common::firecracker::*;
    let dir = TempDir::new("fc-metrics-latencies");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_halt("up\n"));
    let socket = dir.path().join("api.sock");
    let metrics = dir.path().join("metrics.json");
    let mut vm = firecracker(&socket, &["--metrics-path", metrics.to_str().unwrap()]);
    wait_for_socket(&socket, &mut vm);
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
    assert_eq!(put(&socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
    assert!(vm.wait_for_stdout(b"up\n", RUN_TIMEOUT), "the guest did not write");
    let flush = |socket: &Path| assert_eq!(put(socket, "/actions", r#"{"action_type": "FlushMetrics"}"#).status, 204);
    flush(&socket);
    let before = lines(&metrics).pop().unwrap();
    assert_eq!(before["latencies_us"]["pause_vm"], 0, "nothing paused yet: {before}");
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#)).status, 204);
    let (state, mem) = (dir.path().join("state"), dir.path().join("mem"));
    let create = json!({ "snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem });
    assert_eq!(put(&socket, "/snapshot/create", &create.to_string()).status, 204);
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Resumed"}"#)).status, 204);
    flush(&socket);
    flush(&socket);
    let written = lines(&metrics);
    for line in &written[written.len() - 2..] {
        let l = &line["latencies_us"];
        for op in ["pause_vm", "resume_vm", "full_create_snapshot"] {
            let (api, vmm) = (l[op].as_u64().unwrap(), l[format!("vmm_{op}")].as_u64().unwrap());
            assert!(vmm > 0 && api >= vmm, "{op}: {l}");
        }
        assert_eq!((&l["diff_create_snapshot"], &l["load_snapshot"]), (&json!(0), &json!(0)), "{l}");
    }
    vm.signal(libc::SIGTERM);
    let since = vm.started;
    let _ = vm.wait(RUN_TIMEOUT, since);

    let socket = dir.path().join("api2.sock");
    let metrics = dir.path().join("metrics2.json");
    let mut vm = firecracker(&socket, &["--metrics-path", metrics.to_str().unwrap()]);
    wait_for_socket(&socket, &mut vm);
    let load = json!({ "snapshot_path": state, "mem_backend": { "backend_type": "File", "backend_path": mem }, "resume_vm": true });
    assert_eq!(put(&socket, "/snapshot/load", &load.to_string()).status, 204);
    flush(&socket);
    let l = lines(&metrics).pop().unwrap()["latencies_us"].clone();
    let (api, vmm) = (l["load_snapshot"].as_u64().unwrap(), l["vmm_load_snapshot"].as_u64().unwrap());
    assert!(vmm > 0 && api >= vmm, "{l}");
    vm.signal(libc::SIGTERM);
    let since = vm.started;
    let _ = vm.wait(RUN_TIMEOUT, since);
}

/// `api_server`: with the jailer's start times on the command line, the time to serve the
/// API socket (here started "a second before") and the CPU time with the parent's.
#[test]
fn the_api_server_section_reports_the_startup_time_from_the_jailers_flags() {
    if !kvm_tests_enabled() {
        return;
    }
    use common::firecracker::*;
    let dir = TempDir::new("fc-metrics-api-server");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_halt("up\n"));
    let config = json!({
        "boot-source": { "kernel_image_path": kernel, "boot_args": "console=ttyS0" },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": 32 },
    });
    let file = dir.file("vm.json", config.to_string().as_bytes());
    let (socket, metrics) = (dir.path().join("api.sock"), dir.path().join("metrics.json"));
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let a_second_ago = (ts.tv_sec as u64 - 1) * 1_000_000 + ts.tv_nsec as u64 / 1000;
    let mut cmd = microvm();
    cmd.arg("--api-sock").arg(&socket).arg("--config-file").arg(&file).arg("--metrics-path").arg(&metrics);
    cmd.args([
        "--start-time-us",
        &a_second_ago.to_string(),
        "--start-time-cpu-us",
        "0",
        "--parent-cpu-time-us",
        "5000",
    ]);
    let mut vm = Running::spawn(cmd);
    wait_for_socket(&socket, &mut vm);
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "FlushMetrics"}"#).status, 204);
    let l = lines(&metrics).pop().unwrap()["api_server"].clone();
    let wall = l["process_startup_time_us"].as_u64().unwrap();
    assert!((1_000_000..RUN_TIMEOUT.as_micros() as u64).contains(&wall), "{l}");
    assert!(l["process_startup_time_cpu_us"].as_u64().unwrap() > 5000, "the parent's and its own: {l}");
    vm.signal(libc::SIGTERM);
    let since = vm.started;
    let _ = vm.wait(RUN_TIMEOUT, since);
}
