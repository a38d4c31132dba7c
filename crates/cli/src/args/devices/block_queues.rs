//! `virtio-blk-device,num-queues=,iothread=` and `-object iothread`: what reaches the
//! drive's config, and the one-line refusals.

use super::super::test_util::*;
use vmm::config::{BlockConfig, DeviceConfig};

fn blocks(extra: &[&str]) -> Vec<BlockConfig> {
    let vm = run(extra).expect("a valid command line");
    vm.devices.into_iter().filter_map(|d| if let DeviceConfig::Block(b) = d { Some(b) } else { None }).collect()
}

const DRIVES: [&str; 4] = ["-drive", "id=d0,file=a.img,if=none", "-drive", "id=d1,file=b.img,if=none"];

#[test]
fn num_queues_and_iothread_reach_the_drive_and_drives_share_an_iothread() {
    let mut line = DRIVES.to_vec();
    line.extend(["-object", "iothread,id=io0", "-object", "iothread,id=io1,poll-max-ns=32768"]);
    line.extend(["-device", "virtio-blk-device,drive=d0,num-queues=4,iothread=io0"]);
    line.extend(["-device", "virtio-blk-device,iothread=io0,drive=d1"]);
    let got = blocks(&line);
    assert_eq!((got[0].num_queues, got[0].iothread.as_deref()), (Some(4), Some("io0")));
    assert_eq!((got[1].num_queues, got[1].iothread.as_deref()), (None, Some("io0")), "shared, one queue");
    // The drive's own settings are kept beside the device's.
    assert_eq!(got[0].path, std::path::PathBuf::from("a.img"));
    // Without either: one queue on the virtio thread.
    let plain = blocks(&["-drive", "id=d,file=f,if=none", "-device", "virtio-blk-device,drive=d"]);
    assert_eq!((plain[0].num_queues, plain[0].iothread.as_deref()), (None, None));
}

#[test]
fn bad_queue_counts_and_unknown_iothreads_are_one_line() {
    for n in ["0", "17", "-1", "four", ""] {
        let e =
            err(&["-drive", "id=d,file=f,if=none", "-device", &format!("virtio-blk-device,drive=d,num-queues={n}")]);
        assert_invalid(e, "-device", "num-queues must be a number from 1 to 16");
    }
    let e = err(&["-drive", "id=d,file=f,if=none", "-device", "virtio-blk-device,drive=d,iothread=nope"]);
    assert_invalid(e, "-device", "Property 'virtio-blk-device.iothread' can't find value 'nope'");
    // An rng object is no iothread.
    let mut line = vec!["-object", "rng-random,id=r", "-drive", "id=d,file=f,if=none"];
    line.extend(["-device", "virtio-blk-device,drive=d,iothread=r"]);
    assert_invalid(err(&line), "-device", "can't find value 'r'");
    let line = ["-drive", "id=d,file=f,if=none", "-device", "virtio-blk-device,drive=d,iothread-vq-mapping=io0"];
    assert_invalid(err(&line), "-device", "iothread-vq-mapping is not supported: use iothread=ID");
    assert_invalid(err(&["-object", "iothread"]), "-object", "id= is required");
    let e = err(&["-object", "iothread,id=io0", "-object", "rng-builtin,id=io0"]);
    assert_invalid(e, "-object", "duplicate id 'io0'");
    let e = err(&["-object", "iothread,id=io0", "-object", "iothread,id=io0"]);
    assert_invalid(e, "-object", "duplicate id 'io0'");
}
