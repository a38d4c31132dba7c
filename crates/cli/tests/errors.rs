//! Acceptance point 4: bad input gets one clear line on stderr and a non-zero
//! status, never a panic or a backtrace. Each case starts from a command line
//! that boots fine and breaks exactly one thing.

mod common;

use common::*;
use std::path::PathBuf;

/// A valid tiny guest kernel in `dir`, so only the broken piece is wrong.
fn good_kernel(dir: &TempDir) -> PathBuf {
    dir.file("good.elf", &tiny_guest::serial_then_reset("should not run\n"))
}

/// Runs microvm with `args` in the legacy configuration around `kernel`.
fn run_with(kernel: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = microvm_legacy(kernel);
    cmd.args(args);
    run(cmd)
}

fn assert_guest_did_not_run(out: &Output) {
    assert!(out.stdout.is_empty(), "the guest ran or something printed on stdout\n{}", out.describe());
}

#[test]
fn missing_kernel_file() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("nokernel");
    let missing = dir.path().join("no-such-vmlinux");
    let out = run(microvm_legacy(&missing));
    assert_one_line_error(&out, &[missing.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

#[test]
fn kernel_that_is_neither_elf_nor_bzimage() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("garbage");
    let garbage = dir.file("garbage.bin", &b"this is not a kernel\n".repeat(200));
    let out = run(microvm_legacy(&garbage));
    assert_one_line_error(&out, &[garbage.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

#[test]
fn empty_kernel_file() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("emptykernel");
    let empty = dir.file("empty.bin", b"");
    let out = run(microvm_legacy(&empty));
    assert_one_line_error(&out, &[empty.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

/// A well-formed ELF executable without the PVH entry note is not a kernel
/// microvm can boot (it has no 64-bit ELF entry path).
#[test]
fn elf_kernel_without_pvh_note() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("nopvh");
    let mut code = tiny_guest::Asm::new();
    code.i8042_reset().halt_forever();
    let elf = dir.file("nopvh.elf", &tiny_guest::elf_without_pvh_note(&code.finish()));
    let out = run(microvm_legacy(&elf));
    assert_one_line_error(&out, &[elf.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

/// The kernel path is a directory.
#[test]
fn kernel_is_a_directory() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("kerneldir");
    let out = run(microvm_legacy(dir.path()));
    assert_one_line_error(&out, &[dir.path().to_str().unwrap()]);
}

#[test]
fn memory_too_small() {
    let dir = TempDir::new("mem1");
    let out = run_with(&good_kernel(&dir), &["-m", "1"]);
    let line = assert_one_line_error(&out, &["-m", "memory", "ram"]);
    assert!(line.contains('1'), "the error line does not show the value 1: {line}");
    assert_guest_did_not_run(&out);
}

#[test]
fn memory_size_not_a_number() {
    let dir = TempDir::new("memabc");
    let out = run_with(&good_kernel(&dir), &["-m", "lots"]);
    assert_one_line_error(&out, &["lots"]);
}

#[test]
fn zero_vcpus() {
    let dir = TempDir::new("smp0");
    let out = run_with(&good_kernel(&dir), &["-smp", "0"]);
    let line = assert_one_line_error(&out, &["smp", "cpu"]);
    assert!(line.contains('0'), "the error line does not show the value 0: {line}");
    assert_guest_did_not_run(&out);
}

#[test]
fn too_many_vcpus() {
    let dir = TempDir::new("smp999");
    let out = run_with(&good_kernel(&dir), &["-smp", "999"]);
    let line = assert_one_line_error(&out, &["smp", "cpu"]);
    assert!(line.contains("999"), "the error line does not show the value 999: {line}");
    assert_guest_did_not_run(&out);
}

#[test]
fn unknown_option() {
    let dir = TempDir::new("unknown");
    let out = run_with(&good_kernel(&dir), &["-frobnicate", "yes"]);
    assert_one_line_error(&out, &["-frobnicate"]);
    assert_guest_did_not_run(&out);
}

#[test]
fn option_missing_its_value() {
    let dir = TempDir::new("novalue");
    let out = run_with(&good_kernel(&dir), &["-smp"]);
    assert_one_line_error(&out, &["-smp"]);
}

#[test]
fn unsupported_machine_type() {
    let dir = TempDir::new("machine");
    let mut cmd = microvm();
    cmd.args(["-M", "pc", "-m", "32m", "-kernel"]).arg(good_kernel(&dir)).args(["-serial", "stdio", "-nodefaults"]);
    assert_one_line_error(&run(cmd), &["pc"]);
}

#[test]
fn no_kernel_option() {
    let out = run({
        let mut cmd = microvm();
        cmd.args(["-M", "microvm,legacy", "-m", "32m", "-serial", "stdio", "-nodefaults"]);
        cmd
    });
    assert_one_line_error(&out, &["-kernel", "kernel"]);
}

/// A 64 MiB initrd (sparse) cannot fit in 32 MiB of guest RAM.
#[test]
fn initrd_larger_than_memory() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("initrd");
    let initrd = dir.path().join("huge.initrd");
    std::fs::File::create(&initrd).unwrap().set_len(64 << 20).unwrap();
    let out = run_with(&good_kernel(&dir), &["-initrd", initrd.to_str().unwrap()]);
    assert_one_line_error(&out, &[initrd.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

#[test]
fn missing_initrd_file() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("noinitrd");
    let initrd = dir.path().join("no-such-initrd");
    let out = run_with(&good_kernel(&dir), &["-initrd", initrd.to_str().unwrap()]);
    assert_one_line_error(&out, &[initrd.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

// ---- The KVM device missing or unusable (MICROVM_KVM_DEVICE points elsewhere). ----

fn run_with_kvm_device(dir: &TempDir, device: &std::path::Path) -> Output {
    let mut cmd = microvm_legacy(&good_kernel(dir));
    cmd.env(KVM_DEVICE_ENV, device);
    run(cmd)
}

#[test]
fn kvm_device_missing() {
    let dir = TempDir::new("kvmmissing");
    let device = dir.path().join("no-kvm-here");
    let out = run_with_kvm_device(&dir, &device);
    assert_one_line_error(&out, &[device.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

/// A regular file opens fine but answers no KVM ioctl.
#[test]
fn kvm_device_is_a_regular_file() {
    let dir = TempDir::new("kvmfile");
    let device = dir.file("fake-kvm", b"");
    let out = run_with_kvm_device(&dir, &device);
    assert_one_line_error(&out, &[device.to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}

/// A character device that is not KVM.
#[test]
fn kvm_device_is_dev_null() {
    let dir = TempDir::new("kvmnull");
    let device = std::path::Path::new("/dev/null");
    let out = run_with_kvm_device(&dir, device);
    assert_one_line_error(&out, &["/dev/null"]);
    assert_guest_did_not_run(&out);
}

/// A device node we may not open read-write. File modes do not stop root,
/// so as root the test runs microvm as user and group 65534 ("nobody")
/// against a root-owned 0600 file; otherwise against a 0000 file of our own.
#[test]
fn kvm_device_without_permission() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("kvmperm");
    let kernel = good_kernel(&dir);
    let device = dir.file("kvm-no-access", b"");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mode = if root { 0o600 } else { 0o000 };
    std::fs::set_permissions(&device, std::fs::Permissions::from_mode(mode)).unwrap();
    // The unprivileged user must reach the kernel file.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = if root {
        // Run a copy of the binary from the temp dir: the checkout itself may
        // sit where "nobody" cannot reach (e.g. under a 0700 home).
        let copy = dir.path().join("microvm");
        std::fs::copy(microvm_path(), &copy).unwrap();
        let mut cmd = legacy_args(microvm_at(&copy), &kernel);
        cmd.uid(65534).gid(65534);
        cmd
    } else {
        microvm_legacy(&kernel)
    };
    cmd.env(KVM_DEVICE_ENV, &device);
    let out = run(cmd);
    let line = assert_one_line_error(&out, &[device.to_str().unwrap()]);
    assert!(line.to_lowercase().contains("permission"), "the error line does not say permission: {line}");
    assert_guest_did_not_run(&out);
}

#[test]
fn kvm_device_is_a_directory() {
    let dir = TempDir::new("kvmdir");
    let out = run_with_kvm_device(&dir, dir.path());
    assert_one_line_error(&out, &[dir.path().to_str().unwrap()]);
    assert_guest_did_not_run(&out);
}
