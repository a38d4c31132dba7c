//! Solo mode (`vmm/src/solo.rs`): with one vCPU and nothing for an event loop to serve, the
//! main thread runs the vCPU itself. Every way such a VM can end must end it as the main
//! loop would have: the guest's reset (i8042 and triple fault), isa-debug-exit's status, a
//! failing vCPU, and (crates/cli/tests/sandbox.rs) the stop signals; the pidfile is removed
//! under the `solo` filter. Signals are in sandbox.rs, with the thread count.

mod common;

use common::*;

/// A solo command line for `kernel`: one vCPU, no serial port, no device.
fn solo(kernel: &std::path::Path) -> std::process::Command {
    let mut cmd = microvm();
    cmd.args(["-M", "microvm", "-m", "32m", "-nodefaults", "-kernel"]).arg(kernel);
    cmd
}

#[test]
fn a_solo_vm_ends_on_the_guests_reset() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("solo-reset");
    for (name, guest) in
        [("i8042", tiny_guest::reset_at_once()), ("triple-fault", tiny_guest::serial_then_triple_fault(""))]
    {
        let kernel = dir.file(&format!("{name}.elf"), &guest);
        let out = run(solo(&kernel));
        assert_eq!(out.status.code(), Some(0), "{name}\n{}", out.describe());
        assert_no_panic(&out);
    }
}

#[test]
fn a_solo_vm_ends_with_isa_debug_exits_status() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("solo-debug-exit");
    let kernel = dir.file("exit.elf", &tiny_guest::serial_then_debug_exit("", tiny_guest::DEBUG_EXIT_PORT, 0x21));
    let mut cmd = solo(&kernel);
    cmd.args(["-device", "isa-debug-exit"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some((0x21 << 1) | 1), "{}", out.describe());
}

#[test]
fn a_solo_vm_reports_a_failing_vcpu_in_one_line() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("solo-failure");
    let kernel = dir.file("fail.elf", &tiny_guest::serial_then_emulation_failure(""));
    let out = run(solo(&kernel));
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(out.stderr.contains("vcpu0: "), "{}", out.describe());
}

#[test]
fn a_solo_vm_removes_its_pidfile_at_exit() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("solo-pidfile");
    let kernel = dir.file("reset.elf", &tiny_guest::reset_at_once());
    let pidfile = dir.path().join("vm.pid");
    let mut cmd = solo(&kernel);
    cmd.arg("-pidfile").arg(&pidfile);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    assert!(!pidfile.exists(), "the pidfile is left behind\n{}", out.describe());
}
