//! Acceptance of the virtio-mmio devices with a real Linux guest: the minimal kernel
//! boots the ext4 rootfs image (xtask/src/images/rootfs.rs) from virtio-blk, with no
//! initramfs, and runs one of guest/rootfs/tests/* (`microvm.run=`). One scenario
//! (xtask/scenarios/dev-*.sh) and one rig boot per test, as in boot.rs.

use xtask::scenario::Case;

use xtask::scenario::run_test_case as run;

/// The value after `KEY ` on the first line that has it.
fn value<'a>(case: &'a Case, key: &str) -> Option<&'a str> {
    let prefix = format!("{key} ");
    case.output.lines().find_map(|l| l.split(&prefix).nth(1)).map(str::trim)
}

fn has(case: &Case, line: &str) -> bool {
    case.output.lines().any(|l| l.contains(line))
}

/// The guest reached its /sbin/init on the rootfs, its test command exited 0, and
/// microvm exited 0 on the guest's reboot, logging nothing.
fn assert_ran(case: &Case, cpus: u32) {
    let ready = case.ready().unwrap_or_else(|| panic!("no MICROVM-GUEST-READY\n{}", case.report()));
    assert_eq!(ready.cpus, cpus, "{}", case.report());
    if has(case, "MICROVM-GUEST-RUN-EXIT") {
        assert_eq!(value(case, "MICROVM-GUEST-RUN-EXIT"), Some("status=0"), "{}", case.report());
    }
    assert_eq!(case.status, Some(0), "scenario did not exit 0\n{}", case.report());
    let logged: Vec<&str> = case.output.lines().filter(|l| l.starts_with("microvm:")).collect();
    let unexpected: Vec<&&str> = logged.iter().filter(|l| !l.contains("uses tap device")).collect();
    assert!(unexpected.is_empty(), "microvm logged: {unexpected:?}\n{}", case.report());
    eprintln!("\n{}: ok, {} ms", case.name, case.ms.unwrap_or(0));
}

/// 1. The normal-mode line: root on virtio-blk, console=hvc0 into a file chardev,
///    virtio-net on a tap microvm creates (it says which).
#[test]
fn normal_mode_line_boots_from_virtio_blk_with_hvc0() {
    let Some(case) = run("dev-normal") else {
        return;
    };
    assert_ran(&case, 2);
    let file = case.output.split("== hvc0 (file chardev)\n").nth(1).unwrap_or("");
    assert!(file.contains("MICROVM-GUEST-READY cpus=2"), "marker not in the file chardev\n{}", case.report());
    assert!(has(&case, "microvm: netdev tap0 uses tap device"), "no tap name on stderr\n{}", case.report());
    assert_devices(&case);
}

/// /tests/devices: the root filesystem is on /dev/vda and eth0 exists.
fn assert_devices(case: &Case) {
    let found = value(case, "GUEST-DEVICES").unwrap_or_else(|| panic!("no GUEST-DEVICES line\n{}", case.report()));
    assert!(found.starts_with("root=vda "), "/ is not on vda: {found}\n{}", case.report());
    assert!(found.contains("eth0,"), "no eth0: {found}\n{}", case.report());
}

/// 6. The legacy-mode line: same guest and devices, console=ttyS0 on -serial stdio.
#[test]
fn legacy_mode_line_boots_from_virtio_blk_with_ttys0() {
    let Some(case) = run("dev-legacy") else {
        return;
    };
    assert_ran(&case, 2);
    assert_devices(&case);
}

/// 2. What the guest wrote is in the image, byte for byte, and the image is clean;
///    a readonly=on disk mounts read-only and refuses every write.
#[test]
fn block_writes_reach_the_image_and_readonly_disks_refuse_writes() {
    let Some(case) = run("dev-blk") else { return };
    let r = case.report();
    assert_eq!(case.status, Some(0), "{r}");
    assert_eq!(value(&case, "VMM-EXIT-1"), Some("status=0"), "{r}");
    let guest = value(&case, "GUEST-SHA256").unwrap_or_else(|| panic!("guest printed no checksum\n{r}"));
    assert_eq!(guest.len(), 64, "{r}");
    assert_eq!(value(&case, "HOST-SHA256"), Some(guest), "debugfs found other data\n{r}");
    assert_eq!(value(&case, "E2FSCK-STATUS"), Some("0"), "e2fsck -fn: image not clean\n{r}");
    // -n skips journal replay: a journal left dirty would hide what e2fsck should see.
    assert!(!has(&case, "skipping journal recovery"), "the guest left the journal dirty\n{r}");
    assert!(!has(&case, "count wrong"), "e2fsck found wrong counts\n{r}");
    assert_eq!(value(&case, "VMM-EXIT-2"), Some("status=0"), "{r}");
    for line in ["RO-SYSFS ro=1", "RO-MOUNT ok", "RO-READ ok", "RO-REMOUNT-RW failed", "RO-TOUCH failed"] {
        assert!(has(&case, line), "missing '{line}'\n{r}");
    }
    assert!(has(&case, "RO-RAW-WRITE failed"), "raw write to the readonly disk succeeded\n{r}");
    assert!(has(&case, "RO-IMAGE unchanged"), "the readonly image was modified\n{r}");
}

/// 5. virtio-rng: 1 MiB from /dev/hwrng.
#[test]
fn rng_delivers_a_mebibyte() {
    let Some(case) = run("dev-rng") else { return };
    assert_ran(&case, 1);
    assert!(has(&case, "virtio_rng"), "hw_random is not backed by virtio_rng\n{}", case.report());
    assert_eq!(value(&case, "RNG-BYTES"), Some("1048576"), "{}", case.report());
}

/// 3. virtio-net on a tap: ping, then 64 MiB each way over TCP with equal md5sums.
#[test]
fn net_moves_64_mib_each_way_over_tcp() {
    let Some(case) = run("dev-net") else { return };
    let r = case.report();
    assert!(has(&case, "NET-PING ok"), "ping failed\n{r}");
    let sent = value(&case, "GUEST-TX-MD5").unwrap_or_else(|| panic!("guest sent nothing\n{r}"));
    assert_eq!(value(&case, "L2-RX-BYTES"), Some("67108864"), "guest→L2 length\n{r}");
    assert_eq!(value(&case, "L2-RX-MD5"), Some(sent), "guest→L2 data differ\n{r}");
    let l2 = value(&case, "L2-TX-MD5").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(value(&case, "GUEST-RX-BYTES"), Some("67108864"), "L2→guest length\n{r}");
    assert_eq!(value(&case, "GUEST-RX-MD5"), Some(l2), "L2→guest data differ\n{r}");
    assert_ran(&case, 1);
}

/// 4. virtio-console on a Unix-socket chardev, both ways: the guest's hvc0 output
///    reaches the socket, a line written to the socket reaches a guest reader.
#[test]
fn console_socket_chardev_carries_text_both_ways() {
    let Some(case) = run("dev-console") else {
        return;
    };
    let r = case.report();
    assert_eq!(case.status, Some(0), "{r}");
    let socket = case.output.split("== socket\n").nth(1).unwrap_or("");
    for line in ["MICROVM-GUEST-READY cpus=1", "CONSOLE-OUT hello-from-hvc0", "CONSOLE-IN hello-through-the-socket"] {
        assert!(socket.contains(line), "'{line}' did not come out of the socket\n{r}");
    }
    assert!(socket.contains("MICROVM-GUEST-RUN-EXIT status=0"), "{r}");
}
