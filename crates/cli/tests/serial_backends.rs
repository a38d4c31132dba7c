//! The 16550A on the chardev layer (issue 9, item 2): `-serial file:`,
//! `chardev:ID`, `unix:...,server`, `tcp:` and `-device isa-serial`, with a
//! tiny guest writing to COM1 on the host's /dev/kvm.

mod common;

use common::*;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn legacy(kernel: &std::path::Path, serial: &[&str]) -> std::process::Command {
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-nodefaults", "-kernel"]).arg(kernel).args(serial);
    cmd
}

#[test]
fn serial_to_a_file_directly_or_through_a_chardev() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("serialfile");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("to the file\n"));
    let log = dir.path().join("com1.log");
    let file = format!("file:{}", log.display());
    let chardev = format!("file,id=s0,path={}", log.display());
    for serial in [
        &["-serial", &file][..],
        &["-serial", "chardev:s0", "-chardev", &chardev],
        &["-chardev", &chardev, "-device", "isa-serial,chardev=s0"],
    ] {
        let out = run(legacy(&kernel, serial));
        assert!(out.status.success(), "{serial:?}: {}", out.describe());
        assert_eq!(out.stdout, b"", "{serial:?}: nothing on stdout");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "to the file\n", "{serial:?}");
        std::fs::remove_file(&log).unwrap();
    }
    // With logfile= the stdio chardev's output is copied.
    let logged = format!("stdio,id=s0,logfile={}", log.display());
    let out = run(legacy(&kernel, &["-chardev", &logged, "-serial", "chardev:s0"]));
    assert_clean_exit(&out, b"to the file\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "to the file\n");
}

/// `-serial unix:PATH,server` (wait=on, QEMU's default): microvm waits for
/// the client before the guest runs, and the client gets everything.
#[test]
fn serial_on_a_unix_socket_server_waits_for_its_client() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("serialunix");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("over the socket\n"));
    let sock = dir.path().join("com1.sock");
    let spec = format!("unix:{},server", sock.display());
    let child = Running::spawn(legacy(&kernel, &["-serial", &spec]));
    let start = Instant::now();
    let mut stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < RUN_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no socket at {}: {e}", sock.display()),
        }
    };
    stream.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).unwrap();
    let (status, out) = child.wait(RUN_TIMEOUT, start);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    assert_eq!(got, "over the socket\n");
    assert!(!sock.exists(), "the socket file is removed at exit");
}
