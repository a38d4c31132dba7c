//! SIGTERM and SIGINT end a running microvm promptly: it tears the VM down and
//! exits with status 128 + signal number (the lead's decision), whether the
//! vCPU spins in guest code or sleeps in `hlt`, with one or several vCPUs.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The time a signalled microvm may take to exit. Generous: a correct VMM
/// kicks its vCPUs out of KVM_RUN in milliseconds.
const EXIT_DEADLINE: Duration = Duration::from_secs(5);

/// Boots `guest` (which prints `ready` once running), waits for `ready` on
/// stdout, sends `signal`, and checks microvm exits within EXIT_DEADLINE with
/// status 128 + signal and no panic.
fn signal_running_guest(tag: &str, guest: Vec<u8>, ready: &str, extra: &[&str], signal: libc::c_int) {
    let dir = TempDir::new(tag);
    let kernel = dir.file("guest.elf", &guest);
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(extra);
    let mut vm = Running::spawn(cmd);
    let booted = vm.wait_for_stdout(ready.as_bytes(), RUN_TIMEOUT);
    if !booted {
        let started = vm.started;
        let (_, out) = vm.wait(Duration::ZERO, started);
        panic!("the guest never printed {ready:?}\n{}", out.describe());
    }
    // Let the vCPU settle into its loop (or its hlt) before the signal lands.
    std::thread::sleep(Duration::from_millis(100));

    let sent = Instant::now();
    vm.signal(signal);
    let (status, out) = vm.wait(EXIT_DEADLINE, sent);
    assert!(
        status.is_some(),
        "microvm did not exit within {EXIT_DEADLINE:?} of signal {signal}; killed it\n{}",
        out.describe()
    );
    assert_no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(128 + signal),
        "expected exit status 128+{signal} after the signal\n{}",
        out.describe()
    );
    assert_eq!(out.stdout, ready.as_bytes(), "\n{}", out.describe());
    eprintln!("{tag}: exited {:?} after the signal", out.elapsed);
}

#[test]
fn sigterm_stops_a_spinning_guest() {
    if !kvm_tests_enabled() {
        return;
    }
    let ready = "spinning\n";
    signal_running_guest("term-spin", tiny_guest::serial_then_spin(ready), ready, &[], libc::SIGTERM);
}

#[test]
fn sigint_stops_a_spinning_guest() {
    if !kvm_tests_enabled() {
        return;
    }
    let ready = "spinning\n";
    signal_running_guest("int-spin", tiny_guest::serial_then_spin(ready), ready, &[], libc::SIGINT);
}

/// The vCPU sleeps in KVM_RUN (hlt with interrupts off): only a kick from
/// the VMM gets it out.
#[test]
fn sigterm_stops_a_halted_guest() {
    if !kvm_tests_enabled() {
        return;
    }
    let ready = "halted\n";
    signal_running_guest("term-hlt", tiny_guest::serial_then_halt(ready), ready, &[], libc::SIGTERM);
}

/// Four vCPUs: the BSP spins, the three APs wait for a SIPI inside KVM_RUN;
/// every one of them must be stopped.
#[test]
fn sigterm_stops_a_spinning_guest_with_four_vcpus() {
    if !kvm_tests_enabled() {
        return;
    }
    let ready = "spinning on 4\n";
    signal_running_guest("term-smp4", tiny_guest::serial_then_spin(ready), ready, &["-smp", "4"], libc::SIGTERM);
}

#[test]
fn sigint_stops_a_halted_guest_with_two_vcpus() {
    if !kvm_tests_enabled() {
        return;
    }
    let ready = "halted on 2\n";
    signal_running_guest("int-hlt-smp2", tiny_guest::serial_then_halt(ready), ready, &["-smp", "2"], libc::SIGINT);
}
