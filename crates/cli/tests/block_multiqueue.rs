//! `virtio-blk-device,num-queues=N,iothread=ID` on the real binary and /dev/kvm, with the
//! sandbox on (the default): the tiny guest's own driver acks VIRTIO_BLK_F_MQ, sets up
//! every queue, and writes, reads back and copies a pattern through one queue other than
//! the first (its kicks are that queue's ioeventfd, its completions that queue's used
//! ring), with each engine, on an iothread and on the virtio thread.

mod common;

use common::block::assert_pattern_twice;
use common::*;

const IMAGE: usize = 65536;

/// Runs the guest on queue `queue` of a drive with `drive_props` on its `-drive` and
/// `device_props` on its `-device`; returns the image afterwards.
fn write_read_copy_on(queue: u32, drive_props: &str, device_props: &str) -> Vec<u8> {
    let what = format!("queue {queue}{drive_props}{device_props}");
    let dir = TempDir::new("block-mq");
    let guest = tiny_guest::virtio_blk_write_read_copy_on_queue(tiny_guest::VIRTIO_MMIO_SLOT0, queue);
    let kernel = dir.file("vmlinux", &guest);
    let disk = dir.file("disk.img", &[0u8; IMAGE]);
    let drive = format!("id=d,file={},format=raw,if=none{drive_props}", disk.display());
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-nodefaults", "-serial", "stdio", "-kernel"]).arg(&kernel);
    cmd.args(["-object", "iothread,id=io0", "-drive", &drive]);
    cmd.args(["-device", &format!("virtio-blk-device,drive=d{device_props}")]);
    let mut vm = Running::spawn(cmd);
    assert!(vm.wait_for_stdout(b"go\n", RUN_TIMEOUT), "{what}: the guest did not start");
    assert!(vm.wait_for_stdout(b"...\ndone\n", RUN_TIMEOUT), "{what}: the requests did not all complete");
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some_and(|s| s.success()), "{what}: {}", out.describe());
    std::fs::read(&disk).unwrap()
}

#[test]
fn every_engine_serves_a_second_queue_on_an_iothread() {
    if !kvm_tests_enabled() {
        return;
    }
    for aio in ["", ",aio=threads", ",aio=io_uring"] {
        let props = ",num-queues=2,iothread=io0";
        assert_pattern_twice(&write_read_copy_on(1, aio, props), &format!("{aio}{props}"));
    }
}

/// The last of four queues, on the virtio thread (the iothread declared but named by no
/// drive, so it is not started).
#[test]
fn the_last_of_four_queues_on_the_virtio_thread() {
    if !kvm_tests_enabled() {
        return;
    }
    assert_pattern_twice(&write_read_copy_on(3, ",aio=threads", ",num-queues=4"), "num-queues=4");
}
