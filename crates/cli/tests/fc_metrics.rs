//! Firecracker's metrics from a running tiny guest, driven with `curl --unix-socket`: the
//! JSON lines on the metrics file carry what the guest and the API client did, as deltas
//! since the previous line; the periodic line comes without a `FlushMetrics`; the last line
//! is written when the VM ends.

mod common;

use common::firecracker::*;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The lines written so far.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// A field summed over `lines`: deltas add up to what happened.
fn sum(lines: &[Value], section: &str, field: &str) -> u64 {
    lines.iter().map(|l| l[section][field].as_u64().unwrap_or_else(|| panic!("no {section}.{field} in {l}"))).sum()
}

/// Configures a tiny guest and its metrics file over the API, then starts it.
fn configure_and_start(socket: &Path, kernel: &Path, metrics: &Path) {
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
    assert_eq!(put(socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(socket, "/machine-config", r#"{"vcpu_count": 0, "mem_size_mib": 32}"#).status, 400);
    assert_eq!(put(socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    assert_eq!(put(socket, "/metrics", &json!({ "metrics_path": metrics }).to_string()).status, 204);
    assert_eq!(curl(socket, "GET", "/", None).status, 200);
    assert_eq!(put(socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
}

#[test]
fn flushed_lines_count_the_guests_exits_and_bytes_and_the_api_requests() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics");
    let message = "metrics are counted\n";
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_halt(message));
    let socket = dir.path().join("api.sock");
    let metrics = dir.path().join("metrics.json");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    configure_and_start(&socket, &kernel, &metrics);
    assert!(vm.wait_for_stdout(message.as_bytes(), RUN_TIMEOUT), "the guest did not write");
    assert_eq!(curl(&socket, "GET", "/", None).status, 200);
    assert_eq!(curl(&socket, "GET", "/version", None).status, 200);
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "FlushMetrics"}"#).status, 204);

    // The line written at start and the flushed one.
    let first = lines(&metrics);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first[0]["utc_timestamp_ms"].as_u64().unwrap() <= first[1]["utc_timestamp_ms"].as_u64().unwrap());
    // One port write (one exit to the VMM) per byte, nothing else.
    assert_eq!(sum(&first, "vcpu", "exit_io_out"), message.len() as u64);
    assert_eq!(sum(&first, "vcpu", "exit_io_in"), 0);
    assert_eq!(sum(&first, "vcpu", "exit_mmio_write"), 0);
    assert_eq!(sum(&first, "vcpu", "failures"), 0);
    assert_eq!(sum(&first, "uart", "write_count"), message.len() as u64);
    assert_eq!(sum(&first, "put_api_requests", "boot_source_count"), 1);
    assert_eq!(sum(&first, "put_api_requests", "machine_cfg_count"), 2);
    assert_eq!(sum(&first, "put_api_requests", "machine_cfg_fails"), 1);
    assert_eq!(sum(&first, "put_api_requests", "metrics_count"), 1);
    // InstanceStart; the FlushMetrics that wrote the line counts in the next one.
    assert_eq!(sum(&first, "put_api_requests", "actions_count"), 1);
    assert_eq!(sum(&first, "get_api_requests", "instance_info_count"), 2);
    assert_eq!(sum(&first, "get_api_requests", "vmm_version_count"), 1);
    assert_eq!(sum(&first, "seccomp", "num_faults"), 0);
    assert_eq!(sum(&first, "vmm", "panic_count"), 0);
    assert_eq!(first[1]["block"]["read_bytes"], 0, "no block device");

    // Deltas: a second flush has only what happened since the first.
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "FlushMetrics"}"#).status, 204);
    let second = lines(&metrics);
    assert_eq!(second.len(), 3);
    assert_eq!(second[2]["vcpu"]["exit_io_out"], 0, "{}", second[2]);
    assert_eq!(second[2]["uart"]["write_count"], 0);
    assert_eq!(second[2]["put_api_requests"]["actions_count"], 1, "the first FlushMetrics");

    // The VM's end writes one more line.
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    let last = lines(&metrics);
    assert_eq!(last.len(), 4, "{}", out.describe());
    assert_eq!(last[3]["put_api_requests"]["actions_count"], 1, "the second FlushMetrics");
}

/// The periodic line (60 s in Firecracker and by default) with the period shortened
/// through `MICROVM_METRICS_PERIOD_MS`, and no `FlushMetrics` at all.
#[test]
fn lines_come_every_period_without_a_flush_request() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-period");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_halt("up\n"));
    let socket = dir.path().join("api.sock");
    let metrics = dir.path().join("metrics.json");
    let mut cmd = microvm();
    cmd.env("MICROVM_METRICS_PERIOD_MS", "200").arg("--api-sock").arg(&socket);
    let mut vm = Running::spawn(cmd);
    wait_for_socket(&socket, &mut vm);
    configure_and_start(&socket, &kernel, &metrics);
    assert!(vm.wait_for_stdout(b"up\n", RUN_TIMEOUT), "the guest did not write");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while lines(&metrics).len() < 5 {
        assert!(Instant::now() < deadline, "fewer than 5 lines: {:?}", lines(&metrics));
        std::thread::sleep(Duration::from_millis(50));
    }
    let written = lines(&metrics);
    let stamps: Vec<u64> = written.iter().map(|l| l["utc_timestamp_ms"].as_u64().unwrap()).collect();
    for pair in stamps.windows(2) {
        // The timer's period, give or take the scheduling of a loaded host.
        assert!(pair[1] >= pair[0] + 150, "lines closer than the period: {stamps:?}");
    }
    assert_eq!(sum(&written, "uart", "write_count"), 3);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
}

/// `--no-api --config-file --metrics-path`: no socket, but the start, periodic and end lines.
#[test]
fn without_an_api_socket_the_metrics_path_still_gets_its_lines() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-no-api");
    let message = "no api\n";
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_halt(message));
    let config = json!({
        "boot-source": { "kernel_image_path": kernel, "boot_args": "console=ttyS0" },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": 32 },
    });
    let file = dir.file("vm.json", config.to_string().as_bytes());
    let metrics = dir.path().join("metrics.json");
    let mut cmd = microvm();
    cmd.env("MICROVM_METRICS_PERIOD_MS", "100").args(["--no-api", "--config-file"]).arg(&file);
    cmd.arg("--metrics-path").arg(&metrics);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(message.as_bytes(), RUN_TIMEOUT), "the guest did not write");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while lines(&metrics).len() < 3 {
        assert!(Instant::now() < deadline, "fewer than 3 lines: {:?}", lines(&metrics));
        std::thread::sleep(Duration::from_millis(50));
    }
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    let written = lines(&metrics);
    assert_eq!(sum(&written, "uart", "write_count"), message.len() as u64, "{}", out.describe());
    assert_eq!(sum(&written, "vcpu", "exit_io_out"), message.len() as u64);
}

/// Per-drive sections as Firecracker writes them: the guest reads the first drive 5 times;
/// `block_rootfs` has those reads, `block_scratch` none, and the aggregate `block` their sum.
#[test]
fn each_drive_has_its_own_section_beside_the_aggregate() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-metrics-drives");
    let reads = 5;
    let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_reads_then_reset(tiny_guest::VIRTIO_MMIO_SLOT0, reads));
    let rootfs = dir.file("rootfs.img", &[0u8; 65536]);
    let scratch = dir.file("scratch.img", &[0u8; 65536]);
    let drive = |id: &str, path: &Path, root: bool| json!({ "drive_id": id, "path_on_host": path, "is_root_device": root, "is_read_only": false });
    let config = json!({
        "boot-source": { "kernel_image_path": kernel, "boot_args": "console=ttyS0" },
        "drives": [drive("rootfs", &rootfs, true), drive("scratch", &scratch, false)],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": 32 },
    });
    let file = dir.file("vm.json", config.to_string().as_bytes());
    let metrics = dir.path().join("metrics.json");
    let mut cmd = microvm();
    cmd.args(["--no-api", "--config-file"]).arg(&file).arg("--metrics-path").arg(&metrics);
    let vm = Running::spawn(cmd);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    assert!(out.stdout_lossy().contains("done"), "{}", out.describe());
    let written = lines(&metrics);
    let expected = u64::from(reads);
    assert_eq!(sum(&written, "block_rootfs", "read_count"), expected, "{written:?}");
    assert_eq!(sum(&written, "block_rootfs", "read_bytes"), expected * u64::from(tiny_guest::READ_BYTES));
    assert_eq!(sum(&written, "block_scratch", "read_count"), 0);
    assert_eq!(sum(&written, "block", "read_count"), expected);
    assert_eq!(sum(&written, "block", "read_bytes"), sum(&written, "block_rootfs", "read_bytes"));
}
