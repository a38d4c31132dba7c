//! Firecracker's front end with real peers: `curl --unix-socket` calls in the order of
//! Firecracker's getting-started guide against the built binary, a tiny guest booted by
//! `InstanceStart` that shows on the 16550 and resets on `SendCtrlAltDel`, Firecracker's
//! answers to bad input, and `--no-api --config-file`.

mod common;

use common::firecracker::*;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The set 2 bytes of Ctrl, Alt, Delete pressed, then released in reverse order.
const CTRL_ALT_DELETE_SET2: &[u8] = &[0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];

#[test]
fn getting_started_sequence_boots_pauses_resumes_and_ctrl_alt_del_ends_it() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-getting-started");
    let guest = tiny_guest::echo_keyboard_bytes_then_reset("ready\n", CTRL_ALT_DELETE_SET2.len() as u32);
    let kernel = dir.file("vmlinux", &guest);
    let rootfs = dir.file("rootfs.ext4", &[0u8; 4096]);
    let socket = dir.path().join("firecracker.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);

    let info = curl(&socket, "GET", "/", None);
    assert_eq!(info.status, 200);
    assert_eq!(info.body["state"], "Not started");
    assert_eq!(info.body["id"], "fc-test");
    assert_eq!(curl(&socket, "GET", "/version", None).body["firecracker_version"], "1.12.0");
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0 reboot=k panic=1 pci=off" });
    assert_eq!(put(&socket, "/boot-source", &boot.to_string()).status, 204);
    let drive = json!({ "drive_id": "rootfs", "path_on_host": rootfs, "is_root_device": true, "is_read_only": false });
    assert_eq!(put(&socket, "/drives/rootfs", &drive.to_string()).status, 204);
    assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    let machine = curl(&socket, "GET", "/machine-config", None);
    assert_eq!((machine.status, &machine.body["mem_size_mib"]), (200, &json!(32)));
    assert_eq!(put(&socket, "/entropy", "{}").status, 204);
    let metrics = dir.path().join("metrics.json");
    assert_eq!(put(&socket, "/metrics", &json!({ "metrics_path": metrics }).to_string()).status, 204);
    let again = put(&socket, "/metrics", &json!({ "metrics_path": metrics }).to_string());
    assert_eq!(again.fault(), "Metrics error: Reinitialization of metrics not allowed.");
    let config = curl(&socket, "GET", "/vm/config", None);
    assert_eq!(config.body["drives"][0]["drive_id"], "rootfs");
    assert_eq!(config.body["boot-source"]["boot_args"], "console=ttyS0 reboot=k panic=1 pci=off");

    // Before boot: what needs a running VM, and what microvm does not do yet.
    let paused = curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#));
    assert_eq!(paused.status, 400);
    assert_eq!(paused.fault(), "The requested operation is not supported before starting the microVM.");
    let missing = dir.path().join("no-such-snapshot");
    let load = put(&socket, "/snapshot/load", &json!({ "snapshot_path": missing, "mem_file_path": "m" }).to_string());
    assert!(load.fault().starts_with("Load snapshot error: snapshot "), "{}", load.fault());
    assert!(load.fault().contains("no-such-snapshot"), "{}", load.fault());

    assert_eq!(put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
    assert!(vm.wait_for_stdout(b"ready\n", RUN_TIMEOUT), "the guest did not show on the serial console");

    // After boot, the API keeps answering, from the VM's event loop.
    assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Running");
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#)).status, 204);
    assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Paused");
    let (state, mem) = (dir.path().join("state"), dir.path().join("mem"));
    let snapshot =
        put(&socket, "/snapshot/create", &json!({ "snapshot_path": state, "mem_file_path": mem }).to_string());
    assert_eq!(snapshot.status, 204, "{}", snapshot.body);
    let (ram, tag) = (32 << 20, 4096);
    assert_eq!(
        std::fs::metadata(&mem).unwrap().len(),
        ram + tag,
        "the memory file holds all of RAM (sparse), then its tag"
    );
    assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Paused");
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Resumed"}"#)).status, 204);
    let late = put(&socket, "/boot-source", &boot.to_string());
    assert_eq!(late.status, 400);
    assert_eq!(late.fault(), "The requested operation is not supported after starting the microVM.");
    assert_eq!(curl(&socket, "GET", "/machine-config", None).body["vcpu_count"], 1);
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "FlushMetrics"}"#).status, 204);
    let text = std::fs::read_to_string(&metrics).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(line["utc_timestamp_ms"].as_u64().is_some(), "{line}");
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "SendCtrlAltDel"}"#).status, 204);

    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "microvm did not exit after Ctrl-Alt-Del\n{}", out.describe());
    let mut expected = b"ready\n".to_vec();
    expected.extend_from_slice(CTRL_ALT_DELETE_SET2);
    assert_clean_exit(&out, &expected);
    assert!(!socket.exists(), "the API socket is removed at exit");
}

/// Malformed JSON, unknown fields, wrong types, oversized bodies, wrong methods: each gets
/// Firecracker's status and a fault message, and the server keeps serving.
#[test]
fn bad_requests_get_firecrackers_answers() {
    let dir = TempDir::new("fc-bad");
    let socket = dir.path().join("api.sock");
    let mut vm = firecracker(&socket, &["--http-api-max-payload-size", "1000", "--mmds-size-limit", "100"]);
    wait_for_socket(&socket, &mut vm);
    // Outside Firecracker's OpenAPI file on purpose (not JSON, no such path or method):
    // checked to get its 400 fault rather than against the file.
    let outside: &[(&str, &str, Option<&str>, &str)] = &[
        ("PUT", "/boot-source", Some("{"), "An error occurred when deserializing the json body of a request: EOF"),
        ("GET", "/nowhere", None, "Invalid request method and/or path: GET /nowhere."),
        ("DELETE", "/drives/rootfs", None, "Unsupported HTTP method: DELETE."),
    ];
    for (method, path, body, expected) in outside {
        let answer = curl_outside(&socket, method, path, *body);
        assert!(answer.fault().contains(expected), "{method} {path}: {:?} lacks {expected:?}", answer.fault());
    }
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        ("PUT", "/boot-source", Some(r#"{"kernel_image_path": "k", "kernel": 1}"#), "unknown field `kernel`"),
        ("PUT", "/machine-config", Some(r#"{"vcpu_count": "1", "mem_size_mib": 32}"#), "invalid type: string \"1\""),
        ("PUT", "/machine-config", Some(r#"{"vcpu_count": 0, "mem_size_mib": 32}"#), "Machine config error"),
        ("PUT", "/machine-config", Some(r#"{"vcpu_count": 2, "mem_size_mib": 32, "smt": true}"#), "smt"),
        ("PUT", "/boot-source", None, "Empty PUT request."),
        ("PUT", "/drives/a", Some(r#"{"drive_id": "b", "is_root_device": false}"#), "does not match"),
        ("PUT", "/actions", Some(r#"{"action_type": "SendCtrlAltDel"}"#), "before starting the microVM"),
        ("PUT", "/actions", Some(r#"{"action_type": "InstanceStart"}"#), "Missing boot source"),
        ("PUT", "/cpu-config", Some(r#"{"reg_modifiers": [{"addr": "0x1", "bitmap": "0b1"}]}"#), "reg_modifiers"),
        ("PUT", "/metrics", Some(r#"{"metrics_path": "/nonexistent/m"}"#), "Metrics error: cannot open"),
        ("PUT", "/actions", Some(r#"{"action_type": "FlushMetrics"}"#), "before starting the microVM"),
    ];
    for (method, path, body, expected) in cases {
        let answer = curl(&socket, method, path, *body);
        assert_eq!(answer.status, 400, "{method} {path}: {}", answer.body);
        assert!(answer.fault().contains(expected), "{method} {path}: {:?} lacks {expected:?}", answer.fault());
    }
    let big = format!(r#"{{"kernel_image_path": "{}"}}"#, "k".repeat(2000));
    let answer = put(&socket, "/boot-source", &big);
    assert_eq!(answer.status, 400);
    assert!(answer.fault().contains("is larger than the limit of 1000 allowed by server"), "{}", answer.fault());
    let mmds = put(&socket, "/mmds", &json!({ "data": "z".repeat(200) }).to_string());
    assert_eq!((mmds.status, mmds.fault()), (413, "The MMDS patch request doesn't fit."));
    assert_eq!(curl(&socket, "GET", "/mmds", None).body, json!({}), "a refused store changes nothing");
    // A stream that is not HTTP is answered and closed, never a hang.
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    raw.write_all(b"\x00\x01 not http\r\n\r\n").unwrap();
    let mut text = String::new();
    raw.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text:?}");
    check_raw(&[("(not HTTP)", "", None)], &text);
    // Still serving, with keep-alive: two requests on one connection.
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    raw.write_all(b"GET /version HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    text.clear();
    raw.read_to_string(&mut text).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text:?}");
    check_raw(&[("GET", "/version", None), ("GET", "/", None)], &text);
    // Idle keep-alive connections (client pools keep up to 20) do not lock new clients out.
    let idle: Vec<UnixStream> = (0..24).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(curl(&socket, "GET", "/version", None).status, 200);
    drop(idle);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    assert_no_panic(&out);
}

/// The connection that sends `InstanceStart` goes on to the running VM with what it holds:
/// a request pipelined behind it is answered by the VM's event loop.
#[test]
fn a_request_pipelined_after_instance_start_is_answered_by_the_running_vm() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-pipelined");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_spin("spinning\n"));
    let socket = dir.path().join("api.sock");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    assert_eq!(put(&socket, "/boot-source", &json!({ "kernel_image_path": kernel }).to_string()).status, 204);
    assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    // More than 1 KiB: curl sends Expect: 100-continue and waits for 100 Continue.
    let metadata = json!({ "latest": { "user-data": "x".repeat(3000) } });
    assert_eq!(put(&socket, "/mmds", &metadata.to_string()).status, 204);
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    let start = r#"{"action_type": "InstanceStart"}"#;
    let requests = format!(
        "PUT /actions HTTP/1.1\r\nContent-Length: {}\r\n\r\n{start}GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        start.len()
    );
    raw.write_all(requests.as_bytes()).unwrap();
    let mut text = String::new();
    raw.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"), "{text:?}");
    assert!(text.contains("HTTP/1.1 200 OK\r\n") && text.contains(r#""state":"Running""#), "{text:?}");
    check_raw(&[("PUT", "/actions", Some(start)), ("GET", "/", None)], &text);
    assert!(vm.wait_for_stdout(b"spinning\n", RUN_TIMEOUT));
    let idle: Vec<UnixStream> = (0..24).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    let stored = curl(&socket, "GET", "/mmds", None);
    drop(idle);
    assert_eq!(stored.body, metadata, "the MMDS store is kept across boot");
    let too_big = json!({ "x": "y".repeat(60_000) });
    let answer = curl(&socket, "PATCH", "/mmds", Some(&too_big.to_string()));
    assert_eq!(answer.status, 400, "over the payload limit before the store's: {}", answer.body);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert_eq!(status.and_then(|s| s.code()), Some(128 + libc::SIGTERM), "{}", out.describe());
    assert_no_panic(&out);
}

#[test]
fn no_api_config_file_boots_at_once() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-config-file");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_reset("hello from the config file\n"));
    let config = json!({
        "boot-source": { "kernel_image_path": kernel, "boot_args": "console=ttyS0" },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": 32 },
    });
    let file = dir.file("vm.json", config.to_string().as_bytes());
    let mut cmd = microvm();
    cmd.args(["--no-api", "--config-file"]).arg(&file);
    let out = run(cmd);
    assert_clean_exit(&out, b"hello from the config file\n");
}

#[test]
fn command_line_errors_are_one_line() {
    let dir = TempDir::new("fc-cli");
    let mut cmd = microvm();
    cmd.args(["--api-sock", "/tmp/x.sock", "--seccomp-filter", "f.bpf"]);
    assert_one_line_error(&run(cmd), &["--seccomp-filter"]);
    let mut cmd = microvm();
    cmd.args(["--no-api", "--id", "x"]);
    assert_one_line_error(&run(cmd), &["--config-file"]);
    let bad = dir.file("bad.json", br#"{"boot-source": {"kernel_image_path": "/nonexistent"}, "drives": []}"#);
    let mut cmd = microvm();
    cmd.args(["--no-api", "--config-file"]).arg(&bad);
    assert_one_line_error(&run(cmd), &["kernel file"]);
    let vsock = dir.file(
        "vsock.json",
        br#"{"boot-source": {"kernel_image_path": "/dev/null"}, "drives": [], "vsock": {"guest_cid": 2, "uds_path": "v"}}"#,
    );
    let mut cmd = microvm();
    cmd.args(["--no-api", "--config-file"]).arg(&vsock);
    assert_one_line_error(&run(cmd), &["Vsock config error", "guest_cid 2"]);
}

/// Called `firecracker` (a link), the binary takes Firecracker's `--version` and `--help`;
/// called `microvm`, those stay QEMU's.
#[test]
fn the_program_name_selects_the_front_end() {
    let dir = TempDir::new("fc-name");
    let link = dir.path().join("firecracker");
    std::os::unix::fs::symlink(microvm_path(), &link).unwrap();
    let mut cmd = microvm_at(&link);
    cmd.arg("--version");
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout_lossy().starts_with("Firecracker v1.12.0\n"), "{}", out.describe());
    let mut cmd = microvm_at(&link);
    cmd.arg("--help");
    assert!(run(cmd).stdout_lossy().contains("--api-sock PATH"));
    let mut cmd = microvm();
    cmd.arg("--version");
    assert!(run(cmd).stdout_lossy().starts_with("QEMU emulator version"));
}

/// `InstanceStart` that cannot build the VM answers 400 and leaves the API serving: the
/// configuration can be corrected and started again; and the process still ends on
/// SIGTERM (the failed set-up had blocked it for the VM's signalfd).
#[test]
fn a_failed_instance_start_can_be_corrected_or_stopped() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-failed-start");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_reset("second try\n"));
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" }).to_string();
    for correct in [true, false] {
        let socket = dir.path().join(format!("api-{correct}.sock"));
        let mut vm = firecracker(&socket, &[]);
        wait_for_socket(&socket, &mut vm);
        let image = dir.file("disk.img", &[0u8; 4096]);
        let drive = json!({ "drive_id": "data", "path_on_host": image, "is_root_device": false }).to_string();
        assert_eq!(put(&socket, "/boot-source", &boot).status, 204);
        assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
        assert_eq!(put(&socket, "/drives/data", &drive).status, 204);
        std::fs::remove_file(&image).unwrap();
        let failed = put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#);
        assert_eq!(failed.status, 400);
        assert!(failed.fault().starts_with("Start microvm error: "), "{}", failed.fault());
        assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Not started");
        let started = vm.started;
        if correct {
            let image = dir.file("disk.img", &[0u8; 4096]);
            let drive = json!({ "drive_id": "data", "path_on_host": image, "is_root_device": false });
            assert_eq!(put(&socket, "/drives/data", &drive.to_string()).status, 204);
            assert_eq!(put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
            let (status, out) = vm.wait(RUN_TIMEOUT, started);
            assert!(status.is_some(), "{}", out.describe());
            assert_clean_exit(&out, b"second try\n");
        } else {
            vm.signal(libc::SIGTERM);
            let (status, out) = vm.wait(RUN_TIMEOUT, started);
            assert!(status.is_some(), "SIGTERM did not end the waiting process\n{}", out.describe());
            assert_no_panic(&out);
        }
    }
}

/// The counter's lines in `out`, without a last unfinished one.
fn counts(out: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(out);
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(|l| l.trim().parse().unwrap_or_else(|_| panic!("not a count: {l:?}"))).collect()
}

#[test]
fn snapshot_create_then_load_in_a_new_process_goes_on_counting() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-snapshot");
    let kernel = dir.file("vmlinux", &tiny_guest::counter_on_serial(10_000));
    let (state, mem) = (dir.path().join("state"), dir.path().join("mem"));

    let socket = dir.path().join("fc1.socket");
    let mut vm = start_tiny_guest(&socket, &kernel);
    assert!(vm.wait_for_stdout(b"0000000003\n", RUN_TIMEOUT), "the guest did not count");
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#)).status, 204);
    let create = json!({ "snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem });
    assert_eq!(put(&socket, "/snapshot/create", &create.to_string()).status, 204);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, first) = vm.wait(RUN_TIMEOUT, started);

    // A new Firecracker-mode process: no configuration, only the load.
    let socket = dir.path().join("fc2.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let uffd = json!({ "snapshot_path": state, "mem_backend": { "backend_type": "Uffd", "backend_path": "/x" } });
    assert!(put(&socket, "/snapshot/load", &uffd.to_string()).fault().contains("Uffd"));
    let unknown_tap = json!({ "snapshot_path": state, "mem_file_path": mem,
        "network_overrides": [{ "iface_id": "eth9", "host_dev_name": "tap9" }] });
    let e = put(&socket, "/snapshot/load", &unknown_tap.to_string());
    assert!(e.fault().contains("'eth9'") && e.fault().contains("network-interfaces"), "{}", e.fault());
    let load = json!({ "snapshot_path": state, "mem_backend": { "backend_type": "File", "backend_path": mem },
        "resume_vm": true });
    assert_eq!(put(&socket, "/snapshot/load", &load.to_string()).status, 204);
    assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Running");
    assert_eq!(curl(&socket, "GET", "/vm/config", None).body["machine-config"]["mem_size_mib"], 32);
    let resumed_from = *counts(&first.stdout).last().expect("counts before the snapshot");
    let next = format!("{:010}\n", resumed_from + 2);
    assert!(vm.wait_for_stdout(next.as_bytes(), RUN_TIMEOUT), "the restored guest did not count on");
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, second) = vm.wait(RUN_TIMEOUT, started);
    let mut all = first.stdout.clone();
    all.extend_from_slice(&second.stdout);
    let all = counts(&all);
    for pair in all.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "the count went from {} to {}", pair[0], pair[1]);
    }
}

/// Issue 22 item 1: Firecracker's front end gives the guest a VM Generation ID, as
/// Firecracker does, and every `/snapshot/load` shows a new one and raises the GED's
/// VMGenID event before the guest runs; two loads of one snapshot get different IDs.
#[test]
fn each_snapshot_load_gives_the_guest_a_new_generation_id() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-vmgenid");
    let kernel = dir.file("vmlinux", &tiny_guest::vmgenid_on_serial_then_wait_for_a_new_one());
    let (state, mem) = (dir.path().join("state"), dir.path().join("mem"));
    let socket = dir.path().join("fc.socket");
    let mut vm = start_tiny_guest(&socket, &kernel);
    let printed = vm.wait_for_stdout_that(|seen| guid_in(seen, b"G:").is_some(), RUN_TIMEOUT);
    assert!(printed, "the guest printed no generation ID");
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#)).status, 204);
    let create = json!({ "snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem });
    assert_eq!(put(&socket, "/snapshot/create", &create.to_string()).status, 204);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, booted) = vm.wait(RUN_TIMEOUT, started);
    let first = guid_in(&booted.stdout, b"G:").expect("the boot's GUID");
    assert_ne!(first, [0; 16], "a VM generation ID at boot");
    assert!(guid_in(&booted.stdout, b"N:").is_none(), "no VMGenID event before a restore");

    let mut seen = vec![first];
    for n in 0..2 {
        let socket = dir.path().join(format!("load{n}.socket"));
        let mut vm = firecracker(&socket, &[]);
        wait_for_socket(&socket, &mut vm);
        let load = json!({ "snapshot_path": state, "mem_backend": { "backend_type": "File", "backend_path": mem },
            "resume_vm": true });
        assert_eq!(put(&socket, "/snapshot/load", &load.to_string()).status, 204);
        let announced = vm.wait_for_stdout_that(|seen| guid_in(seen, b"N:").is_some(), RUN_TIMEOUT);
        assert!(announced, "load {n}: the guest saw no VMGenID event");
        vm.signal(libc::SIGTERM);
        let started = vm.started;
        let (_, restored) = vm.wait(RUN_TIMEOUT, started);
        let new = guid_in(&restored.stdout, b"N:")
            .unwrap_or_else(|| panic!("load {n}: no whole GUID after N: in {:?}", restored.stdout));
        assert!(!seen.contains(&new), "load {n}: the generation ID {new:02x?} was seen before");
        seen.push(new);
    }
}
