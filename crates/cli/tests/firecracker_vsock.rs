//! Firecracker's hybrid vsock through its API, with curl (and the QEMU front end's
//! microvm-only `-device hybrid-vsock-device`): `PUT /vsock` builds the device,
//! `GET /vm/config` shows it, its listener serves `CONNECT` lines on the device thread
//! (under its seccomp filter), and a snapshot load moves it with `vsock_override`. The
//! tiny guests have no vsock driver, so a `CONNECT` ends with the stream closed (the
//! device is not active); data between a real guest and the host is the rig's test
//! (`xtask/tests/hvsock.rs`).

mod common;

use common::firecracker::*;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A host process's `CONNECT` to a guest with no vsock driver: the listener takes it,
/// reads the line and closes the stream.
fn connect_is_closed(uds: &Path) {
    let mut s = UnixStream::connect(uds).unwrap_or_else(|e| panic!("connect {}: {e}", uds.display()));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"CONNECT 52\n").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).expect("closed, not timed out"), 0, "no guest listens: the stream closes");
}

#[test]
fn put_vsock_builds_the_device_and_a_snapshot_load_moves_its_socket() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-vsock");
    let kernel = dir.file("vmlinux", &tiny_guest::counter_on_serial(10_000));
    let (state, mem) = (dir.path().join("state"), dir.path().join("mem"));
    let uds = dir.path().join("v.sock");
    let socket = dir.path().join("fc1.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
    assert_eq!(put(&socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);

    let reserved = put(&socket, "/vsock", &json!({ "guest_cid": 2, "uds_path": uds }).to_string());
    assert_eq!(reserved.status, 400);
    assert!(reserved.fault().starts_with("Vsock config error: guest_cid 2"), "{}", reserved.fault());
    let taken = put(&socket, "/vsock", &json!({ "guest_cid": 3, "uds_path": socket }).to_string());
    assert!(taken.fault().contains("exists"), "{}", taken.fault());
    let vsock = json!({ "vsock_id": "vsock0", "guest_cid": 3, "uds_path": uds });
    assert_eq!(put(&socket, "/vsock", &vsock.to_string()).status, 204);
    assert_eq!(curl(&socket, "GET", "/vm/config", None).body["vsock"], vsock);
    assert!(!uds.exists(), "the socket is bound when the VM is built");

    assert_eq!(put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
    assert!(vm.wait_for_stdout(b"0000000003\n", RUN_TIMEOUT), "the guest did not count");
    connect_is_closed(&uds);
    connect_is_closed(&uds);
    assert_eq!(curl(&socket, "GET", "/vm/config", None).body["vsock"], vsock, "after boot too");
    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#)).status, 204);
    let create = json!({ "snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem });
    assert_eq!(put(&socket, "/snapshot/create", &create.to_string()).status, 204);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, first) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", first.describe());
    assert!(!first.stderr.contains("seccomp"), "{}", first.describe());

    // A new process: the old socket file is still there (as with Firecracker, it is not
    // removed), so the load must move the device elsewhere.
    let socket = dir.path().join("fc2.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let load = |over: Option<&Path>| {
        let mut body = json!({ "snapshot_path": state, "mem_file_path": mem, "resume_vm": true });
        if let Some(path) = over {
            body["vsock_override"] = json!({ "uds_path": path });
        }
        put(&socket, "/snapshot/load", &body.to_string())
    };
    let stale = load(None);
    assert_eq!(stale.status, 400);
    assert!(stale.fault().contains("exists"), "{}", stale.fault());
    let moved = dir.path().join("v2.sock");
    assert_eq!(load(Some(&moved)).status, 204);
    assert_eq!(curl(&socket, "GET", "/", None).body["state"], "Running");
    let config = curl(&socket, "GET", "/vm/config", None).body;
    assert_eq!(config["vsock"]["uds_path"], json!(moved));
    assert_eq!(config["vsock"]["guest_cid"], 3);
    connect_is_closed(&moved);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    assert!(!out.stderr.contains("seccomp"), "{}", out.describe());
}

/// The QEMU front end offers the same device under a microvm-only name; a socket path in
/// the way is one line at start.
#[test]
fn the_qemu_front_end_builds_it_as_hybrid_vsock_device() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("qemu-hvsock");
    let kernel = dir.file("vmlinux", &tiny_guest::counter_on_serial(10_000));
    let uds = dir.path().join("v.sock");
    let device = format!("hybrid-vsock-device,guest-cid=3,uds-path={}", uds.display());
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-device", &device]);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"0000000003\n", RUN_TIMEOUT), "the guest did not count");
    connect_is_closed(&uds);

    // The same path again, while the first VM holds it.
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-device", &device]);
    let line = assert_one_line_error(&run(cmd), &["v.sock"]);
    assert!(line.contains("Address already in use") || line.contains("in use"), "{line}");
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    assert!(!out.stderr.contains("seccomp"), "{}", out.describe());
}
