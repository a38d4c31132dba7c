//! Discard, write-zeroes, interrupts, indirect descriptors, O_DIRECT, cache modes, what
//! `Block::new` refuses, and reset.

use super::*;

#[test]
fn discard_punches_a_hole() {
    let data = pattern(64 << 10);
    let file = TempFile::new(&data);
    let (mut d, dev) = TestDriver::new(Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap());
    if !has(d.device_features(), VIRTIO_BLK_F_DISCARD) {
        eprintln!("skipped: the temp directory's file system cannot punch holes");
        return;
    }
    type C = virtio_blk_config;
    assert_eq!(config_u32(&mut d, offset_of!(C, max_discard_seg)), MAX_DISCARD_SEG);
    assert_eq!(config_u32(&mut d, offset_of!(C, max_discard_sectors)), MAX_DISCARD_SECTORS);
    assert_ne!(config_u32(&mut d, offset_of!(C, discard_sector_alignment)), 0);
    assert_eq!(config(&mut d, offset_of!(C, write_zeroes_may_unmap) as u64, 1), [1]);
    d.activate(0, 16);
    // Two segments: 8 KiB..24 KiB and 32 KiB..40 KiB.
    let (segs, len) = segments(&mut d, &[(16, 32, 0), (64, 16, 0)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_DISCARD, 0, &[(segs, len, false)]), (OK, 1));
    drop(dev);
    let mut expect = data.clone();
    expect[8 << 10..24 << 10].fill(0);
    expect[32 << 10..40 << 10].fill(0);
    assert_eq!(file.contents(), expect);
    let f = std::fs::File::open(&file.path).unwrap();
    // SAFETY: lseek on an fd we own.
    let hole = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_HOLE) };
    assert_eq!(hole, 8 << 10, "first hole where the discard was");
    assert_eq!(std::fs::metadata(&file.path).unwrap().len(), 64 << 10, "size kept");
}

#[test]
fn discard_and_write_zeroes_check_their_segments() {
    let data = pattern(16 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let discard = d.device_features() & (1 << VIRTIO_BLK_F_DISCARD) != 0;
    // UNMAP is for write-zeroes only; unknown flags are UNSUPP everywhere.
    let (s, n) = segments(&mut d, &[(0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)]);
    if discard {
        assert_eq!(run(&mut d, VIRTIO_BLK_T_DISCARD, 0, &[(s, n, false)]).0, UNSUPP);
    }
    let (s, n) = segments(&mut d, &[(0, 1, 2)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(s, n, false)]).0, UNSUPP);
    // No segment, a partial one, too many, too long.
    let (s, _) = segments(&mut d, &[(0, 1, 0); 40]);
    for len in [0, 15, 40 * 16] {
        assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(s, len, false)]).0, IOERR, "{len} bytes");
    }
    let (s, n) = segments(&mut d, &[(0, MAX_WRITE_ZEROES_SECTORS + 1, 0)]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(s, n, false)]).0, IOERR);
    assert_eq!(file.contents(), data);
}

#[test]
fn write_zeroes_zeroes_the_range() {
    for unmap in [0, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP] {
        let data = pattern(64 << 10);
        let file = TempFile::new(&data);
        let mut d = driver(&file);
        // 512 bytes at 1 KiB, then 12 KiB at 20 KiB.
        let (segs, len) = segments(&mut d, &[(2, 1, unmap), (40, 24, unmap)]);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_WRITE_ZEROES, 0, &[(segs, len, false)]), (OK, 1));
        let mut expect = data.clone();
        expect[1024..1536].fill(0);
        expect[20 << 10..32 << 10].fill(0);
        assert_eq!(file.contents(), expect, "unmap flag {unmap}");
    }
}

#[test]
fn write_zeroes_falls_back_to_writing_zeroes() {
    let data = pattern(16 << 10);
    let file = TempFile::new(&data);
    let mut block = Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap();
    // As on a file system with neither PUNCH_HOLE nor ZERO_RANGE.
    block.worker.disk.punch_hole = false;
    block.worker.disk.zero_range = false;
    block.worker.disk.write_zeroes(4096, 8192, true).unwrap();
    let mut expect = data.clone();
    expect[4096..12288].fill(0);
    assert_eq!(file.contents(), expect);
}

#[test]
fn a_batch_of_requests_raises_one_interrupt() {
    let data = pattern(8 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    let bufs: Vec<u64> = (0..3).map(|_| d.alloc(512, 0)).collect();
    for (i, &b) in bufs.iter().enumerate() {
        submit(&mut d, VIRTIO_BLK_T_IN, i as u64, &[(b, 512, true)]);
    }
    d.notify(0);
    assert_eq!(d.used(0).len(), 3);
    assert_eq!(d.irq.read().unwrap(), 1, "one interrupt for the batch");
    for (i, &b) in bufs.iter().enumerate() {
        assert_eq!(d.read_bytes(b, 512), &data[i * 512..(i + 1) * 512]);
    }
}

#[test]
fn event_idx_holds_interrupts_until_the_used_event() {
    let file = TempFile::new(&pattern(8 * 512));
    let mut d = driver_for(options(&file.path, false, CacheMode::Writeback), 1 << VIRTIO_RING_F_EVENT_IDX);
    d.set_used_event(0, 2);
    let buf = d.alloc(512, 0);
    for round in 0..3 {
        run(&mut d, VIRTIO_BLK_T_IN, 0, &[(buf, 512, true)]);
        // Interrupt when the used index passes 2, i.e. on the third completion.
        assert_eq!(d.interrupted(), round == 2, "completion {}", round + 1);
    }
}

#[test]
fn indirect_descriptors_are_followed() {
    let data = pattern(4 * 512);
    let file = TempFile::new(&data);
    let mut d = driver_for(options(&file.path, false, CacheMode::Writeback), 1 << VIRTIO_RING_F_INDIRECT_DESC);
    let hdr = header(&mut d, VIRTIO_BLK_T_IN, 3);
    let buf = d.alloc(512, 0);
    let status = d.alloc(1, 0xee);
    let descs = [
        (hdr, 16u32, VIRTQ_DESC_F_NEXT),
        (buf, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT),
        (status, 1, VIRTQ_DESC_F_WRITE),
    ];
    let mut table = Vec::new();
    for (i, (addr, len, flags)) in descs.into_iter().enumerate() {
        table.extend_from_slice(&addr.to_le_bytes());
        table.extend_from_slice(&len.to_le_bytes());
        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&(i as u16 + 1).to_le_bytes());
    }
    let table_addr = guest_buffer(&mut d, &table);
    d.write_desc(0, 0, table_addr, table.len() as u32, VRING_DESC_F_INDIRECT, 0);
    d.publish(0, 0);
    d.notify(0);
    assert_eq!(d.used(0), vec![(0, 513)]);
    assert_eq!(d.read_bytes(status, 1), [OK]);
    assert_eq!(d.read_bytes(buf, 512), &data[1536..2048]);
}

#[test]
fn o_direct_serves_aligned_and_misaligned_buffers() {
    for cache in [CacheMode::None, CacheMode::Directsync] {
        let data = pattern(64 << 10);
        let file = TempFile::new(&data);
        let block = match Block::new(options(&file.path, false, cache)) {
            Err(BlockError::DirectUnsupported { .. }) => {
                eprintln!("skipped: no O_DIRECT in the temp directory");
                return;
            }
            other => other.unwrap(),
        };
        assert!(block.worker.disk.is_direct());
        let (mut d, _) = TestDriver::new(block);
        d.activate(0, 16);
        let aligned = aligned_buffer(&mut d, 8192, 4096, 0);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 8, &[(aligned, 8192, true)]).0, OK);
        assert_eq!(d.read_bytes(aligned, 8192), &data[4096..12288]);
        // A buffer O_DIRECT cannot take goes through the page cache.
        let odd = aligned_buffer(&mut d, 1024, 4096, 16);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 1, &[(odd, 1024, true)]).0, OK);
        assert_eq!(d.read_bytes(odd, 1024), &data[512..1536]);

        let mut expect = data.clone();
        d.mem.write_slice(&[0xa1; 8192], GuestAddress(aligned)).unwrap();
        assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 16, &[(aligned, 8192, false)]).0, OK);
        expect[8192..16384].fill(0xa1);
        d.mem.write_slice(&[0xb2; 1024], GuestAddress(odd)).unwrap();
        assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 3, &[(odd, 1024, false)]).0, OK);
        expect[1536..2560].fill(0xb2);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK);
        assert_eq!(file.contents(), expect, "{cache:?}");
        // And the misaligned write is visible to aligned O_DIRECT reads.
        assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 0, &[(aligned, 4096, true)]).0, OK);
        assert_eq!(d.read_bytes(aligned, 4096), &expect[..4096]);
    }
}

#[test]
fn every_cache_mode_reads_and_writes() {
    for cache in [CacheMode::Writeback, CacheMode::Writethrough, CacheMode::Unsafe] {
        let file = TempFile::new(&pattern(4 * 512));
        let mut d = driver_for(options(&file.path, false, cache), 0);
        let buf = guest_buffer(&mut d, &[0x66; 1024]);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 2, &[(buf, 1024, false)]).0, OK);
        let back = d.alloc(1024, 0);
        assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 2, &[(back, 1024, true)]).0, OK);
        assert_eq!(d.read_bytes(back, 1024), [0x66; 1024]);
        assert_eq!(file.contents()[1024..], [0x66; 1024], "{cache:?}");
    }
}

#[test]
fn a_size_not_a_multiple_of_512_is_rounded_down() {
    let data = pattern(1000);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    assert_eq!(config(&mut d, 0, 8), 1u64.to_le_bytes());
    let buf = guest_buffer(&mut d, &[1; 512]);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_OUT, 1, &[(buf, 512, false)]).0, IOERR);
    assert_eq!(file.contents(), data, "the tail is kept, the size too");
}

#[test]
fn new_refuses_what_is_not_a_usable_disk_with_one_line_naming_it() {
    let check = |err: BlockError, path: &Path| {
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        msg
    };
    let missing = std::env::temp_dir().join("microvm-blk-test-does-not-exist");
    let err = Block::new(options(&missing, false, CacheMode::Writeback)).err().unwrap();
    assert!(matches!(err, BlockError::Missing { .. }), "{err:?}");
    check(err, &missing);

    let dir = std::env::temp_dir();
    let err = Block::new(options(&dir, true, CacheMode::Writeback)).err().unwrap();
    assert!(matches!(err, BlockError::NotADisk { .. }), "{err:?}");
    check(err, &dir);

    // A FIFO is refused without blocking in open().
    let fifo = std::env::temp_dir().join(format!("microvm-blk-test-fifo-{}", std::process::id()));
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = Block::new(options(&fifo, false, CacheMode::Writeback)).err();
    let _ = std::fs::remove_file(&fifo);
    assert!(matches!(err, Some(BlockError::NotADisk { .. })), "{err:?}");

    // Permissions: root reads everything, so check the mapping as well.
    let file = TempFile::new(&pattern(512));
    let mut perms = std::fs::metadata(&file.path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&file.path, perms).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let err = Block::new(options(&file.path, true, CacheMode::Writeback)).err().unwrap();
        assert!(matches!(err, BlockError::PermissionDenied { .. }), "{err:?}");
        check(err, &file.path);
    }
    let err = disk::open_error(&file.path, false, std::io::Error::from_raw_os_error(libc::EACCES));
    let msg = check(err, &file.path);
    assert!(msg.contains("permission denied"), "{msg}");
    let err = BlockError::DirectUnsupported { path: file.path.clone() };
    assert!(check(err, &file.path).contains("O_DIRECT"));
}

#[test]
fn a_second_writer_is_refused() {
    let file = TempFile::new(&pattern(512));
    let first = Block::new(options(&file.path, false, CacheMode::Writeback)).unwrap();
    let err = Block::new(options(&file.path, false, CacheMode::Writeback)).err().unwrap();
    assert!(matches!(err, BlockError::Locked { .. }), "{err:?}");
    assert!(Block::new(options(&file.path, true, CacheMode::Writeback)).is_err());
    drop(first);
    let a = Block::new(options(&file.path, true, CacheMode::Writeback)).unwrap();
    let b = Block::new(options(&file.path, true, CacheMode::Writeback)).unwrap();
    assert!(Block::new(options(&file.path, false, CacheMode::Writeback)).is_err());
    drop((a, b));
}

#[test]
fn reset_and_reactivation_serve_again() {
    let data = pattern(4 * 512);
    let file = TempFile::new(&data);
    let mut d = driver(&file);
    d.set_avail_idx(0, 500);
    d.notify(0);
    assert!(d.used(0).is_empty(), "broken");
    d.write_reg(0x70, 0);
    assert_eq!(d.status(), 0);
    // The driver sets its rings up afresh.
    d.negotiate(0);
    d.setup_queue(0, 16);
    d.set_avail_idx(0, 0);
    d.driver_ok();
    let buf = d.alloc(512, 0);
    assert_eq!(run(&mut d, VIRTIO_BLK_T_IN, 2, &[(buf, 512, true)]).0, OK);
    assert_eq!(d.read_bytes(buf, 512), &data[1024..1536]);
}
