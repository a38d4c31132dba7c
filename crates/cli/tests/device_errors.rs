//! Bad host input for the virtio devices, and bad values for the platform ones: one clear
//! line on stderr, a non-zero status, and the guest never runs. Backends (image, tap,
//! chardev) are opened before the guest starts, so a tiny guest is enough; the devices
//! never see it.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn good_kernel(dir: &TempDir) -> PathBuf {
    dir.file("good.elf", &tiny_guest::serial_then_reset("should not run\n"))
}

fn run_with(kernel: &Path, args: &[&str]) -> Output {
    let mut cmd = microvm_legacy(kernel);
    cmd.args(args);
    run(cmd)
}

fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let line = assert_one_line_error(out, needles);
    assert!(out.stdout.is_empty(), "the guest ran\n{}", out.describe());
    line
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    uid == 0
}

/// As root, a command running a copy of microvm as user and group 65534 ("nobody")
/// from `dir` (the checkout may be unreachable for nobody). /dev/kvm is often root-only:
/// nobody gets its own 0666 node of the same device (MICROVM_KVM_DEVICE), so microvm
/// gets past KVM to the device backends under test.
fn as_nobody(dir: &TempDir, kernel: &Path) -> Command {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("microvm");
    std::fs::copy(microvm_path(), &copy).unwrap();
    let kvm = std::fs::metadata("/dev/kvm").expect("/dev/kvm");
    assert!(kvm.file_type().is_char_device());
    let node = dir.path().join("kvm");
    let c_node = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: mknod reads a NUL-terminated path; the node is ours, in our temp dir.
    let made = unsafe { libc::mknod(c_node.as_ptr(), libc::S_IFCHR | 0o666, kvm.rdev() as libc::dev_t) };
    assert_eq!(made, 0, "mknod {}: {}", node.display(), std::io::Error::last_os_error());
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut cmd = legacy_args(microvm_at(&copy), kernel);
    cmd.uid(65534).gid(65534).env(KVM_DEVICE_ENV, &node);
    cmd
}

#[test]
fn missing_disk_image() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("noimage");
    let img = dir.path().join("no-such.img");
    let drive = format!("id=d0,file={},format=raw,if=none", img.display());
    let out = run_with(&good_kernel(&dir), &["-drive", &drive, "-device", "virtio-blk-device,drive=d0"]);
    assert_refused(&out, &[img.to_str().unwrap()]);
}

/// Root reads any file: as root, microvm runs as nobody against a root-owned 0600 image.
#[test]
fn unreadable_disk_image() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("unreadable");
    let kernel = good_kernel(&dir);
    let img = dir.file("secret.img", &[0u8; 4096]);
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(if is_root() { 0o600 } else { 0o000 })).unwrap();
    let mut cmd = if is_root() { as_nobody(&dir, &kernel) } else { microvm_legacy(&kernel) };
    let drive = format!("id=d0,file={},format=raw,if=none", img.display());
    cmd.args(["-drive", &drive, "-device", "virtio-blk-device,drive=d0"]);
    let line = assert_refused(&run(cmd), &[img.to_str().unwrap()]);
    assert!(line.to_lowercase().contains("permission"), "does not say permission: {line}");
}

#[test]
fn device_names_a_drive_that_does_not_exist() {
    let dir = TempDir::new("nodrive");
    let out = run_with(&good_kernel(&dir), &["-device", "virtio-blk-device,drive=ghost"]);
    assert_refused(&out, &["ghost"]);
}

#[test]
fn duplicate_drive_ids() {
    let dir = TempDir::new("dupid");
    let img = dir.file("a.img", &[0u8; 4096]);
    let drive = format!("id=same,file={},format=raw,if=none", img.display());
    let out = run_with(&good_kernel(&dir), &["-drive", &drive, "-drive", &drive]);
    assert_refused(&out, &["same"]);
}

#[test]
fn duplicate_chardev_ids() {
    let dir = TempDir::new("dupchr");
    let out = run_with(&good_kernel(&dir), &["-chardev", "stdio,id=c0", "-chardev", "stdio,id=c0"]);
    assert_refused(&out, &["c0"]);
}

/// Opening or creating a tap needs CAP_NET_ADMIN; nobody has none.
#[test]
fn tap_without_permission() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("tapperm");
    let kernel = good_kernel(&dir);
    let mut cmd = if is_root() { as_nobody(&dir, &kernel) } else { microvm_legacy(&kernel) };
    cmd.args([
        "-netdev",
        "tap,id=n0,ifname=mvt-perm0,script=no,downscript=no",
        "-device",
        "virtio-net-device,netdev=n0",
    ]);
    let line = assert_refused(&run(cmd), &["tap", "/dev/net/tun"]);
    assert!(line.contains("CAP_NET_ADMIN"), "does not say CAP_NET_ADMIN: {line}");
}

/// Interface names are at most 15 bytes, with no '/' or whitespace.
#[test]
fn tap_with_an_invalid_name() {
    let dir = TempDir::new("tapname");
    let kernel = good_kernel(&dir);
    for name in ["this-name-is-far-too-long", "bad/name"] {
        let netdev = format!("tap,id=n0,ifname={name},script=no,downscript=no");
        let out = run_with(&kernel, &["-netdev", &netdev, "-device", "virtio-net-device,netdev=n0"]);
        assert_refused(&out, &[name]);
    }
}

/// Eight virtio-mmio slots; a ninth device has nowhere to go.
#[test]
fn more_devices_than_slots() {
    let dir = TempDir::new("slots");
    let mut args = Vec::new();
    for _ in 0..9 {
        args.extend(["-device", "virtio-rng-device"]);
    }
    let line = assert_refused(&run_with(&good_kernel(&dir), &args), &["slot", "virtio"]);
    assert!(line.contains('8'), "does not say how many slots there are: {line}");
}

/// The platform devices (not virtio slots) refuse what the machine lacks with these exact
/// lines, whether their own descriptor (a port other than COM1, iosize=0, a bad GUID) or
/// the front end (a second one, a duplicate id) refuses; the guest never runs.
#[test]
fn platform_devices_refuse_with_exact_lines() {
    let dir = TempDir::new("platform");
    let kernel = good_kernel(&dir);
    let com1 = "microvm's one serial port is COM1: index=0,iobase=0x3f8,irq=4";
    let cases: &[(&[&str], String)] = &[
        (&["-device", "isa-serial,irq=3"], format!("invalid value 'irq=3': {com1}")),
        (&["-device", "isa-serial,index=1,irq=4"], format!("invalid value 'index=1': {com1}")),
        (&["-device", "isa-serial,iobase=zz"], "invalid value 'iobase=zz': expected a number up to 0xffff".into()),
        (
            &["-device", "isa-serial", "-device", "isa-serial"],
            "invalid value 'isa-serial': microvm has one serial port (COM1)".into(),
        ),
        (
            &["-device", "isa-debug-exit,iosize=0"],
            "invalid value 'isa-debug-exit,iosize=0': iosize must be 1 to 8".into(),
        ),
        (
            &["-device", "isa-debug-exit,id=a", "-device", "i8042,id=a"],
            "invalid value 'i8042,id=a': duplicate id 'a'".into(),
        ),
        (
            &["-device", "i8042", "-device", "i8042"],
            "invalid value 'i8042': there is one i8042 (ports 0x60 and 0x64 are taken)".into(),
        ),
        (
            &["-M", "microvm,acpi=on", "-device", "vmgenid,guid=x"],
            "invalid value 'guid=x': guid must be auto or a UUID such as 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87".into(),
        ),
    ];
    for (args, reason) in cases {
        let line = assert_refused(&run_with(&kernel, args), &[reason]);
        assert_eq!(line, format!("microvm: -device: {reason}"), "{args:?}");
    }
}
