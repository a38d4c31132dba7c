//! Firecracker's `block` metrics follow what the device serves. The counters are process
//! statics shared with the tests running alongside, so each check is on growth of at least
//! what this test did, with sizes no other test uses.

use super::*;

#[test]
fn reads_writes_and_flushes_are_counted_with_their_bytes() {
    let b = &metrics::BLOCK;
    let before = [b.read_count.total(), b.read_bytes.total(), b.write_count.total(), b.write_bytes.total()];
    let (flushes, invalid) = (b.flush_count.total(), b.invalid_reqs_count.total());
    let file = TempFile::new(&pattern(64 * 512));
    let mut d = driver(&file);
    let buf = d.alloc(7 * 512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 7 * 512, true)]).0, OK);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 8, &[(buf, 5 * 512, false)]).0, OK);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 16, &[(buf, 5 * 512, false)]).0, OK);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK);
    // Past the end: refused, counted as invalid, no bytes.
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 64, &[(buf, 512, true)]).0, IOERR);
    let after = [b.read_count.total(), b.read_bytes.total(), b.write_count.total(), b.write_bytes.total()];
    assert!(after[0] > before[0]);
    assert!(after[1] >= before[1] + 7 * 512);
    assert!(after[2] >= before[2] + 2);
    assert!(after[3] >= before[3] + 10 * 512);
    assert!(b.flush_count.total() > flushes);
    assert!(b.invalid_reqs_count.total() > invalid);
}
