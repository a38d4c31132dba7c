//! How power reaches a guest and ends microvm, with tiny guests on the host's /dev/kvm and
//! a QMP client on a Unix socket: an ACPI guest's S5 ends microvm 0 with SHUTDOWN
//! guest-shutdown (or parks it with -no-shutdown, as QEMU), `system_powerdown` sets the
//! GED's power-button bit the guest reads (POWERDOWN first), and `send-key` types
//! Ctrl-Alt-Delete's scan codes on `-device i8042`.

mod common;

use common::qmp::Qmp;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn spawn_with_qmp(dir: &TempDir, guest: &[u8], extra: &[&str]) -> (Running, std::path::PathBuf) {
    let kernel = dir.file("guest.elf", guest);
    let socket = dir.path().join("qmp.sock");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(extra).arg("-qmp").arg(format!("unix:{},server=on,wait=off", socket.display()));
    (Running::spawn(cmd), socket)
}

fn wait_ready(vm: &mut Running, ready: &str) {
    assert!(vm.wait_for_stdout(ready.as_bytes(), RUN_TIMEOUT), "the guest never printed {ready:?}");
}

#[test]
fn acpi_poweroff_ends_microvm_0() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("power-s5");
    let kernel = dir.file("guest.elf", &tiny_guest::serial_then_acpi_poweroff("bye\n"));
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy,acpi=on", "-m", "32m", "-kernel"]).arg(&kernel).args(["-serial", "stdio"]);
    assert_clean_exit(&run(cmd), b"bye\n");
}

#[test]
fn acpi_reset_register_ends_microvm_as_a_guest_reset() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("power-acpi-reset");
    let (mut vm, socket) = spawn_with_qmp(&dir, &tiny_guest::serial_then_acpi_reset("bye\n"), &["-M", "acpi=on", "-S"]);
    let mut qmp = Qmp::connect(&socket);
    qmp.execute("cont", json!({})).unwrap();
    let shutdown = qmp.wait_event("SHUTDOWN");
    assert_eq!(shutdown["data"], json!({ "guest": true, "reason": "guest-reset" }));
    wait_ready(&mut vm, "bye\n");
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "microvm did not exit\n{}", out.describe());
    assert_clean_exit(&out, b"bye\n");
}

/// Without acpi=on there is no sleep register: the same guest's write goes nowhere and
/// it halts for good, so the VM only ends from outside.
#[test]
fn s5_without_acpi_does_not_end_microvm() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("power-s5-off");
    let (mut vm, socket) = spawn_with_qmp(&dir, &tiny_guest::serial_then_acpi_poweroff("bye\n"), &[]);
    wait_ready(&mut vm, "bye\n");
    let mut qmp = Qmp::connect(&socket);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "running");
    qmp.execute("quit", json!({})).unwrap();
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
}

#[test]
fn acpi_poweroff_is_announced_as_guest_shutdown() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("power-s5-qmp");
    let guest = tiny_guest::wait_power_button_then_poweroff("ready\n", "pressed\n");
    let (mut vm, socket) = spawn_with_qmp(&dir, &guest, &["-M", "acpi=on"]);
    wait_ready(&mut vm, "ready\n");
    let mut qmp = Qmp::connect(&socket);
    qmp.execute("system_powerdown", json!({})).unwrap();
    let shutdown = qmp.wait_event("SHUTDOWN");
    assert_eq!(shutdown["data"], json!({ "guest": true, "reason": "guest-shutdown" }));
    let powerdown = qmp.events.iter().position(|e| e["event"] == "POWERDOWN");
    assert!(powerdown.is_some(), "no POWERDOWN before SHUTDOWN: {:?}", qmp.events);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "microvm did not exit\n{}", out.describe());
    assert_clean_exit(&out, b"ready\npressed\n");
}

/// QEMU's -no-shutdown: SHUTDOWN then STOP, status "shutdown", cont refused, quit ends it.
#[test]
fn no_shutdown_parks_the_guest_until_quit() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("power-no-shutdown");
    let guest = tiny_guest::wait_power_button_then_poweroff("ready\n", "pressed\n");
    let (mut vm, socket) = spawn_with_qmp(&dir, &guest, &["-M", "acpi=on", "-no-shutdown"]);
    wait_ready(&mut vm, "ready\n");
    let mut qmp = Qmp::connect(&socket);
    qmp.execute("system_powerdown", json!({})).unwrap();
    let shutdown = qmp.wait_event("SHUTDOWN");
    assert_eq!(shutdown["data"], json!({ "guest": true, "reason": "guest-shutdown" }));
    qmp.wait_event("STOP");
    let status = qmp.execute("query-status", json!({})).unwrap();
    assert_eq!(status, json!({ "status": "shutdown", "running": false }));
    let e = qmp.execute("cont", json!({})).unwrap_err();
    assert_eq!(e, "Resetting the Virtual Machine is required");
    assert!(vm.child.try_wait().unwrap().is_none(), "microvm ended despite -no-shutdown");
    qmp.execute("quit", json!({})).unwrap();
    let shutdown = qmp.wait_event("SHUTDOWN");
    assert_eq!(shutdown["data"], json!({ "guest": false, "reason": "host-qmp-quit" }));
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
}

/// With neither ACPI nor an i8042, QEMU sends POWERDOWN and nothing happens: the same here.
#[test]
fn powerdown_with_no_receiver_only_sends_the_event() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("power-nobody");
    let (mut vm, socket) = spawn_with_qmp(&dir, &tiny_guest::serial_then_spin("ready\n"), &[]);
    wait_ready(&mut vm, "ready\n");
    let mut qmp = Qmp::connect(&socket);
    assert_eq!(qmp.execute("system_powerdown", json!({})).unwrap(), json!({}));
    qmp.wait_event("POWERDOWN");
    assert_eq!(qmp.execute("query-status", json!({})).unwrap()["status"], "running");
    qmp.execute("quit", json!({})).unwrap();
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
}

/// The set 2 bytes of Ctrl, Alt, Delete pressed, then released in reverse order.
const CTRL_ALT_DELETE_SET2: &[u8] = &[0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];

fn keyboard_guest_sees(tag: &str, send: impl FnOnce(&mut Qmp)) {
    let dir = TempDir::new(tag);
    let guest = tiny_guest::echo_keyboard_bytes_then_reset("ready\n", CTRL_ALT_DELETE_SET2.len() as u32);
    let (mut vm, socket) = spawn_with_qmp(&dir, &guest, &["-device", "i8042"]);
    wait_ready(&mut vm, "ready\n");
    let mut qmp = Qmp::connect(&socket);
    send(&mut qmp);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "microvm did not exit\n{}", out.describe());
    let mut expected = b"ready\n".to_vec();
    expected.extend_from_slice(CTRL_ALT_DELETE_SET2);
    assert_clean_exit(&out, &expected);
}

#[test]
fn send_key_types_ctrl_alt_delete_on_the_i8042() {
    if !kvm_tests_enabled() {
        return;
    }
    keyboard_guest_sees("power-send-key", |qmp| {
        let keys: Vec<Value> =
            ["ctrl", "alt", "delete"].iter().map(|k| json!({ "type": "qcode", "data": k })).collect();
        qmp.execute("send-key", json!({ "keys": keys })).unwrap();
    });
}

#[test]
fn input_send_event_types_the_same_keys() {
    if !kvm_tests_enabled() {
        return;
    }
    keyboard_guest_sees("power-input-event", |qmp| {
        let key = |q: &str, down: bool| json!({ "type": "key", "data": { "down": down, "key": { "type": "qcode", "data": q } } });
        let events = [
            key("ctrl", true),
            key("alt", true),
            key("delete", true),
            key("delete", false),
            key("alt", false),
            key("ctrl", false),
        ];
        qmp.execute("input-send-event", json!({ "events": events })).unwrap();
    });
}

/// acpi=off with an i8042: system_powerdown types Ctrl-Alt-Delete.
#[test]
fn powerdown_without_acpi_types_ctrl_alt_delete() {
    if !kvm_tests_enabled() {
        return;
    }
    keyboard_guest_sees("power-cad", |qmp| {
        qmp.execute("system_powerdown", json!({})).unwrap();
    });
}

#[test]
fn hmp_sendkey_and_system_powerdown() {
    if !kvm_tests_enabled() {
        return;
    }
    keyboard_guest_sees("power-hmp", |qmp| {
        // The refused line first: once the keys are typed the guest echoes them and resets,
        // and a command sent after that could find the VM gone.
        let out = qmp.execute("human-monitor-command", json!({ "command-line": "sendkey ctrl-bogus" })).unwrap();
        assert_eq!(out, "Error: Parameter 'keys[1].data' does not accept value 'bogus'\r\n");
        let out = qmp.execute("human-monitor-command", json!({ "command-line": "sendkey ctrl-alt-delete" })).unwrap();
        assert_eq!(out, "");
    });
}
