//! virtio-blk through the real MMIO transport, on temporary image files.

use super::*;
use crate::bus::BusDevice;
use crate::virtio::test_driver::{TestDriver, MEM_SIZE, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH,
    VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
    VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
};
use vm_memory::{Bytes, GuestAddress};

const OK: u8 = VIRTIO_BLK_S_OK as u8;
const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;
const UNSUPP: u8 = VIRTIO_BLK_S_UNSUPP as u8;
const VRING_DESC_F_INDIRECT: u16 = 4;

/// A file in the temp directory, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("microvm-blk-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::File::open(&path).unwrap().sync_all().unwrap();
        TempFile { path }
    }

    fn contents(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bytes that differ from sector to sector and within each sector.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i / 512) * 31 + i % 251 + 1) as u8).collect()
}

fn options(path: &Path, read_only: bool, cache: CacheMode) -> BlockOptions {
    BlockOptions {
        id: "disk0".into(),
        path: path.to_path_buf(),
        read_only,
        cache,
        limits: DriveLimits::default(),
        engine: Engine::Sync,
        image: Default::default(),
    }
}

fn driver_for(opts: BlockOptions, features: u64) -> TestDriver {
    let (mut d, _) = TestDriver::new(Block::new(opts).unwrap());
    d.activate(features, 16);
    d
}

fn driver(file: &TempFile) -> TestDriver {
    driver_for(options(&file.path, false, CacheMode::Writeback), 0)
}

fn header(d: &mut TestDriver, kind: u32, sector: u64) -> u64 {
    let addr = d.alloc(16, 0);
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&kind.to_le_bytes());
    raw[8..].copy_from_slice(&sector.to_le_bytes());
    d.mem.write_slice(&raw, GuestAddress(addr)).unwrap();
    addr
}

/// Posts header + `data` + a writable status byte; returns the head and the
/// status byte's address.
fn submit(d: &mut TestDriver, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u16, u64) {
    let hdr = header(d, kind, sector);
    let status = d.alloc(1, 0xee);
    let mut chain = vec![(hdr, 16, false)];
    chain.extend_from_slice(data);
    chain.push((status, 1, true));
    (d.add_chain(0, &chain), status)
}

/// Runs one request; returns its status byte and used length.
fn run(d: &mut TestDriver, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u8, u32) {
    let (head, status) = submit(d, kind, sector, data);
    d.notify(0);
    let used = d.used(0);
    assert_eq!(used.len(), 1, "one completion");
    assert_eq!(used[0].0, u32::from(head));
    (d.read_bytes(status, 1)[0], used[0].1)
}

fn guest_buffer(d: &mut TestDriver, bytes: &[u8]) -> u64 {
    let addr = d.alloc(bytes.len() as u32, 0);
    d.mem.write_slice(bytes, GuestAddress(addr)).unwrap();
    addr
}

/// A buffer whose guest (and so host) address is `align`-aligned, plus `misalign`.
fn aligned_buffer(d: &mut TestDriver, len: u32, align: u64, misalign: u64) -> u64 {
    let here = d.alloc(0, 0);
    let pad = (align - here % align) % align + misalign;
    d.alloc(pad as u32, 0);
    d.alloc(len, 0)
}

fn segments(d: &mut TestDriver, segs: &[(u64, u32, u32)]) -> (u64, u32) {
    let mut raw = Vec::new();
    for &(sector, n, flags) in segs {
        raw.extend_from_slice(&sector.to_le_bytes());
        raw.extend_from_slice(&n.to_le_bytes());
        raw.extend_from_slice(&flags.to_le_bytes());
    }
    (guest_buffer(d, &raw), raw.len() as u32)
}

fn config(d: &mut TestDriver, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0xaau8; len];
    d.transport.read(0x100 + offset, &mut buf);
    buf
}

fn config_u32(d: &mut TestDriver, offset: usize) -> u32 {
    u32::from_le_bytes(config(d, offset as u64, 4).try_into().unwrap())
}

fn has(features: u64, bit: u32) -> bool {
    features & (1 << bit) != 0
}

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

#[path = "tests/bench.rs"]
mod bench;
#[path = "tests/engine.rs"]
mod engine_uring;
#[path = "tests/metrics.rs"]
mod metrics_counted;
#[path = "tests/qcow2.rs"]
mod qcow2;
#[path = "tests/state.rs"]
mod state;
#[path = "tests/throttle.rs"]
mod throttle;
#[path = "tests/tracking.rs"]
mod tracking;
