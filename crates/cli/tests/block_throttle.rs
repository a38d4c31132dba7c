//! QEMU's I/O throttling on the real binary and /dev/kvm: `-drive throttling.*` and its
//! legacy spelling start a VM, and QMP's `block_set_io_throttle` changes a running drive's
//! limits with QEMU's arguments and QEMU's errors. That the limits hold a guest back is
//! shown by the device tests and, measured in a Linux guest, by `cargo test -p xtask
//! --test ratelimit`.

mod common;

use common::qmp::Qmp;
use common::*;
use serde_json::json;

#[test]
fn throttled_drives_start_and_qmp_changes_their_limits() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("block-throttle");
    let kernel = dir.file("vmlinux", &tiny_guest::counter_on_serial(10_000));
    let (disk, cdrom) = (dir.file("disk.img", &[0u8; 65536]), dir.file("cdrom.img", &[0u8; 65536]));
    let (serial, socket) = (dir.path().join("serial"), dir.path().join("qmp.sock"));
    let drives = [
        format!(
            "id=d0,file={},format=raw,if=none,throttling.bps-total=10000000,throttling.iops-size=4096",
            disk.display()
        ),
        format!("id=d1,file={},format=raw,if=none,readonly=on,iops_rd=100,iops_rd_max=200", cdrom.display()),
    ];
    let extra = [
        "-drive",
        &drives[0],
        "-device",
        "virtio-blk-device,drive=d0",
        "-drive",
        &drives[1],
        "-device",
        "virtio-blk-device,drive=d1",
    ];
    let vm = Running::spawn(common::counter::machine("microvm,legacy", &kernel, &serial, &socket, &extra));
    common::counter::wait_lines(&serial, 2);
    let mut qmp = Qmp::connect(&socket);

    let limits = json!({ "bps": 0, "bps_rd": 0, "bps_wr": 5_000_000, "iops": 0, "iops_rd": 100, "iops_wr": 0 });
    let mut args = limits.clone();
    args["device"] = json!("d0");
    args["iops_rd_max"] = json!(400);
    args["iops_rd_max_length"] = json!(3);
    assert_eq!(qmp.execute("block_set_io_throttle", args), Ok(json!({})));
    let mut by_id = limits.clone();
    by_id["id"] = json!("d1");
    by_id["group"] = json!("g");
    assert_eq!(qmp.execute("block_set_io_throttle", by_id), Ok(json!({})), "id= and group= as QEMU takes them");
    // Lifting every limit: all zeros, QEMU's "unlimited".
    let zeros = json!({ "device": "d0", "bps": 0, "bps_rd": 0, "bps_wr": 0, "iops": 0, "iops_rd": 0, "iops_wr": 0 });
    assert_eq!(qmp.execute("block_set_io_throttle", zeros), Ok(json!({})));

    let mut unknown = limits.clone();
    unknown["device"] = json!("nope");
    assert_eq!(qmp.execute("block_set_io_throttle", unknown), Err("Device 'nope' not found".into()));
    let mut both = limits.clone();
    both["bps"] = json!(1000);
    both["bps_rd"] = json!(10);
    both["device"] = json!("d0");
    let e = qmp.execute("block_set_io_throttle", both).unwrap_err();
    assert!(e.contains("cannot be used at the same time"), "{e}");
    let mut negative = limits.clone();
    negative["device"] = json!("d0");
    negative["iops"] = json!(-1);
    let e = qmp.execute("block_set_io_throttle", negative).unwrap_err();
    assert!(e.contains("must be within"), "{e}");
    let e = qmp.execute("block_set_io_throttle", limits).unwrap_err();
    assert!(e.contains("exactly one of 'device' and 'id'"), "{e}");
    let e = qmp.execute("block_set_io_throttle", json!({ "device": "d0" })).unwrap_err();
    assert_eq!(e, "Parameter 'bps' is missing");
    assert_eq!(qmp.execute("quit", json!({})), Ok(json!({})));
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
}

/// Runs the tiny virtio-blk driver guest (12 one-page reads, one at a time) on a drive
/// with `throttling` appended to its `-drive`; returns the time from its `go` to its
/// `done`, as the host sees its serial output.
fn twelve_reads(throttling: &str) -> std::time::Duration {
    let dir = TempDir::new("block-throttle-reads");
    let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_reads_then_reset(tiny_guest::VIRTIO_MMIO_SLOT0, 12));
    let disk = dir.file("disk.img", &[0u8; 65536]);
    let drive = format!("id=d,file={},format=raw,if=none{throttling}", disk.display());
    let mut vm = Running::spawn(tiny_block_vm(&kernel, &drive));
    assert!(vm.wait_for_stdout(b"go\n", RUN_TIMEOUT), "the guest did not start");
    let start = std::time::Instant::now();
    assert!(vm.wait_for_stdout(b"............\ndone\n", RUN_TIMEOUT), "the reads did not all complete");
    let took = start.elapsed();
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    took
}

/// The guest's own driver through the real KVM path: 12 reads, one at a time, on a drive
/// limited to 20 requests a second (a bucket of 2, then one every 50 ms) take at least the
/// 500 ms of the 10 refills; on one limited to 40960 bytes a second (a bucket of one 4 KiB
/// read, then one every 100 ms) the 1.1 s of 11 refills; unlimited, a few milliseconds.
/// None fails (each read completes, then `done`).
#[test]
fn a_guest_driver_is_held_to_the_drive_limits() {
    if !kvm_tests_enabled() {
        return;
    }
    // The control: the fastest of three unlimited runs (a loaded host slows single runs).
    let free = (0..3).map(|_| twelve_reads("")).min().unwrap_or_default();
    let ops = twelve_reads(",throttling.iops-total=20");
    let bytes = twelve_reads(",bps=40960");
    eprintln!("12 reads: unlimited {free:?}, iops-total=20 {ops:?}, bps=40960 {bytes:?}");
    let ms = std::time::Duration::from_millis;
    assert!(ops >= ms(490), "iops-total=20: 12 reads in {ops:?}");
    assert!(bytes >= ms(1090), "bps=40960: 12 reads in {bytes:?}");
    assert!(free < ms(490), "unlimited, 12 reads took {free:?}: the limits are not what slows them");
}
