//! Issue 9, acceptance 2: public QEMU microvm command lines boot real Linux, and a mux
//! chardev on a pty carries the guest's hvc0 and the human monitor, driven by the
//! scenario (xtask/scenarios/dropin-lines.sh); a multiport virtio-serial-device meets Linux's
//! virtio_console driver. One rig boot.

use xtask::scenario::run_test_case as run;

#[test]
fn public_lines_boot_linux_and_the_mux_monitor_answers_on_a_pty() {
    let Some(case) = run("dropin-lines") else {
        return;
    };
    let has = |line: &str| case.output.lines().any(|l| l.contains(line));
    // microvm.nix: hvc0 through the stdio mux, root on the read-only (media=cdrom) disk.
    let nix = case.output.split("== microvm.nix line").nth(1).unwrap_or("");
    let nix = nix.split("NIX-EXIT").next().unwrap_or("");
    assert!(nix.contains("MICROVM-GUEST-READY cpus=1"), "no guest on hvc0\n{}", case.report());
    assert!(nix.contains("GUEST-DEVICES root=vda"), "{}", case.report());
    assert!(has("NIX-EXIT status=0"), "{}", case.report());
    // -sandbox on is the default: the run is filtered, and nothing is said about it.
    assert!(!nix.contains("sandbox"), "{}", case.report());
    // QEMU's documentation: ttyS0, two vCPUs, a tap.
    let docs = case.output.split("== QEMU documentation line").nth(1).unwrap_or("");
    assert!(docs.split("DOCS-EXIT").next().unwrap_or("").contains("MICROVM-GUEST-READY cpus=2"), "{}", case.report());
    assert!(has("DOCS-EXIT status=0"), "{}", case.report());
    // The pty: guest output, C-a h, C-a c to the monitor, info status, quit.
    for seen in [
        "SEEN CONSOLE-WAITING",
        "SEEN switch between console and monitor",
        "SEEN type 'help' for more information",
        "SEEN VM status: running",
        "MUX-EXIT status=0",
    ] {
        assert!(has(seen), "no {seen:?}\n{}", case.report());
    }
    let pty = case.output.split("== pty").nth(1).unwrap_or("");
    assert!(pty.contains("(qemu) quit\n") && !pty.contains("(qemu) quit\n(qemu)"), "no prompt after quit\n{pty}");
    // Multiport: Linux's driver found the named port and the second console, and wrote through both.
    for seen in [
        "VPORT vport0p2 name=org.test.port",
        "PORTS-EXIT status=0",
        "PORT-FILE hello-org.test.port",
        "CON1-FILE hello-hvc1",
    ] {
        assert!(has(seen), "no {seen:?}\n{}", case.report());
    }
    // The guest's echo opened and closed the port with id=testport: VSERPORT_CHANGE, in order.
    let changes: Vec<&str> = case.output.lines().filter_map(|l| l.strip_prefix("PORTS-QMP ")).collect();
    let change = |open| format!("\"event\": \"VSERPORT_CHANGE\", \"data\": {{\"id\": \"testport\", \"open\": {open}}}");
    assert_eq!(changes, [change(true), change(false)], "{}", case.report());
    assert_eq!(case.status, Some(0), "{}", case.report());
}
