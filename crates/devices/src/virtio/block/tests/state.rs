//! virtio-blk saved and restored: requests go on where they were, on a copy of the
//! image (as each clone of a snapshot gets its own), and what cannot match is refused.

use super::*;
use crate::state::{DeviceState, StateError};
use crate::virtio::status;

fn block(file: &TempFile) -> Block {
    Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap()
}

/// A copy of `file` at the time of the snapshot (the image belongs to the clone).
fn copy(file: &TempFile) -> TempFile {
    TempFile::new(&file.contents())
}

fn transport(state: &mut DeviceState) -> &mut crate::virtio::mmio::TransportState {
    match state {
        DeviceState::Virtio(t) => t,
        other => panic!("not a virtio state: {other:?}"),
    }
}

/// Requests before the snapshot, one posted but not yet taken when it is taken, and
/// more after the restore: the used index goes on from where it was, every request
/// completes once, and the data is right.
#[test]
fn requests_continue_after_a_restore() {
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, _dev) = TestDriver::new(block(&file));
    d.activate(1 << VIRTIO_RING_F_EVENT_IDX, 16);
    let a = guest_buffer(&mut d, &[0xaa; 512]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(a, 512, false)]), (OK, 1));
    let out = d.alloc(512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 1, &[(out, 512, true)]), (OK, 513));
    // Posted, but the device thread is parked before it sees the kick.
    let b = guest_buffer(&mut d, &[0xbb; 512]);
    let (pending, status) = submit(&mut d, VIRTIO_BLK_T_OUT, 3, &[(b, 512, false)]);
    let state = d.save();
    let DeviceState::Virtio(t) = &state else { panic!("virtio") };
    assert!(t.activated);
    assert_eq!((t.queues[0].next_avail, t.queues[0].next_used), (2, 2), "saved from the device's queue");
    assert!(t.queues[0].event_idx_enabled);

    let image = copy(&file);
    let (mut r, _) = d.restored(block(&image), state).unwrap();
    assert_eq!(r.used(0), [(u32::from(pending), 1)], "the pending request is served when the device starts");
    assert_eq!(r.used_idx(0), 3);
    assert_eq!(r.read_bytes(status, 1), [OK]);
    let back = r.alloc(1024, 0);
    assert_eq!(run(&mut r, VIRTIO_BLK_T_IN, 2, &[(back, 1024, true)]), (OK, 1025));
    assert_eq!(r.used_idx(0), 4);
    let mut want = pattern(16 * 512)[2 * 512..3 * 512].to_vec();
    want.extend_from_slice(&[0xbb; 512]);
    assert_eq!(r.read_bytes(back, 1024), want);
    assert_eq!(&image.contents()[..512], &[0xaa; 512], "written before the snapshot");
    assert_eq!(&file.contents()[3 * 512..4 * 512], &pattern(16 * 512)[3 * 512..4 * 512], "the original untouched");
}

/// A device the driver had not finished setting up is restored as it was, and the
/// driver can complete the set-up.
#[test]
fn a_device_before_driver_ok_is_restored_unactivated() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, _dev) = TestDriver::new(block(&file));
    d.negotiate(0);
    d.setup_queue(0, 16);
    let state = d.save();
    let (mut r, _) = d.restored(block(&copy(&file)), state).unwrap();
    assert_eq!(r.status() & status::DRIVER_OK, 0);
    assert_ne!(r.status() & status::FEATURES_OK, 0);
    r.driver_ok();
    let out = r.alloc(512, 0);
    assert_eq!(run(&mut r, VIRTIO_BLK_T_IN, 0, &[(out, 512, true)]), (OK, 513));
    assert_eq!(r.read_bytes(out, 512), pattern(512));
}

#[test]
fn a_disk_of_another_size_is_refused() {
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, _dev) = TestDriver::new(block(&file));
    d.activate(0, 16);
    let state = d.save();
    let smaller = TempFile::new(&pattern(8 * 512));
    let err = d.restored(block(&smaller), state).err().unwrap();
    assert!(matches!(err, StateError::Config { saved: 16, now: 8, .. }));
    assert_eq!(
        err.to_string(),
        "virtio-blk: the disk size in sectors differs from the saved machine's (saved 16, now 8)"
    );
}

#[test]
fn a_disk_opened_in_another_mode_is_refused() {
    let file = TempFile::new(&pattern(16 * 512));
    let (mut d, _dev) = TestDriver::new(block(&file));
    d.activate(0, 16);
    let state = d.save();
    let image = copy(&file);
    let read_only = Block::new(options(&image.path, true, CacheMode::Writeback)).unwrap();
    let err = d.restored(read_only, state).err().unwrap();
    assert!(matches!(err, StateError::Config { saved: 0, now: 1, .. }), "{err}");
}

/// Each way a saved transport can disagree with the rebuilt device, refused with its
/// own error.
#[test]
fn saved_queues_and_features_that_do_not_fit_are_refused() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, _dev) = TestDriver::new(block(&file));
    d.activate(0, 16);
    let good = d.save();
    let try_with = |change: &dyn Fn(&mut DeviceState)| {
        let mut state = good.clone();
        change(&mut state);
        d.restored(block(&copy(&file)), state).err().expect("refused")
    };

    let err = try_with(&|s| {
        transport(s).queues.pop();
    });
    assert!(matches!(err, StateError::QueueCount { saved: 0, now: 1 }), "{err}");
    let err = try_with(&|s| transport(s).queues[0].size = 512);
    assert!(matches!(err, StateError::InvalidQueue { index: 0, .. }), "{err}");
    assert_eq!(err.to_string(), "queue 0: its size is not a power of two no larger than the maximum");
    let err = try_with(&|s| transport(s).queues[0].size = 12);
    assert!(matches!(err, StateError::InvalidQueue { index: 0, .. }), "{err}");
    let err = try_with(&|s| transport(s).queues[0].max_size = 128);
    assert!(matches!(err, StateError::InvalidQueue { index: 0, .. }), "{err}");
    let err = try_with(&|s| transport(s).queues[0].used_ring = MEM_SIZE - 8);
    assert_eq!(err.to_string(), "queue 0: its rings are not inside guest memory");
    let err = try_with(&|s| transport(s).queues[0].desc_table += 8);
    assert_eq!(err.to_string(), "queue 0: a ring address is misaligned");
    let err = try_with(&|s| transport(s).queues[0].ready = false);
    assert_eq!(err.to_string(), "queue 0: not ready, but the device was using it");
    let err = try_with(&|s| transport(s).acked_features |= 1 << 40);
    assert!(matches!(err, StateError::Features { .. }), "{err}");
    let err = try_with(&|s| transport(s).device = crate::virtio::VirtioState::Rng);
    assert!(matches!(err, StateError::KindMismatch { expected: "virtio-blk", found: "virtio-rng" }), "{err}");
    let err = try_with(&|s| *s = DeviceState::Stateless);
    assert!(matches!(err, StateError::KindMismatch { expected: "virtio-mmio", found: "stateless" }), "{err}");

    // Restoring into a device the guest has already set up.
    let (mut used, _dev) = TestDriver::new(block(&copy(&file)));
    used.negotiate(0);
    let err = used.transport.restore(good.clone()).unwrap_err();
    assert!(matches!(err, StateError::InUse { .. }), "{err}");

    // A block device's state handed to another kind of device.
    let rng = crate::virtio::rng::Rng::new().unwrap();
    let err = d.restored(rng, good.clone()).err().unwrap();
    assert!(matches!(err, StateError::Config { what: "device type", saved: 2, now: 4, .. }), "{err}");
}
