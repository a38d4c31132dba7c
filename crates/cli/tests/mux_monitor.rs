//! Mux chardevs and the human monitor (issue 9, item 3) on the host's
//! /dev/kvm: `-serial mon:stdio`, `-chardev stdio,mux=on` shared by the
//! serial port and `-mon`, `-monitor stdio`, the escape keys (C-a h, C-a c,
//! C-a x, `-echr`) and HMP commands, typed into microvm's stdin.

mod common;

use common::*;
use std::io::Write;
use std::process::{ChildStdin, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn start(kernel: &std::path::Path, extra: &[&str]) -> (Running, ChildStdin) {
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-nodefaults", "-kernel"]).arg(kernel).args(extra);
    cmd.stdin(Stdio::piped());
    let mut vm = Running::spawn(cmd);
    let stdin = vm.child.stdin.take().unwrap();
    (vm, stdin)
}

fn type_and_expect(vm: &mut Running, stdin: &mut ChildStdin, keys: &[u8], expect: &str) {
    stdin.write_all(keys).unwrap();
    stdin.flush().unwrap();
    assert!(vm.wait_for_stdout(expect.as_bytes(), WAIT), "after typing {keys:?}, no {expect:?} on stdout");
}

fn ends_with_status_zero(vm: Running) {
    let started = vm.started;
    let (status, out) = vm.wait(WAIT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
}

#[test]
fn serial_mon_stdio_switches_between_guest_and_monitor() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("monstdio");
    let kernel = dir.file("halt.elf", &tiny_guest::serial_then_halt("guest up\n"));
    let (mut vm, mut stdin) = start(&kernel, &["-serial", "mon:stdio"]);
    assert!(vm.wait_for_stdout(b"guest up\n", WAIT));
    type_and_expect(&mut vm, &mut stdin, b"\x01h", "C-a c    switch between console and monitor\r\n");
    type_and_expect(&mut vm, &mut stdin, b"\x01c", "QEMU 9.2.0 monitor - type 'help' for more information\r\n(qemu) ");
    type_and_expect(&mut vm, &mut stdin, b"info status\r", "info status\r\nVM status: running\r\n(qemu) ");
    type_and_expect(&mut vm, &mut stdin, b"stop\rinfo status\r", "VM status: paused\r\n");
    type_and_expect(&mut vm, &mut stdin, b"cont\rinfo status\r", "VM status: running\r\n(qemu) ");
    type_and_expect(&mut vm, &mut stdin, b"info chardev\r", "serial0: filename=stdio\r\n");
    type_and_expect(&mut vm, &mut stdin, b"info cpus\r", "* CPU #0: thread_id=");
    type_and_expect(&mut vm, &mut stdin, b"help\r", "system_reset -- reset the system\r\n");
    // Back to the guest and to the monitor again: a prompt, no second banner.
    type_and_expect(&mut vm, &mut stdin, b"\x01c\x01c", "\r\n(qemu) ");
    stdin.write_all(b"quit\r").unwrap();
    ends_with_status_zero(vm);
}

#[test]
fn a_shared_mux_with_echr_quits_on_its_escape_x() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("muxechr");
    let kernel = dir.file("halt.elf", &tiny_guest::serial_then_halt("shared\n"));
    let (mut vm, mut stdin) = start(
        &kernel,
        &["-chardev", "stdio,mux=on,id=c0,signal=off", "-serial", "chardev:c0", "-mon", "chardev=c0", "-echr", "20"],
    );
    assert!(vm.wait_for_stdout(b"shared\n", WAIT));
    // C-a is an ordinary key now; C-t is the escape.
    type_and_expect(&mut vm, &mut stdin, b"\x01c\x14h", "C-t x    exit emulator\r\n");
    type_and_expect(&mut vm, &mut stdin, b"\x14c", "(qemu) ");
    type_and_expect(&mut vm, &mut stdin, b"info version\r", "9.2.0 (microvm ");
    type_and_expect(&mut vm, &mut stdin, b"\x14x", "QEMU: Terminated\r\n");
    ends_with_status_zero(vm);
}

#[test]
fn monitor_stdio_greets_at_once() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("monitorstdio");
    let kernel = dir.file("halt.elf", &tiny_guest::serial_then_halt("unseen\n"));
    let (mut vm, mut stdin) = start(&kernel, &["-serial", "none", "-monitor", "stdio"]);
    assert!(vm.wait_for_stdout(b"monitor - type 'help' for more information\r\n(qemu) ", WAIT));
    type_and_expect(&mut vm, &mut stdin, b"info mtree\r", "i8042");
    type_and_expect(&mut vm, &mut stdin, b"bogus\r", "unknown command: 'bogus'\r\n");
    stdin.write_all(b"q\r").unwrap();
    ends_with_status_zero(vm);
}

/// `-monitor unix:PATH,server,nowait`: each client is greeted, and its lines run.
#[test]
fn monitor_on_a_unix_socket_greets_each_client() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("monitorunix");
    let kernel = dir.file("halt.elf", &tiny_guest::serial_then_halt("up\n"));
    let sock = dir.path().join("hmp.sock");
    let spec = format!("unix:{},server,nowait", sock.display());
    let (mut vm, _stdin) = start(&kernel, &["-serial", "stdio", "-monitor", &spec]);
    assert!(vm.wait_for_stdout(b"up\n", WAIT));
    let read_until = |s: &mut UnixStream, needle: &str| {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = s.read(&mut buf).unwrap_or_else(|e| panic!("monitor output: {e}; saw {seen:?}"));
            assert!(n > 0, "monitor closed; saw {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen
    };
    for _ in 0..2 {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        read_until(&mut s, "type 'help' for more information\r\n(qemu) ");
        s.write_all(b"info status\r\n").unwrap();
        read_until(&mut s, "VM status: running\r\n(qemu) ");
    }
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    read_until(&mut s, "(qemu) ");
    s.write_all(b"quit\n").unwrap();
    ends_with_status_zero(vm);
}
