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
        TempFile::new_in(&std::env::temp_dir(), contents)
    }

    fn new_in(dir: &Path, contents: &[u8]) -> TempFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("microvm-blk-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
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
        num_queues: 1,
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
    submit_on(d, 0, kind, sector, data)
}

/// [`submit`] on queue `queue`.
fn submit_on(d: &mut TestDriver, queue: usize, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u16, u64) {
    let hdr = header(d, kind, sector);
    let status = d.alloc(1, 0xee);
    let mut chain = vec![(hdr, 16, false)];
    chain.extend_from_slice(data);
    chain.push((status, 1, true));
    (d.add_chain(queue, &chain), status)
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

#[path = "tests/batching.rs"]
mod batching;
#[path = "tests/bench.rs"]
mod bench;
#[path = "tests/engine.rs"]
mod engine_uring;
#[path = "tests/features.rs"]
mod features;
#[path = "tests/metrics.rs"]
mod metrics_counted;
#[path = "tests/multiqueue.rs"]
mod multiqueue;
#[path = "tests/pool.rs"]
mod pool;
#[path = "tests/qcow2.rs"]
mod qcow2;
#[path = "tests/requests.rs"]
mod requests;
#[path = "tests/state.rs"]
mod state;
#[path = "tests/throttle.rs"]
mod throttle;
#[path = "tests/tracking.rs"]
mod tracking;
