//! Firecracker's rate limiters through the API socket with curl, on the real binary and
//! /dev/kvm: accepted on `PUT /drives` and `PUT /entropy` (where they were refused before),
//! changed after boot with `PATCH /drives` bucket by bucket, shown by `GET /vm/config`,
//! and kept by `/snapshot/create` + `/snapshot/load` in a new process. That a limit holds
//! a guest's requests back is shown by the device tests and, with a Linux guest
//! measuring it, by `cargo test -p xtask --test ratelimit`.

mod common;

use common::firecracker::*;
use common::*;
use serde_json::json;

#[test]
fn drive_and_entropy_limiters_are_set_patched_and_survive_a_snapshot() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-rate-limits");
    let kernel = dir.file("vmlinux", &tiny_guest::counter_on_serial(10_000));
    let data = dir.file("data.img", &[0u8; 65536]);
    let (state, mem) = (dir.path().join("state"), dir.path().join("mem"));

    let socket = dir.path().join("fc1.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let boot = json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
    assert_eq!(put(&socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    let ops = json!({ "size": 100, "refill_time": 1000 });
    let drive = json!({ "drive_id": "data", "path_on_host": data, "is_root_device": false,
        "rate_limiter": { "ops": ops } });
    assert_eq!(put(&socket, "/drives/data", &drive.to_string()).status, 204);
    let entropy =
        json!({ "rate_limiter": { "bandwidth": { "size": 1000, "one_time_burst": 4096, "refill_time": 100 } } });
    assert_eq!(put(&socket, "/entropy", &entropy.to_string()).status, 204);
    // Before boot, as in Firecracker, PATCH is refused (PUT replaces instead).
    assert_eq!(curl(&socket, "PATCH", "/drives/data", Some(r#"{"drive_id": "data"}"#)).status, 400);
    assert_eq!(put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
    assert!(vm.wait_for_stdout(b"0000000002\n", RUN_TIMEOUT), "the guest did not count");

    let bandwidth = json!({ "size": 10_000_000, "refill_time": 1000 });
    let patch = json!({ "drive_id": "data", "rate_limiter": { "bandwidth": bandwidth } });
    let patched = curl(&socket, "PATCH", "/drives/data", Some(&patch.to_string()));
    assert_eq!(patched.status, 204, "{}", patched.body);
    let expected = json!({ "bandwidth": bandwidth, "ops": ops });
    let config = curl(&socket, "GET", "/vm/config", None).body;
    assert_eq!(config["drives"][0]["rate_limiter"], expected, "the new bucket added, the other kept");
    assert_eq!(config["entropy"], entropy);
    let unknown = curl(&socket, "PATCH", "/drives/nope", Some(r#"{"drive_id": "nope"}"#));
    assert!(unknown.fault().contains("no drive with id nope"), "{}", unknown.body);

    assert_eq!(curl(&socket, "PATCH", "/vm", Some(r#"{"state": "Paused"}"#)).status, 204);
    let create = json!({ "snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem });
    assert_eq!(put(&socket, "/snapshot/create", &create.to_string()).status, 204);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    vm.wait(RUN_TIMEOUT, started);

    let socket = dir.path().join("fc2.socket");
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let load = json!({ "snapshot_path": state, "mem_backend": { "backend_type": "File", "backend_path": mem },
        "resume_vm": true });
    let loaded = put(&socket, "/snapshot/load", &load.to_string());
    assert_eq!(loaded.status, 204, "{}", loaded.body);
    let config = curl(&socket, "GET", "/vm/config", None).body;
    assert_eq!(config["drives"][0]["rate_limiter"], expected, "the limits as patched, after the restore");
    assert_eq!(config["entropy"], entropy);
    // The restored VM's drive takes further changes.
    let off = json!({ "drive_id": "data", "rate_limiter": { "ops": { "size": 0, "refill_time": 0 } } });
    assert_eq!(curl(&socket, "PATCH", "/drives/data", Some(&off.to_string())).status, 204);
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    vm.wait(RUN_TIMEOUT, started);
}
