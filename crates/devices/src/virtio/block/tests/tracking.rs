//! Dirty-page tracking (diff snapshots): what virtio-blk writes into guest memory must be
//! in the regions' bitmaps, since KVM's dirty log sees only the guest's writes.

use super::*;

/// With dirty-page tracking, what the device writes into guest memory is counted: the
/// buffers the disk is read into (by preadv, through raw pointers vm-memory cannot see,
/// so the device marks them), the status byte and the used ring (through vm-memory).
#[test]
fn with_tracking_a_read_marks_the_pages_the_device_wrote() {
    let data = pattern(16 * 512);
    let file = TempFile::new(&data);
    let (mut d, _) = TestDriver::tracked(Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap());
    d.activate(0, 16);
    let buf = aligned_buffer(&mut d, 8192, 4096, 0);
    let (_, status) = submit(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 8192, true)]);
    // What the driver wrote itself (descriptors, header) is not the device's.
    d.take_dirty_pages();
    d.notify(0);
    assert_eq!(d.used(0).len(), 1);
    assert_eq!(d.read_bytes(buf, 8192), &data[..8192]);
    let dirty = d.take_dirty_pages();
    for page in [buf / 4096, buf / 4096 + 1, status / 4096, d.used_ring(0) / 4096] {
        assert!(dirty.contains(&page), "page {page:#x} written by the device is not dirty: {dirty:x?}");
    }
    assert!(dirty.len() <= 5, "only what the device wrote: {dirty:x?}");
}
