//! Each request type through the transport, and how the device answers a guest that
//! gets a request wrong.

use super::*;

#[test]
fn identifies_as_block_with_features_and_config() {
    let file = TempFile::new(&pattern(8 * 512));
    let (mut d, dev) = TestDriver::new(Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap());
    assert_eq!(d.read_reg(0x8), VIRTIO_ID_BLOCK);
    let f = d.device_features();
    for bit in [
        virtio_bindings::virtio_config::VIRTIO_F_VERSION_1,
        VIRTIO_RING_F_EVENT_IDX,
        VIRTIO_RING_F_INDIRECT_DESC,
        VIRTIO_BLK_F_SEG_MAX,
        VIRTIO_BLK_F_BLK_SIZE,
        VIRTIO_BLK_F_FLUSH,
        VIRTIO_BLK_F_WRITE_ZEROES,
    ] {
        assert!(has(f, bit), "feature bit {bit} offered");
    }
    assert!(!has(f, VIRTIO_BLK_F_RO));
    assert_eq!(has(f, VIRTIO_BLK_F_DISCARD), dev.lock().unwrap().worker.disk.punch_hole);
    d.write_reg(0x30, 0);
    assert_eq!(d.read_reg(0x34), u32::from(QUEUE_SIZE));

    type C = virtio_blk_config;
    assert_eq!(config(&mut d, 0, 8), 8u64.to_le_bytes());
    assert_eq!(config_u32(&mut d, offset_of!(C, seg_max)), SEG_MAX);
    assert_eq!(config_u32(&mut d, offset_of!(C, blk_size)), 512);
    assert_eq!(config_u32(&mut d, offset_of!(C, max_write_zeroes_seg)), MAX_WRITE_ZEROES_SEG);
    assert_eq!(config_u32(&mut d, offset_of!(C, max_write_zeroes_sectors)), MAX_WRITE_ZEROES_SECTORS);
    // Odd widths and offsets, and reads past the end, are safe.
    assert_eq!(config(&mut d, 0, 1), [8]);
    assert_eq!(config(&mut d, 1, 3), [0, 0, 0]);
    assert_eq!(config(&mut d, size_of::<C>() as u64 - 2, 8), [0; 8]);
    assert_eq!(config(&mut d, 4096, 4), [0; 4]);
    assert_eq!(dev.lock().unwrap().capacity(), 8);
}

#[test]
fn read_returns_file_contents() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let buf = d.alloc(1024, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 2, &[(buf, 1024, true)]), (OK, 1025));
    assert_eq!(d.read_bytes(buf, 1024), &data[1024..2048]);
    assert!(d.interrupted());
}

#[test]
fn write_lands_in_the_file() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let buf = guest_buffer(&mut d, &[0x5a; 512]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 3, &[(buf, 512, false)]), (OK, 1));
    let mut expect = data.clone();
    expect[3 * 512..4 * 512].fill(0x5a);
    assert_eq!(file.contents(), expect);
}

#[test]
fn scatter_gather_reads_and_writes() {
    let data = pattern(16 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    // Segments need not be whole sectors, only their total.
    let (a, b, c) = (d.alloc(100, 0), d.alloc(924, 0), d.alloc(1024, 0));
    let (status, len) = run(&mut d, VIRTIO_BLK_T_IN, 4, &[(a, 100, true), (b, 924, true), (c, 1024, true)]);
    assert_eq!((status, len), (OK, 2049));
    let mut got = d.read_bytes(a, 100);
    got.extend(d.read_bytes(b, 924));
    got.extend(d.read_bytes(c, 1024));
    assert_eq!(got, &data[2048..4096]);

    let new = pattern(2048).iter().map(|x| x ^ 0xff).collect::<Vec<_>>();
    let x = guest_buffer(&mut d, &new[..512]);
    let y = guest_buffer(&mut d, &new[512..1512]);
    let z = guest_buffer(&mut d, &new[1512..]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 10, &[(x, 512, false), (y, 1000, false), (z, 536, false)]).0, OK);
    let mut expect = data.clone();
    expect[10 * 512..14 * 512].copy_from_slice(&new);
    assert_eq!(file.contents(), expect);
}

#[test]
fn descriptor_boundaries_carry_no_meaning() {
    let data = pattern(4 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    // Header in two pieces; data and status in one writable descriptor.
    let hdr = header(&mut d, VIRTIO_BLK_T_IN, 1);
    let buf = d.alloc(513, 0xee);
    let head = d.add_chain(0, &[(hdr, 5, false), (hdr + 5, 11, false), (buf, 513, true)]);
    d.notify(0);
    assert_eq!(d.used(0), vec![(u32::from(head), 513)]);
    assert_eq!(d.read_bytes(buf, 512), &data[512..1024]);
    assert_eq!(d.read_bytes(buf + 512, 1), [OK]);
}

#[test]
fn flush_succeeds_with_the_data_in_the_file() {
    for cache in [CacheMode::Writeback, CacheMode::Unsafe, CacheMode::Writethrough] {
        let file = TempFile::new(&pattern(4 * 512));
        let mut d = driver_for(options(&file.path, false, cache), 0);
        let buf = guest_buffer(&mut d, &[7; 512]);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(buf, 512, false)]).0, OK);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]), (OK, 1), "{cache:?}");
        assert_eq!(file.contents()[..512], [7; 512]);
    }
}

#[test]
fn flush_is_offered_only_with_a_volatile_cache() {
    let file = TempFile::new(&pattern(512));
    for (cache, flush) in [(CacheMode::Writeback, true), (CacheMode::Unsafe, true), (CacheMode::Writethrough, false)] {
        let (mut d, _) = TestDriver::new(Block::new(options(&file.path, false, cache)).unwrap());
        assert_eq!(has(d.device_features(), VIRTIO_BLK_F_FLUSH), flush, "{cache:?}");
    }
}

#[test]
fn get_id_returns_the_drive_id_zero_padded() {
    let file = TempFile::new(&pattern(512));
    let mut d = driver(&file);
    let buf = d.alloc(20, 0xff);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_GET_ID, 0, &[(buf, 20, true)]), (OK, 21));
    let mut expect = [0u8; 20];
    expect[..5].copy_from_slice(b"disk0");
    assert_eq!(d.read_bytes(buf, 20), expect);
    drop(d);

    let mut opts = options(&file.path, true, CacheMode::Writeback);
    opts.id = "abcdefghijklmnopqrstuvwxyz".into();
    let mut d = driver_for(opts, 0);
    let buf = d.alloc(32, 0xff);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_GET_ID, 0, &[(buf, 32, true)]), (OK, 21));
    assert_eq!(d.read_bytes(buf, 32), [&b"abcdefghijklmnopqrst"[..], &[0xff; 12]].concat());
}

#[test]
fn a_read_only_disk_offers_ro_and_refuses_writes() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let (mut d, _) = TestDriver::new(Block::new(options(&file.path, true, CacheMode::Writeback)).unwrap());
    let f = d.device_features();
    assert!(has(f, VIRTIO_BLK_F_RO));
    assert!(!has(f, VIRTIO_BLK_F_DISCARD) && !has(f, VIRTIO_BLK_F_WRITE_ZEROES));
    d.activate(0, 16);
    let buf = guest_buffer(&mut d, &[0; 512]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(buf, 512, false)]).0, IOERR);
    let (segs, len) = segments(&mut d, &[(0, 1, 0)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_DISCARD, 0, &[(segs, len, false)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(segs, len, false)]).0, IOERR);
    assert_eq!(file.contents(), data);
    // Reads and flushes still work.
    let out = d.alloc(512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 1, &[(out, 512, true)]).0, OK);
    assert_eq!(d.read_bytes(out, 512), &data[512..1024]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK);
}

#[test]
fn sectors_past_the_end_are_ioerr_and_change_nothing() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let buf = guest_buffer(&mut d, &[1; 1024]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 7, &[(buf, 1024, false)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, u64::MAX, &[(buf, 1024, false)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 8, &[(buf, 512, true)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, u64::MAX / 512, &[(buf, 1024, true)]).0, IOERR);
    let (segs, len) = segments(&mut d, &[(6, 4, 0)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(segs, len, false)]).0, IOERR);
    assert_eq!(file.contents(), data);
    assert_eq!(std::fs::metadata(&file.path).unwrap().len(), 8 * 512);
    // The last sector itself is fine.
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 7, &[(buf, 512, true)]).0, OK);
}

#[test]
fn lengths_not_a_multiple_of_512_are_ioerr() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let buf = d.alloc(1024, 0x33);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 100, true)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(buf, 513, false)]).0, IOERR);
    assert_eq!(file.contents(), data);
}

#[test]
fn a_short_header_is_ioerr() {
    let file = TempFile::new(&pattern(512));
    let mut d = driver(&file);
    let hdr = header(&mut d, VIRTIO_BLK_T_IN, 0);
    let buf = d.alloc(512, 0);
    let status = d.alloc(1, 0xee);
    d.add_chain(0, &[(hdr, 8, false), (buf, 512, true), (status, 1, true)]);
    d.notify(0);
    assert_eq!(d.used(0)[0].1, 1);
    assert_eq!(d.read_bytes(status, 1), [IOERR]);
}

#[test]
fn a_chain_without_a_writable_status_completes_with_nothing() {
    let data = pattern(4 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    // A write whose "status" is device-readable.
    let hdr = header(&mut d, VIRTIO_BLK_T_OUT, 0);
    let buf = guest_buffer(&mut d, &[9; 512]);
    let status = d.alloc(1, 0xee);
    let head = d.add_chain(0, &[(hdr, 16, false), (buf, 512, false), (status, 1, false)]);
    d.notify(0);
    assert_eq!(d.used(0), vec![(u32::from(head), 0)]);
    assert_eq!(d.read_bytes(status, 1), [0xee]);
    assert_eq!(file.contents(), data, "nothing written");
    // No status at all, or an empty one.
    let hdr = header(&mut d, VIRTIO_BLK_T_IN, 0);
    d.add_chain(0, &[(hdr, 16, false)]);
    d.notify(0);
    assert_eq!(d.used(0)[0].1, 0);
    let hdr = header(&mut d, VIRTIO_BLK_T_FLUSH, 0);
    d.add_chain(0, &[(hdr, 16, false), (status, 0, true)]);
    d.notify(0);
    assert_eq!(d.used(0)[0].1, 0);
}

#[test]
fn a_readable_descriptor_after_a_writable_one_is_ioerr() {
    let data = pattern(4 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let hdr = header(&mut d, VIRTIO_BLK_T_OUT, 0);
    let (w, r) = (d.alloc(512, 1), d.alloc(512, 2));
    let status = d.alloc(1, 0xee);
    d.add_chain(0, &[(hdr, 16, false), (w, 512, true), (r, 512, false), (status, 1, true)]);
    d.notify(0);
    assert_eq!(d.used(0)[0].1, 1);
    assert_eq!(d.read_bytes(status, 1), [IOERR]);
    assert_eq!(file.contents(), data);
}

#[test]
fn data_buffers_in_the_wrong_direction_are_ioerr() {
    let data = pattern(4 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let buf = d.alloc(512, 0x44);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 512, false)]).0, IOERR);
    assert_eq!(d.read_bytes(buf, 512), [0x44; 512], "a read-only buffer is not written");
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(buf, 512, true)]).0, IOERR);
    assert_eq!(file.contents(), data);
}

#[test]
fn buffers_outside_guest_memory_are_ioerr() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let straddling = MEM_SIZE - 256;
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(straddling, 512, true)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(MEM_SIZE + 4096, 512, false)]).0, IOERR);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 0, &[(u64::MAX - 100, 512, false)]).0, IOERR);
    assert_eq!(file.contents(), data);
    // A header outside memory too.
    let status = d.alloc(1, 0xee);
    d.add_chain(0, &[(MEM_SIZE, 16, false), (status, 1, true)]);
    d.notify(0);
    assert_eq!(d.read_bytes(status, 1), [IOERR]);
    d.used(0);
    // A status byte outside memory: nothing is done, nothing reported.
    let hdr = header(&mut d, VIRTIO_BLK_T_OUT, 0);
    let buf = guest_buffer(&mut d, &[3; 512]);
    d.add_chain(0, &[(hdr, 16, false), (buf, 512, false), (MEM_SIZE + 8, 1, true)]);
    d.notify(0);
    assert_eq!(d.used(0)[0].1, 0);
    assert_eq!(file.contents(), data);
    // The device still works.
    let ok = d.alloc(512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(ok, 512, true)]).0, OK);
}

#[test]
fn a_looping_chain_completes_with_nothing() {
    let file = TempFile::new(&pattern(4 * 512));
    let mut d = driver(&file);
    let hdr = header(&mut d, VIRTIO_BLK_T_IN, 0);
    let buf = d.alloc(512, 0);
    d.write_desc(0, 0, hdr, 16, VIRTQ_DESC_F_NEXT, 1);
    d.write_desc(0, 1, buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    d.publish(0, 0);
    d.notify(0);
    assert_eq!(d.used(0), vec![(0, 0)]);
    // A next index outside the table is cut off the same way.
    d.write_desc(0, 1, buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 999);
    d.publish(0, 0);
    d.notify(0);
    assert_eq!(d.used(0), vec![(0, 0)]);
}

#[test]
fn an_avail_index_that_jumps_stops_the_device() {
    let file = TempFile::new(&pattern(4 * 512));
    let mut d = driver(&file);
    d.set_avail_idx(0, 1000);
    d.notify(0);
    assert!(d.used(0).is_empty());
    assert_ne!(d.interrupt.status() & 2, 0, "config-change interrupt");
    let buf = d.alloc(512, 0);
    submit(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 512, true)]);
    d.notify(0);
    assert!(d.used(0).is_empty(), "not served until reset");
}

#[test]
fn unknown_request_types_are_unsupp() {
    let file = TempFile::new(&pattern(512));
    let mut d = driver(&file);
    for kind in [2, 3, 0xdead_beef, virtio_bindings::virtio_blk::VIRTIO_BLK_T_SECURE_ERASE] {
        assert_eq!(run(&mut d, kind, 0, &[]), (UNSUPP, 1), "type {kind}");
    }
}
