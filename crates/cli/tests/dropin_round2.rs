//! Issue 18 (drop-in, second round), items 1, 2 and 8, on the host's
//! /dev/kvm with tiny guests: `-machine pcie=`, `mem-merge=` (KSM advice
//! seen in the guest RAM mapping's VmFlags), `-global
//! kvm-pit.lost_tick_policy=discard` (KVM_REINJECT_CONTROL accepted by
//! KVM), `-id`, and the one-line refusals of `-display vnc` and PCI devices.

mod common;

use common::*;
use std::time::Duration;

/// Guest RAM for the smaps tests: a size no other mapping of microvm has.
const RAM_MIB: u64 = 72;

/// Whether the mapping of guest RAM (the one of `RAM_MIB`) in process `pid`
/// has KSM's `mg` flag, read from /proc/PID/smaps.
fn guest_ram_mergeable(pid: u32) -> bool {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let want = format!("{} kB", RAM_MIB << 10);
    let mut in_ram = false;
    let mut found = None;
    for line in smaps.lines() {
        if line.starts_with("Size:") {
            in_ram = line.trim_start_matches("Size:").trim() == want;
        } else if in_ram && line.starts_with("VmFlags:") {
            assert!(found.is_none(), "two mappings of {RAM_MIB} MiB");
            found = Some(line.split_whitespace().any(|f| f == "mg"));
        }
    }
    found.unwrap_or_else(|| panic!("no {RAM_MIB} MiB mapping in smaps:\n{smaps}"))
}

/// `mem-merge=on` (QEMU's default) marks guest RAM MADV_MERGEABLE; `off` does not.
#[test]
fn mem_merge_advises_ksm_on_guest_ram() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("memmerge");
    let kernel = dir.file("spin.elf", &tiny_guest::serial_then_spin("up\n"));
    let m = format!("{RAM_MIB}M");
    for (machine, mergeable) in [(None, true), (Some("microvm,mem-merge=on"), true), (Some("mem-merge=off"), false)] {
        let mut cmd = microvm_legacy(&kernel);
        cmd.args(["-m", &m]);
        if let Some(machine) = machine {
            cmd.args(["-M", machine]);
        }
        let mut vm = Running::spawn(cmd);
        assert!(vm.wait_for_stdout(b"up\n", RUN_TIMEOUT), "{machine:?}: the guest did not start");
        // The advice comes 100 ms after the VM starts to run (vmm's after_start; a start
        // that ends sooner makes none: tests/start_path.rs); `off` never advises.
        let deadline = std::time::Instant::now() + RUN_TIMEOUT;
        std::thread::sleep(Duration::from_millis(300));
        while mergeable && !guest_ram_mergeable(vm.child.id()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(guest_ram_mergeable(vm.child.id()), mergeable, "{machine:?}");
        vm.signal(libc::SIGTERM);
        let (status, out) = vm.wait(RUN_TIMEOUT, std::time::Instant::now());
        assert!(status.is_some(), "{}", out.describe());
        assert_no_panic(&out);
    }
}

/// `-global kvm-pit.lost_tick_policy=discard` turns KVM's PIT re-injection off
/// (KVM accepts the ioctl; a refusal would end set-up with an error); with
/// `pit=off` there is no PIT and the setting changes nothing.
#[test]
fn kvm_pit_lost_tick_policy_reaches_kvm() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("pitpolicy");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("pit\n"));
    for extra in [
        &["-global", "kvm-pit.lost_tick_policy=discard"][..],
        &["-global", "kvm-pit.lost_tick_policy=delay"],
        &["-global", "driver=kvm-pit,property=lost_tick_policy,value=discard", "-M", "microvm,pit=off"],
    ] {
        let mut cmd = microvm_legacy(&kernel);
        cmd.args(extra);
        let out = run(cmd);
        assert_clean_exit(&out, b"pit\n");
        assert!(out.stderr.is_empty(), "{extra:?}: {}", out.stderr);
    }
}

/// `pcie=off`, `-id N` and `virtio-mmio.force-legacy=off` run the guest
/// silently; `pcie=on` runs it with one warning.
#[test]
fn pcie_id_and_force_legacy_off_are_accepted() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("pcie");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("pcie\n"));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-M", "microvm,pcie=off", "-id", "101", "-global", "virtio-mmio.force-legacy=off"]);
    let out = run(cmd);
    assert_clean_exit(&out, b"pcie\n");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-M", "microvm,pcie=on"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout, b"pcie\n");
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains("pcie=on: microvm has no PCIe host bridge yet"), "{}", out.stderr);
}

/// What microvm cannot do is one line naming the option and what to use.
#[test]
fn vnc_pci_devices_and_legacy_virtio_are_refused_in_one_line() {
    let dir = TempDir::new("refusals");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("never\n"));
    for (args, culprits, says) in [
        (&["-display", "vnc=:1"][..], &["-display", "vnc=:1"][..], "use -display none"),
        (
            &["-device", "virtio-blk-pci,drive=d"],
            &["-device", "virtio-blk-pci"],
            "no PCI bus yet; use virtio-blk-device",
        ),
        (&["-device", "virtio-keyboard-pci"], &["-device", "virtio-keyboard-pci"], "no PCI bus yet"),
        (&["-global", "virtio-mmio.force-legacy=on"], &["-global", "force-legacy"], "modern only"),
        (&["-global", "kvm-pit.bogus=1"], &["-global", "kvm-pit.bogus"], "unknown global property"),
    ] {
        let mut cmd = microvm_legacy(&kernel);
        cmd.args(args);
        let line = assert_one_line_error(&run(cmd), culprits);
        assert!(line.contains(says), "{line}");
    }
}

/// Reads one line (a JSON message) from a QMP connection.
fn qmp_line(reader: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

/// `-device virtio-keyboard-device` (issue 18 item 8) gets a virtio-mmio slot and takes
/// QMP's keys (`send-key`, `input-send-event`): they wait in the device for the guest's
/// driver (this guest has none), and the VM runs on until `quit`.
#[test]
fn virtio_keyboard_takes_qmp_keys() {
    use std::io::{BufReader, Write};
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("vkbd");
    let kernel = dir.file("spin.elf", &tiny_guest::serial_then_spin("up\n"));
    let sock = dir.path().join("qmp.sock");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-device", "virtio-keyboard-device", "-qmp"]).arg(format!("unix:{},server=on,wait=off", sock.display()));
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"up\n", RUN_TIMEOUT), "the guest did not start");
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    stream.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert!(qmp_line(&mut reader).contains("\"QMP\""));
    for request in [
        r#"{"execute": "qmp_capabilities"}"#,
        r#"{"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "a"}]}}"#,
        r#"{"execute": "input-send-event", "arguments": {"events": [{"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "ret"}}}]}}"#,
    ] {
        writeln!(writer, "{request}").unwrap();
        let reply = qmp_line(&mut reader);
        assert_eq!(reply.trim(), r#"{"return": {}}"#, "{request}");
    }
    writeln!(writer, r#"{{"execute": "quit"}}"#).unwrap();
    let (status, out) = vm.wait(RUN_TIMEOUT, std::time::Instant::now());
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    assert_no_panic(&out);
}
