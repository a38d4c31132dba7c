//! The QEMU options with real effect that public microvm command lines use
//! (issue 9, item 5), run on the host's /dev/kvm with tiny guests:
//! isa-debug-exit, -d guest_errors with -D, -m 2M, -overcommit mem-lock=on,
//! and the warnings for -bios and ignored -cpu flags.

mod common;

use common::*;

/// A guest write of V to `-device isa-debug-exit` ends microvm with status
/// (V << 1) | 1; the port is QEMU's 0x501 unless iobase= moves it.
#[test]
fn isa_debug_exit_status_is_v_shifted_with_the_low_bit() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("debugexit");
    for (device, port, value) in
        [("isa-debug-exit", tiny_guest::DEBUG_EXIT_PORT, 0x21u8), ("isa-debug-exit,iobase=0xf4,iosize=0x04", 0xf4, 0)]
    {
        let kernel = dir.file("exit.elf", &tiny_guest::serial_then_debug_exit("bye\n", port, value));
        let mut cmd = microvm_legacy(&kernel);
        cmd.args(["-device", device]);
        let out = run(cmd);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(i32::from(value) << 1 | 1), "{device}: {}", out.describe());
        assert_eq!(out.stdout, b"bye\n");
    }
    // Without the device the port is not there: the write is ignored and the guest resets.
    let kernel = dir.file("exit.elf", &tiny_guest::serial_then_debug_exit("bye\n", tiny_guest::DEBUG_EXIT_PORT, 1));
    assert_clean_exit(&run(microvm_legacy(&kernel)), b"bye\n");
}

/// `-d guest_errors -D FILE`: accesses no device claims are logged to FILE
/// (and not to stderr); without -d nothing is logged.
#[test]
fn guest_errors_go_to_the_log_file() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("guesterrors");
    let kernel = dir.file("probe.elf", &tiny_guest::port_read_echo_then_reset(tiny_guest::UNHANDLED_PORT));
    let log = dir.path().join("qemu.log");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-d", "guest_errors", "-D"]).arg(&log);
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("invalid read of I/O port 0x2e0 (size 1)"), "{text}");
    assert!(text.contains("invalid read of I/O port 0x2e0 (size 4)"), "{text}");
    assert!(!out.stderr.contains("guest_errors"), "{}", out.stderr);

    let out = run(microvm_legacy(&kernel));
    assert!(out.status.success() && !out.stderr.contains("invalid"), "{}", out.describe());
}

/// Unikraft's `-m 2M` boots; below the layout's smallest size the error names it.
#[test]
fn two_mebibytes_of_ram_boot_and_one_does_not() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("twomib");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("small\n"));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-m", "2M", "-overcommit", "mem-lock=on"]);
    assert_clean_exit(&run(cmd), b"small\n");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-m", "1M"]);
    let line = assert_one_line_error(&run(cmd), &["-m", "1M"]);
    assert!(line.contains("at least 2 MiB"), "{line}");
}

/// `-bios`/`-L` with -kernel: one warning; ignored -cpu flags: one warning
/// naming them; the guest runs either way.
#[test]
fn firmware_and_ignored_cpu_flags_are_warned_about_once() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("warnings");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("warned\n"));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-L", "pc-bios/", "-bios", "qboot.rom", "-cpu", "host,+x2apic,-sgx,pmu=off,kvm=off"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout, b"warned\n");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.iter().filter(|l| l.contains("no firmware runs")).count(), 1, "{}", out.stderr);
    assert!(lines.iter().any(|l| l.starts_with("microvm: -cpu: ignored kvm=off")), "{}", out.stderr);
    let mut cmd = microvm();
    cmd.args(["-bios", "qboot.rom", "-M", "microvm"]);
    assert_one_line_error(&run(cmd), &["-bios", "-kernel"]);
}

/// A multiport virtio-serial-device (31 ports: 64 queues, each with its
/// ioeventfd) is set up by the VMM, in one slot like any device.
#[test]
fn multiport_virtio_serial_is_set_up_in_one_slot() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("multiport");
    let kernel = dir.file("serial.elf", &tiny_guest::serial_then_reset("ports\n"));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args([
        "-chardev",
        "null,id=c0",
        "-chardev",
        "null,id=ga",
        "-device",
        "virtio-serial-device,max_ports=31",
        "-device",
        "virtconsole,chardev=c0",
        "-device",
        "virtserialport,chardev=ga,name=org.qemu.guest_agent.0",
        "-device",
        "virtio-rng-device",
    ]);
    assert_clean_exit(&run(cmd), b"ports\n");
}
