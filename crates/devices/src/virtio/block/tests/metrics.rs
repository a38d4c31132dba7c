//! Firecracker's `block` metrics follow what the device serves, counted in the drive's own
//! `block_<id>` group (the aggregate `block` is their sum, tested in the metrics crate).

use super::*;

#[test]
fn reads_writes_and_flushes_are_counted_with_their_bytes() {
    let file = TempFile::new(&pattern(64 * 512));
    // A drive id no other test uses: its `block_<id>` group counts this device alone.
    let opts = BlockOptions { id: "metrics-rw".into(), ..options(&file.path, false, CacheMode::Writeback) };
    let mut d = driver_for(opts, 0);
    let b = metrics::BLOCK_DEVICES.register("metrics-rw");
    let buf = d.alloc(7 * 512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 7 * 512, true)]).0, OK);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 8, &[(buf, 5 * 512, false)]).0, OK);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 16, &[(buf, 5 * 512, false)]).0, OK);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK);
    // Past the end: refused, counted as invalid, no bytes.
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 64, &[(buf, 512, true)]).0, IOERR);
    let counts = [b.read_count.total(), b.read_bytes.total(), b.write_count.total(), b.write_bytes.total()];
    assert_eq!(counts, [1, 7 * 512, 2, 10 * 512]);
    assert_eq!((b.flush_count.total(), b.invalid_reqs_count.total()), (1, 1));
}
