//! virtio-blk on packed rings (`packed=on`, VIRTIO_F_RING_PACKED acked): requests of
//! three and four descriptors that wrap around a 4-slot ring for several laps, a restore
//! mid-lap, and io_uring completions that come back in any order, each given back in
//! the next used slot with its buffer id, the ring advanced by its own chain's length.
//! (The split-ring tests are in `tests.rs` and `tests/`.)

use super::*;
use crate::virtio::queue::VIRTIO_F_RING_PACKED;
use crate::virtio::test_driver::TestDriver;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use virtio_bindings::virtio_blk::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};

const OK: u8 = VIRTIO_BLK_S_OK as u8;
const SECTORS: usize = 64;

/// An image file of zeros in the temp directory, removed when dropped.
struct Image(PathBuf);

impl Image {
    fn new() -> Image {
        Image::with(&vec![0u8; SECTORS * 512])
    }

    fn with(contents: &[u8]) -> Image {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("microvm-blk-packed-{}-{n}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Image(path)
    }

    /// A copy as the snapshot's clone gets it (the running drive holds the original's lock).
    fn copy(&self) -> Image {
        Image::with(&std::fs::read(&self.0).unwrap())
    }

    fn sector(&self, n: usize) -> Vec<u8> {
        std::fs::read(&self.0).unwrap()[n * 512..(n + 1) * 512].to_vec()
    }

    fn block(&self, engine: Engine) -> Block {
        Block::new(BlockOptions {
            id: "disk0".into(),
            path: self.0.clone(),
            read_only: false,
            cache: CacheMode::Writeback,
            limits: DriveLimits::default(),
            engine,
            image: Default::default(),
            num_queues: 1,
        })
        .unwrap()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn packed_driver(block: Block, size: u16) -> TestDriver {
    let (mut d, _) = TestDriver::new(block);
    assert_eq!(d.device_features() & VIRTIO_F_RING_PACKED, 0, "packed=off (the default) does not offer it");
    d.transport.offer_packed_ring(true);
    d.activate(VIRTIO_F_RING_PACKED, size);
    d
}

/// A sector that tells `seed`'s writes apart.
fn fill(seed: u8) -> Vec<u8> {
    (0..512u32).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// Posts a request as buffer `id`: the header, `data` (addr, len, device-writable), the
/// status byte. Returns the status byte's address.
fn post(d: &mut TestDriver, id: u16, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> u64 {
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&kind.to_le_bytes());
    raw[8..].copy_from_slice(&sector.to_le_bytes());
    let hdr = d.alloc_with(&raw);
    let status = d.alloc(1, 0xee);
    let mut chain = vec![(hdr, 16, false)];
    chain.extend_from_slice(data);
    chain.push((status, 1, true));
    d.post_packed(0, &chain, id);
    status
}

/// A write of `bytes` (split in two descriptors when `split`) at `sector`, as buffer `id`.
fn post_write(d: &mut TestDriver, id: u16, sector: u64, bytes: &[u8], split: bool) -> u64 {
    let half = bytes.len() / 2;
    if split {
        let (a, b) = (d.alloc_with(&bytes[..half]), d.alloc_with(&bytes[half..]));
        post(d, id, VIRTIO_BLK_T_OUT, sector, &[(a, half as u32, false), (b, (bytes.len() - half) as u32, false)])
    } else {
        let a = d.alloc_with(bytes);
        post(d, id, VIRTIO_BLK_T_OUT, sector, &[(a, bytes.len() as u32, false)])
    }
}

/// One request at a time, synchronously served: its one used entry.
fn complete(d: &mut TestDriver, id: u16, status: u64) -> u32 {
    d.notify(0);
    let used = d.packed_used(0);
    assert_eq!(used.len(), 1, "one completion: {used:?}");
    assert_eq!(used[0].0, id);
    assert_eq!(d.read_bytes(status, 1)[0], OK);
    used[0].1
}

fn read_back(d: &mut TestDriver, id: u16, sector: u64) -> Vec<u8> {
    let out = d.alloc(512, 0);
    let status = post(d, id, VIRTIO_BLK_T_IN, sector, &[(out, 512, true)]);
    assert_eq!(complete(d, id, status), 513, "512 bytes and the status byte");
    d.read_bytes(out, 512)
}

/// Writes of four descriptors and reads of three on a 4-slot ring: every request after
/// the first starts mid-ring and wraps, over seven laps; then a snapshot taken mid-lap and
/// restored goes on in the same slots.
#[test]
fn requests_wrap_a_small_packed_ring_and_go_on_after_a_restore() {
    let image = Image::new();
    let mut d = packed_driver(image.block(Engine::Sync), 4);
    for round in 0..4u8 {
        let id = u16::from(round % 4);
        let status = post_write(&mut d, id, u64::from(round), &fill(round), true);
        assert_eq!(complete(&mut d, id, status), 1, "a write gives back only the status byte");
        assert_eq!(read_back(&mut d, 3 - id, u64::from(round)), fill(round), "round {round}");
        assert!(d.interrupted());
    }
    assert_eq!(image.sector(3), fill(3), "the writes reached the file");
    // 4 rounds of 4 + 3 slots are seven laps: one more write of three descriptors puts
    // the snapshot mid-lap.
    let status = post_write(&mut d, 2, 10, &fill(10), false);
    assert_eq!(complete(&mut d, 2, status), 1);
    let saved = d.save();
    let clone = image.copy();
    let (mut r, _) = d.restored(clone.block(Engine::Sync), saved).unwrap();
    let status = post_write(&mut r, 1, 11, &fill(11), true);
    assert_eq!(complete(&mut r, 1, status), 1);
    assert_eq!(read_back(&mut r, 0, 10), fill(10), "written before the snapshot");
    assert_eq!(read_back(&mut r, 3, 11), fill(11), "written after the restore");
    let status = post(&mut r, 2, VIRTIO_BLK_T_FLUSH, 0, &[]);
    assert_eq!(complete(&mut r, 2, status), 1);
    assert_eq!(clone.sector(11), fill(11));
}

/// Runs the event loop until `n` used entries came back (io_uring completes from the
/// kernel, maybe after the loop first goes idle).
fn packed_used_n(d: &mut TestDriver, n: usize) -> Vec<(u16, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut used = Vec::new();
    while used.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} requests completed: {used:?}", used.len());
        d.run_turn();
        used.extend(d.packed_used(0));
    }
    used
}

/// io_uring: batches of writes (four descriptors) and reads (three) in flight together on
/// a 16-slot ring, completed in whatever order the kernel finishes them. Each id comes
/// back once with its length, and the ring stays in step across the wrap: if the device
/// advanced its used position by another chain's length, the driver would read a stale
/// slot and miss or repeat an entry.
#[test]
fn io_uring_completions_in_any_order_keep_a_packed_ring_in_step() {
    let image = Image::new();
    let mut d = packed_driver(image.block(Engine::IoUring), 16);
    for batch in 0..4u8 {
        // Two writes and two reads (of sectors written by the batch before): 14 slots.
        let mut expect = HashMap::new();
        let mut reads = Vec::new();
        for k in 0..2u8 {
            let id = u16::from(batch % 2 * 4 + k);
            let seed = batch * 2 + k;
            let status = post_write(&mut d, id, u64::from(seed), &fill(seed), true);
            expect.insert(id, (status, 1));
        }
        for k in 0..2u8.min(batch * 2) {
            let id = u16::from(batch % 2 * 4 + 2 + k);
            let sector = batch * 2 - 2 + k;
            let out = d.alloc(512, 0);
            let status = post(&mut d, id, VIRTIO_BLK_T_IN, u64::from(sector), &[(out, 512, true)]);
            expect.insert(id, (status, 513));
            reads.push((out, sector));
        }
        d.kick(0);
        let used = packed_used_n(&mut d, expect.len());
        assert_eq!(used.len(), expect.len(), "batch {batch}: {used:?}");
        for (id, len) in used {
            let (status, want) = expect.remove(&id).unwrap_or_else(|| panic!("batch {batch}: id {id} unexpected"));
            assert_eq!((len, d.read_bytes(status, 1)[0]), (want, OK), "batch {batch}, id {id}");
        }
        for (out, sector) in reads {
            assert_eq!(d.read_bytes(out, 512), fill(sector), "batch {batch}, sector {sector}");
        }
    }
    for seed in 0..8u8 {
        assert_eq!(image.sector(usize::from(seed)), fill(seed), "sector {seed}");
    }
}
