//! vhost-user-fs without its virtiofsd: config space, and every FUSE request
//! answered with EIO (forgets with nothing), malformed chains included.

use super::*;
use crate::virtio::test_driver::TestDriver;

fn fuse_request(opcode: u32, unique: u64) -> Vec<u8> {
    let mut header = vec![0u8; 40];
    header[..4].copy_from_slice(&40u32.to_le_bytes());
    header[4..8].copy_from_slice(&opcode.to_le_bytes());
    header[8..16].copy_from_slice(&unique.to_le_bytes());
    header
}

#[test]
fn config_space_has_the_tag_and_one_request_queue() {
    let (mut driver, _dev) = TestDriver::new(VhostUserFs::orphan("share"));
    let tag: Vec<u8> = (0..9).flat_map(|i| driver.read_reg(0x100 + 4 * i).to_le_bytes()).collect();
    assert_eq!(&tag[..5], b"share");
    assert!(tag[5..36].iter().all(|b| *b == 0));
    assert_eq!(driver.read_reg(0x100 + 36), 1, "num_request_queues");
}

#[test]
fn requests_without_virtiofsd_get_eio() {
    let (mut driver, _dev) = TestDriver::new(VhostUserFs::orphan("share"));
    driver.activate(0, 64);
    // FUSE_GETATTR (3) on the request queue: a 16-byte reply with -EIO and the same unique.
    let request = driver.alloc_with(&fuse_request(3, 0x1234_5678_9abc));
    let reply = driver.alloc(128, 0xff);
    let head = driver.add_chain(1, &[(request, 40, false), (reply, 128, true)]);
    driver.notify(1);
    assert_eq!(driver.used(1), [(u32::from(head), 16)]);
    let out = driver.read_bytes(reply, 16);
    assert_eq!(u32::from_le_bytes(out[..4].try_into().unwrap()), 16);
    assert_eq!(i32::from_le_bytes(out[4..8].try_into().unwrap()), -libc::EIO);
    assert_eq!(u64::from_le_bytes(out[8..].try_into().unwrap()), 0x1234_5678_9abc);
    assert!(driver.interrupted());

    // FUSE_FORGET on hiprio: no reply. A chain with no room for a reply: returned empty.
    let forget = driver.alloc_with(&fuse_request(FUSE_FORGET, 7));
    let head = driver.add_chain(0, &[(forget, 40, false)]);
    driver.notify(0);
    assert_eq!(driver.used(0), [(u32::from(head), 0)]);
    let short = driver.alloc(8, 0);
    let head = driver.add_chain(1, &[(request, 40, false), (short, 8, true)]);
    driver.notify(1);
    assert_eq!(driver.used(1), [(u32::from(head), 0)]);
}

/// With EVENT_IDX the device must publish avail_event as it goes, or the guest stops
/// kicking after the first request it answers.
#[test]
fn eio_replies_keep_the_guest_kicking_with_event_idx() {
    let (mut driver, dev) = TestDriver::new(VhostUserFs::orphan("share"));
    let event_idx = 1 << VIRTIO_RING_F_EVENT_IDX;
    dev.lock().unwrap().features |= event_idx;
    driver.activate(event_idx, 64);
    let request = driver.alloc_with(&fuse_request(3, 1));
    for n in 1..=3u16 {
        let reply = driver.alloc(16, 0);
        driver.add_chain(1, &[(request, 40, false), (reply, 16, true)]);
        driver.notify(1);
        assert_eq!(driver.used(1).len(), 1);
        assert_eq!(driver.avail_event(1), n, "avail_event follows the requests");
    }
}

/// A snapshot with vhost-user-fs is refused with one line, whether or not the driver
/// has started it, and so is a restore into one.
#[test]
fn snapshots_are_refused_with_one_clear_line() {
    use crate::bus::BusDevice;
    let (mut driver, _dev) = TestDriver::new(VhostUserFs::orphan("share"));
    let err = driver.transport.save().unwrap_err();
    assert!(matches!(err, crate::state::StateError::Unsupported { device: "vhost-user-fs", .. }));
    assert_eq!(
        err.to_string(),
        "vhost-user-fs cannot be saved or restored: its file system state lives in virtiofsd, which cannot save it \
         (QEMU refuses too); remove the device to take snapshots"
    );
    driver.activate(0, 64);
    assert!(driver.transport.save().is_err());
    let mut other = VhostUserFs::orphan("share");
    assert!(matches!(
        other.restore(crate::virtio::VirtioState::Rng),
        Err(crate::state::StateError::Unsupported { .. })
    ));
}
