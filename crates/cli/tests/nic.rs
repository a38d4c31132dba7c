//! `-nic` (QEMU's netdev + NIC in one option) on the host's /dev/kvm, sandbox on:
//! `-nic user,hostfwd=...` starts passt with the forward (a host client connects to
//! the forwarded port, which only passt listens on), and `-nic tap,ifname=...` opens
//! the named tap (seen by `ip link` in a network namespace made for the test).

mod common;

use common::*;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn nic_user_starts_passt_with_its_host_forward() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("nic-user");
    let kernel = dir.file("spin.elf", &tiny_guest::spin_forever());
    let port = free_port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens on {port} yet");
    let mut cmd = microvm();
    cmd.args(["-M", "microvm", "-m", "32", "-nodefaults", "-display", "none", "-kernel"]).arg(&kernel);
    cmd.args(["-nic", &format!("user,model=virtio-net-device,hostfwd=tcp:127.0.0.1:{port}-:22")]);
    let running = Running::spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    let connected = loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    running.signal(libc::SIGTERM);
    let (status, out) = running.wait(Duration::from_secs(10), Instant::now());
    assert!(connected, "passt never listened on the forwarded port {port}: {}", out.describe());
    assert!(status.is_some(), "{}", out.describe());
    assert_no_panic(&out);
}

#[test]
fn nic_tap_opens_the_named_tap() {
    if !kvm_tests_enabled() {
        return;
    }
    if !Command::new("unshare").args(["--net", "--", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("no network namespaces here: skipping -nic tap");
        return;
    }
    let dir = TempDir::new("nic-tap");
    let kernel = dir.file("spin.elf", &tiny_guest::spin_forever());
    let pidfile = dir.path().join("pid");
    // In a namespace of its own: microvm daemonizes once the tap is open, ip shows it,
    // and the VM is stopped; the namespace (and the tap) go with the shell.
    let script = format!(
        "{vm} -M microvm -m 32 -nodefaults -display none -kernel {k} -daemonize -pidfile {p} \
         -nic tap,ifname=nictest0,script=no,downscript=no,mac=52:54:00:00:00:42 && \
         ip -o link show nictest0; kill $(cat {p})",
        vm = microvm_path().display(),
        k = kernel.display(),
        p = pidfile.display(),
    );
    let out = Command::new("unshare").args(["--net", "--", "sh", "-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("nictest0:"), "{stdout}");
}

#[test]
fn nic_errors_are_one_line_naming_nic() {
    let dir = TempDir::new("nic-err");
    let kernel = dir.file("spin.elf", &tiny_guest::spin_forever());
    for (nic, words) in [
        ("user,model=e1000", "virtio-net-device"),
        ("user,model=virtio-net-pci", "no PCI bus"),
        ("bridge,br=br0", "-netdev tap, user, stream and dgram"),
    ] {
        let mut cmd = microvm();
        cmd.args(["-M", "microvm", "-m", "32", "-nodefaults", "-kernel"]).arg(&kernel).args(["-nic", nic]);
        let out = run(cmd);
        let line = assert_one_line_error(&out, &["-nic", words]);
        assert!(line.contains(nic), "{line}");
    }
}
