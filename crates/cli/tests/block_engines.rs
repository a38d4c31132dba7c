//! Each block engine on the real binary and /dev/kvm, with the sandbox on (the
//! default): the tiny guest's own virtio-blk driver writes a pattern, reads it back
//! and writes what it read elsewhere; the host finds the pattern in both places. Also
//! through Firecracker's API (`curl --unix-socket`), with `io_engine` Sync and Async.

mod common;

use common::block::assert_pattern_twice;
use common::firecracker::{firecracker, put, wait_for_socket};
use common::*;

const IMAGE: usize = 65536;

/// Runs the write-read-copy guest on a drive with `props` appended to its `-drive`;
/// returns the image afterwards.
fn write_read_copy(props: &str) -> Vec<u8> {
    let dir = TempDir::new("block-engines");
    let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_write_read_copy(tiny_guest::VIRTIO_MMIO_SLOT0));
    let disk = dir.file("disk.img", &[0u8; IMAGE]);
    let drive = format!("id=d,file={},format=raw,if=none{props}", disk.display());
    let mut vm = Running::spawn(tiny_block_vm(&kernel, &drive));
    assert!(vm.wait_for_stdout(b"go\n", RUN_TIMEOUT), "{props}: the guest did not start");
    assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "{props}: the requests did not all complete");
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{props}: {}", out.describe());
    std::fs::read(&disk).unwrap()
}

#[test]
fn every_aio_mode_writes_and_reads_back() {
    if !kvm_tests_enabled() {
        return;
    }
    for props in ["", ",aio=threads", ",aio=io_uring", ",aio=io_uring,cache=writethrough", ",aio=io_uring,cache=unsafe"]
    {
        assert_pattern_twice(&write_read_copy(props), props);
    }
}

/// O_DIRECT needs a file system that has it (tmpfs does not): the temp directory's.
#[test]
fn aio_native_with_cache_none_writes_and_reads_back() {
    if !kvm_tests_enabled() {
        return;
    }
    let probe = TempDir::new("block-engines-direct");
    let file = probe.file("probe", &[0u8; 4096]);
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&file).is_err() {
        eprintln!("skipped: the temp directory has no O_DIRECT");
        return;
    }
    for props in [",aio=native,cache=none", ",aio=native,cache=directsync", ",aio=io_uring,cache=none"] {
        assert_pattern_twice(&write_read_copy(props), props);
    }
}

/// QEMU's rule and words: Linux AIO needs O_DIRECT.
#[test]
fn aio_native_without_direct_is_refused_as_qemu_does() {
    let dir = TempDir::new("block-engines-native");
    let disk = dir.file("disk.img", &[0u8; IMAGE]);
    let drive = format!("id=d,file={},format=raw,if=none,aio=native", disk.display());
    let out = microvm()
        .args(["-M", "microvm", "-nodefaults", "-drive", &drive, "-device", "virtio-blk-device,drive=d"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("aio=native was specified, but it requires cache.direct=on, which was not specified."),
        "{err}"
    );
}

/// Firecracker's `io_engine`: `Async` is io_uring (as in Firecracker), `Sync` the sync
/// engine; the same guest through a drive configured with `curl --unix-socket`.
#[test]
fn firecracker_io_engines_write_and_read_back() {
    if !kvm_tests_enabled() {
        return;
    }
    for engine in ["Sync", "Async"] {
        let dir = TempDir::new("block-engines-fc");
        let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_write_read_copy(tiny_guest::VIRTIO_MMIO_SLOT0));
        let disk = dir.file("disk.img", &[0u8; IMAGE]);
        let socket = dir.path().join("firecracker.socket");
        let mut vm = firecracker(&socket, &[]);
        wait_for_socket(&socket, &mut vm);
        let boot = serde_json::json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
        assert_eq!(put(&socket, "/boot-source", &boot.to_string()).status, 204);
        let drive = serde_json::json!({
            "drive_id": "data", "path_on_host": disk, "is_root_device": false, "io_engine": engine,
            "cache_type": "Writeback",
        });
        assert_eq!(put(&socket, "/drives/data", &drive.to_string()).status, 204, "{engine}");
        assert_eq!(put(&socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
        assert_eq!(put(&socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
        assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "{engine}: the requests did not all complete");
        let started = vm.started;
        let (status, out) = vm.wait(RUN_TIMEOUT, started);
        assert!(status.is_some_and(|s| s.success()), "{engine}: {}", out.describe());
        assert_pattern_twice(&std::fs::read(&disk).unwrap(), engine);
    }
}

/// `packed=on`: the tiny guest's packed-ring driver (VIRTIO_F_RING_PACKED acked) makes
/// the same writes and read through a packed virtqueue, its third request crossing the
/// ring's end; the image holds the pattern twice only if the device served that layout.
#[test]
fn a_packed_ring_writes_and_reads_back() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("block-packed");
    let kernel = dir.file("vmlinux", &tiny_guest::virtio_blk_packed_write_read_copy(tiny_guest::VIRTIO_MMIO_SLOT0));
    let disk = dir.file("disk.img", &[0u8; IMAGE]);
    let drive = format!("id=d,file={},format=raw,if=none", disk.display());
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-nodefaults", "-serial", "stdio", "-kernel"]).arg(&kernel);
    cmd.args(["-drive", &drive, "-device", "virtio-blk-device,drive=d,packed=on"]);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"go\n", RUN_TIMEOUT), "the guest did not start");
    assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "the requests did not all complete");
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{}", out.describe());
    assert_pattern_twice(&std::fs::read(&disk).unwrap(), "packed=on");
}
