//! `-device vmgenid` on the host's /dev/kvm with a tiny guest that prints the 16 bytes
//! at the address the DSDT's `VGEN.ADDR` gives, then polls the GED for the VMGenID
//! event: a boot shows the GUID `query-vm-generation-id` reports; every restore of one
//! snapshot shows a new one (a different one per clone) and the event, before the
//! guest reads anything else; `guid=` fixes it.

mod common;

use common::qmp::Qmp;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The machine every test here saves and restores; `serial` receives the guest's output.
fn machine(kernel: &Path, serial: &Path, qmp: &Path, extra: &[&str]) -> std::process::Command {
    common::counter::machine("microvm,legacy,acpi=on", kernel, serial, qmp, extra)
}

/// The GUID after `tag` in the guest's console file, once it is there.
fn guid_after(path: &Path, tag: &[u8]) -> Option<[u8; 16]> {
    guid_in(&std::fs::read(path).unwrap_or_default(), tag)
}

fn wait_guid(path: &Path, tag: &[u8]) -> [u8; 16] {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(guid) = guid_after(path, tag) {
            return guid;
        }
        assert!(Instant::now() < deadline, "{} never showed {:?}", path.display(), String::from_utf8_lossy(tag));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The bytes a guest reads for a GUID QMP prints: Microsoft's layout, whose first three
/// fields are little-endian (QEMU's too).
fn guest_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b: [u8; 16] = std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

fn quit(vm: Running, qmp: &mut Qmp) {
    qmp.execute("quit", json!({})).unwrap();
    let (status, output) = vm.wait(RUN_TIMEOUT, Instant::now());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", output.describe());
}

fn query(qmp: &mut Qmp) -> String {
    let answer = qmp.execute("query-vm-generation-id", json!({})).unwrap();
    answer["guid"].as_str().unwrap_or_else(|| panic!("no guid in {answer}")).to_owned()
}

/// Boots the guest, checks what it read against QMP, saves it and quits.
fn boot_and_save(dir: &TempDir, kernel: &Path, device: &str) -> (PathBuf, [u8; 16]) {
    let (out, sock, snap) = (dir.path().join("boot.out"), dir.path().join("boot.qmp"), dir.path().join("vm.snap"));
    let vm = Running::spawn(machine(kernel, &out, &sock, &["-device", device]));
    let mut qmp = Qmp::connect(&sock);
    let booted = wait_guid(&out, b"G:");
    let reported = query(&mut qmp);
    assert_eq!(booted, guest_bytes(&reported), "the guest reads what QMP reports");
    let hmp = qmp.execute("human-monitor-command", json!({ "command-line": "info vm-generation-id" })).unwrap();
    assert_eq!(hmp, json!(format!("{reported}\r\n")));
    qmp.execute("stop", json!({})).unwrap();
    qmp.execute("migrate", json!({ "uri": format!("file:{}", snap.display()) })).unwrap();
    quit(vm, &mut qmp);
    assert_eq!(guid_after(&out, b"N:"), None, "no VMGenID event at boot");
    (snap, booted)
}

/// Restores `snap` as clone `n`; returns the GUID the guest saw after the event, and
/// the one QMP reports.
fn restore(dir: &TempDir, kernel: &Path, snap: &Path, device: &str, n: usize) -> ([u8; 16], String) {
    let (out, sock) = (dir.path().join(format!("clone{n}.out")), dir.path().join(format!("clone{n}.qmp")));
    let incoming = format!("file:{}", snap.display());
    let vm = Running::spawn(machine(kernel, &out, &sock, &["-device", device, "-incoming", &incoming]));
    let mut qmp = Qmp::connect(&sock);
    let seen = wait_guid(&out, b"N:");
    let reported = query(&mut qmp);
    quit(vm, &mut qmp);
    (seen, reported)
}

#[test]
fn every_restore_shows_the_guest_a_new_generation_id_and_raises_the_event() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("vmgenid-clones");
    let kernel = dir.file("vmgenid.elf", &tiny_guest::vmgenid_on_serial_then_wait_for_a_new_one());
    let (snap, booted) = boot_and_save(&dir, &kernel, "vmgenid");
    let mut seen = vec![booted];
    for n in 0..3 {
        let (guid, reported) = restore(&dir, &kernel, &snap, "vmgenid,guid=auto", n);
        assert_eq!(guid, guest_bytes(&reported), "clone {n}: the guest reads what QMP reports");
        assert!(!seen.contains(&guid), "clone {n} got a generation ID seen before: {guid:02x?}");
        seen.push(guid);
    }
}

#[test]
fn a_fixed_guid_stays_and_a_restore_with_another_announces_it() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("vmgenid-fixed");
    let kernel = dir.file("vmgenid.elf", &tiny_guest::vmgenid_on_serial_then_wait_for_a_new_one());
    let fixed = "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";
    let (snap, booted) = boot_and_save(&dir, &kernel, &format!("vmgenid,guid={}", fixed.to_uppercase()));
    assert_eq!(booted, guest_bytes(fixed));
    let other = "00112233-4455-6677-8899-aabbccddeeff";
    let (guid, reported) = restore(&dir, &kernel, &snap, &format!("vmgenid,guid={other}"), 0);
    assert_eq!((guid, reported.as_str()), (guest_bytes(other), other));
}

#[test]
fn without_the_device_qmp_answers_as_qemu_and_a_snapshot_must_match() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("vmgenid-none");
    let kernel = dir.file("spin.elf", &tiny_guest::serial_then_spin("ready\n"));
    let (out, sock) = (dir.path().join("out"), dir.path().join("qmp"));
    let vm = Running::spawn(machine(&kernel, &out, &sock, &[]));
    let mut qmp = Qmp::connect(&sock);
    let e = qmp.execute("query-vm-generation-id", json!({})).unwrap_err();
    assert_eq!(e, "VM Generation ID device not found");
    let hmp = qmp.execute("human-monitor-command", json!({ "command-line": "info vm-generation-id" })).unwrap();
    assert_eq!(hmp, "Error: VM Generation ID device not found\r\n");
    let snap = dir.path().join("vm.snap");
    qmp.execute("migrate", json!({ "uri": format!("file:{}", snap.display()) })).unwrap();
    quit(vm, &mut qmp);
    let incoming = format!("file:{}", snap.display());
    let restored = run(machine(&kernel, &out, &sock, &["-device", "vmgenid", "-incoming", &incoming]));
    let line = assert_one_line_error(&restored, &["vmgenid"]);
    assert!(line.contains("-device vmgenid: off, this command line on"), "{line}");
}
