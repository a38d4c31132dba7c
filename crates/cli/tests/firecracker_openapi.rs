//! Every operation in Firecracker's OpenAPI file, sent with curl before and after
//! `InstanceStart` (issue 17 acceptance 3): each answer is checked against the file by the
//! curl helper (tests/common/firecracker.rs, crates/fc-openapi), each has the status
//! microvm documents for it (docs/firecracker-api.md), and the test fails if the file has
//! an operation it did not send, so a newer file's endpoint cannot go unchecked.

mod common;

use common::firecracker::*;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// One request: method, path, body, the status microvm answers.
type Row = (&'static str, &'static str, Option<Value>, u16);

/// Sends each row; the rows whose status was not the one expected, all of them.
fn send(socket: &Path, rows: &[Row], sent: &mut BTreeSet<String>) -> Vec<String> {
    let spec = fc_openapi::Spec::shared().expect("Firecracker's OpenAPI file");
    let mut wrong = Vec::new();
    for (method, path, body, status) in rows {
        let text = body.as_ref().map(Value::to_string);
        let answer = curl(socket, method, path, text.as_deref());
        if answer.status != *status {
            wrong.push(format!(
                "{method} {path} {}: {} (not {status}) {}",
                text.unwrap_or_default(),
                answer.status,
                answer.body
            ));
        }
        let operation = spec.operation(method, path).expect("the helper checked it is in the file");
        sent.insert(operation["operationId"].as_str().unwrap_or_default().to_owned());
    }
    wrong
}

#[test]
fn every_operation_in_the_file_answers_as_the_file_documents() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("fc-openapi");
    let kernel = dir.file("vmlinux", &tiny_guest::serial_then_spin("spinning\n"));
    let disk = dir.file("disk.img", &[0; 4096]);
    let socket = dir.path().join("api.sock");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let mut vm = firecracker(&socket, &[]);
    wait_for_socket(&socket, &mut vm);
    let drive = json!({ "drive_id": "rootfs", "path_on_host": disk, "is_root_device": false, "is_read_only": false });
    let bucket = json!({ "size": 1000, "refill_time": 100 });
    let mut sent = BTreeSet::new();
    let before: Vec<Row> = vec![
        ("GET", "/", None, 200),
        ("GET", "/version", None, 200),
        ("PUT", "/machine-config", Some(json!({ "vcpu_count": 1, "mem_size_mib": 32 })), 204),
        ("PATCH", "/machine-config", Some(json!({ "vcpu_count": 1, "mem_size_mib": 32 })), 204),
        ("GET", "/machine-config", None, 200),
        ("PUT", "/boot-source", Some(json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" })), 204),
        ("PUT", "/drives/rootfs", Some(drive), 204),
        ("PATCH", "/drives/rootfs", Some(json!({ "drive_id": "rootfs" })), 400),
        ("PUT", "/pmem/pmem0", Some(json!({ "id": "pmem0", "path_on_host": disk })), 400),
        // The id in the body is not the path's.
        ("PUT", "/network-interfaces/eth0", Some(json!({ "iface_id": "eth1", "host_dev_name": "tap0" })), 400),
        ("PATCH", "/network-interfaces/eth0", Some(json!({ "iface_id": "eth0" })), 400),
        ("PUT", "/logger", Some(json!({ "level": "Warning", "log_path": p("log") })), 204),
        ("PUT", "/metrics", Some(json!({ "metrics_path": p("metrics") })), 204),
        ("PUT", "/mmds/config", Some(json!({ "network_interfaces": ["eth9"] })), 400),
        ("PUT", "/mmds", Some(json!({ "latest": { "id": "i-1" } })), 204),
        ("PATCH", "/mmds", Some(json!({ "latest": { "zone": "a" } })), 204),
        ("GET", "/mmds", None, 200),
        ("PUT", "/entropy", Some(json!({ "rate_limiter": { "ops": bucket } })), 204),
        ("PUT", "/serial", Some(json!({ "serial_out_path": p("serial") })), 400),
        ("PUT", "/hotplug/memory", Some(json!({ "total_size_mib": 1024 })), 400),
        ("GET", "/hotplug/memory", None, 400),
        ("PATCH", "/hotplug/memory", Some(json!({ "requested_size_mib": 128 })), 400),
        (
            "PUT",
            "/balloon",
            Some(json!({ "amount_mib": 0, "deflate_on_oom": true, "stats_polling_interval_s": 1 })),
            204,
        ),
        ("GET", "/balloon", None, 200),
        ("PATCH", "/balloon", Some(json!({ "amount_mib": 1 })), 400),
        ("GET", "/balloon/statistics", None, 400),
        ("PATCH", "/balloon/statistics", Some(json!({ "stats_polling_interval_s": 2 })), 400),
        ("PATCH", "/balloon/hinting/start", Some(json!({})), 400),
        ("GET", "/balloon/hinting/status", None, 400),
        ("PATCH", "/balloon/hinting/stop", None, 400),
        ("PUT", "/vsock", Some(json!({ "guest_cid": 3, "uds_path": p("v.sock") })), 204),
        ("PUT", "/cpu-config", Some(json!({})), 204),
        ("PUT", "/snapshot/create", Some(json!({ "snapshot_path": p("s"), "mem_file_path": p("m") })), 400),
        ("PATCH", "/vm", Some(json!({ "state": "Paused" })), 400),
        ("GET", "/vm/config", None, 200),
        ("PUT", "/actions", Some(json!({ "action_type": "InstanceStart" })), 204),
    ];
    let wrong = send(&socket, &before, &mut sent);
    assert!(wrong.is_empty(), "before the start:\n{}", wrong.join("\n"));
    assert!(vm.wait_for_stdout(b"spinning\n", RUN_TIMEOUT), "the guest runs");
    let after: Vec<Row> = vec![
        ("GET", "/", None, 200),
        ("PUT", "/boot-source", Some(json!({ "kernel_image_path": kernel })), 400),
        ("PATCH", "/drives/rootfs", Some(json!({ "drive_id": "rootfs", "rate_limiter": { "ops": bucket } })), 204),
        ("PATCH", "/network-interfaces/eth0", Some(json!({ "iface_id": "eth0" })), 400),
        ("PATCH", "/machine-config", Some(json!({ "vcpu_count": 1, "mem_size_mib": 32 })), 400),
        ("GET", "/balloon", None, 200),
        ("PATCH", "/balloon", Some(json!({ "amount_mib": 1 })), 204),
        ("GET", "/balloon/statistics", None, 200),
        ("PATCH", "/balloon/statistics", Some(json!({ "stats_polling_interval_s": 2 })), 204),
        ("PATCH", "/balloon/hinting/start", Some(json!({})), 400),
        ("GET", "/balloon/hinting/status", None, 400),
        ("PATCH", "/balloon/hinting/stop", None, 400),
        ("GET", "/hotplug/memory", None, 400),
        ("PATCH", "/mmds", Some(json!({ "latest": { "late": "yes" } })), 204),
        ("GET", "/mmds", None, 200),
        ("PUT", "/actions", Some(json!({ "action_type": "FlushMetrics" })), 204),
        ("PATCH", "/vm", Some(json!({ "state": "Paused" })), 204),
        ("PUT", "/snapshot/create", Some(json!({ "snapshot_path": p("s"), "mem_file_path": p("m") })), 204),
        ("PUT", "/snapshot/load", Some(json!({ "snapshot_path": p("s"), "mem_file_path": p("m") })), 400),
        ("PATCH", "/vm", Some(json!({ "state": "Resumed" })), 204),
        ("GET", "/vm/config", None, 200),
        ("PUT", "/actions", Some(json!({ "action_type": "SendCtrlAltDel" })), 204),
    ];
    let wrong = send(&socket, &after, &mut sent);
    assert!(wrong.is_empty(), "after the start:\n{}", wrong.join("\n"));
    let missing: Vec<&str> = spec_ids().into_iter().filter(|id| !sent.contains(*id)).collect();
    assert!(missing.is_empty(), "operations of the file this test did not send: {missing:?}");
    // The spinning guest has no keyboard driver to act on Ctrl-Alt-Del: SIGTERM ends it.
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert_eq!(status.and_then(|s| s.code()), Some(128 + libc::SIGTERM), "{}", out.describe());
    assert_no_panic(&out);
}

fn spec_ids() -> Vec<&'static str> {
    fc_openapi::Spec::shared().expect("Firecracker's OpenAPI file").operation_ids()
}
