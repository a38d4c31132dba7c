//! virtio-blk (virtio 1.x §5.2) on a raw image (a regular file or a host
//! block device) or a qcow2 image (`image.rs`).
//!
//! One request queue, or `num-queues=N` of them (VIRTIO_BLK_F_MQ), all served
//! on the device's event loop thread (the shared `virtio` thread or an
//! iothread) through one of three engines (`engine.rs`): `sync`, where
//! preadv/pwritev go straight between the file and guest memory within the
//! turn; `io_uring`, where reads, writes and flushes are queued on a ring (one
//! io_uring_enter per batch) and completed when its eventfd fires; `threads`
//! (`pool.rs`), where they are handed to a pool of worker threads, completed
//! the same way. None copies data or allocates per request once the scratch
//! vectors have grown. A request completes on the queue it came from;
//! completions of one batch are signalled with one interrupt, subject to the
//! driver's suppression (EVENT_IDX or the used-ring flag) on each queue.
//!
//! Decisions:
//! - The guest sees 512-byte logical blocks whatever the host's alignment;
//!   with cache=none/directsync a request O_DIRECT cannot take (misaligned
//!   buffer or length) goes through the page cache instead.
//! - An image whose size is not a multiple of 512 is accepted (as QEMU
//!   does); its capacity is rounded down, with a warning, and the file size
//!   is never changed.
//! - F_FLUSH is offered only for cache modes with a volatile cache
//!   (writeback, none, unsafe): with writethrough and directsync every write
//!   is durable on completion (O_DSYNC), and the guest sees a write-through
//!   disk, as under QEMU (which says it with CONFIG_WCE and wce=0). A FLUSH
//!   request is served in every mode anyway.
//! - The image is flock()ed, exclusively for read-write, shared for
//!   read-only, so two VMs cannot both write it.
//! - qcow2 images and `snapshot=on` overlays are served through their format
//!   layer on the device thread, one request at a time (the `sync` engine
//!   whatever `aio=` says: the format layer has no descriptor a ring could
//!   use), with the same cache modes.
//! - A chain the device cannot answer (cut short, no writable status byte
//!   at its end) is completed with used length 0; anything else the guest
//!   gets wrong ends with VIRTIO_BLK_S_IOERR. Each kind of guest error is
//!   logged once per device.

mod disk;
mod engine;
mod error;
mod image;
#[cfg(test)]
mod packed_tests;
mod pool;
pub mod qemu_throttle;
mod request;
#[cfg(test)]
mod tests;
mod throttle;
mod turn;

use super::{
    come_back_later, read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VirtioState,
    CHAINS_PER_TURN, VIRTIO_F_VERSION_1,
};
use crate::rate_limiter::Waker;
use crate::state::StateError;
use crate::virtio::queue::Virtqueue;
use disk::Disk;
pub use engine::Engine;
use engine::Uring;
pub use error::BlockError;
use error::QueueFault;
pub use image::{ImageError, ImageFormat, ImageOptions};
use pool::Pool;
pub use pool::{PoolWorker, POOL_WORKERS};
use request::{GuestError, Worker, ID_BYTES};
use serde::{Deserialize, Serialize};
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
pub use throttle::DriveLimits;
use throttle::Throttle;
use turn::Reap;
use virtio_bindings::virtio_blk::{
    virtio_blk_config, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_MQ,
    VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_WRITE_ZEROES,
};
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

pub(crate) const QUEUE_SIZE: u16 = 256;
/// Request queues at most (`num-queues=`): QEMU allows up to its 1024 virtqueues, but
/// Linux's driver uses no more queues than CPUs and each costs an ioeventfd, so more
/// than 16 only costs host resources on a microvm.
pub const MAX_QUEUES: u16 = 16;
/// Data segments per request the driver may use: the queue less the header
/// and status descriptors (what the spec recommends without indirect
/// descriptors; with them, longer chains are served too).
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// Largest discard / write-zeroes segment, in sectors: QEMU's limit (2 GiB).
pub(crate) const MAX_DISCARD_SECTORS: u32 = (i32::MAX as u32) >> 9;
pub(crate) const MAX_WRITE_ZEROES_SECTORS: u32 = (i32::MAX as u32) >> 9;
/// Segments per discard / write-zeroes request.
pub(crate) const MAX_DISCARD_SEG: u32 = 32;
pub(crate) const MAX_WRITE_ZEROES_SEG: u32 = 32;

/// QEMU's `cache=` modes, as they apply to a raw file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Host page cache; guest flushes become fdatasync. QEMU's default.
    #[default]
    Writeback,
    /// Host page cache, every write durable before completion (O_DSYNC).
    Writethrough,
    /// O_DIRECT, guest flushes become fdatasync.
    None,
    /// O_DIRECT and O_DSYNC.
    Directsync,
    /// Host page cache, flushes ignored: fastest, loses data on host crash.
    Unsafe,
}

impl CacheMode {
    /// Whether completed writes may sit in a volatile cache (F_FLUSH offered).
    fn has_volatile_cache(self) -> bool {
        matches!(self, CacheMode::Writeback | CacheMode::None | CacheMode::Unsafe)
    }
}

/// What the VMM gives a block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOptions {
    /// The drive id; the guest reads it (first 20 bytes) with GET_ID, e.g. as
    /// /sys/block/vda/serial.
    pub id: String,
    pub path: PathBuf,
    pub read_only: bool,
    pub cache: CacheMode,
    /// Rate limits; the default limits nothing.
    pub limits: DriveLimits,
    /// How requests are submitted.
    pub engine: Engine,
    /// Format, `snapshot=on`, discard.
    pub image: ImageOptions,
    /// Request queues, 1 to [`MAX_QUEUES`] (VIRTIO_BLK_F_MQ offered for more than one).
    pub num_queues: u16,
}

/// What a snapshot keeps of a disk beyond its queue: its capacity and whether it is
/// read-only, so that a restore onto an image of another size (the guest's partition
/// table and file systems would no longer match the disk) or mode is refused. The data is the image file's; the snapshot
/// does not copy it.
///
/// No request is in flight at a snapshot: the sync engine serves each one within one
/// turn of the device thread, and the VMM saves only with that thread parked between
/// turns; with io_uring or the thread pool, `save` first waits for what the engine
/// holds and completes it into the used ring of the queue it came from (as the device
/// thread would have). A request the guest posted but the device has not taken yet is
/// in an avail ring, in guest memory, and is served after the restore. Every queue's
/// position is the transport's to save, so a multiqueue drive's state is the same
/// (the transport refuses a restore with another queue count).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BlockState {
    /// In 512-byte sectors.
    pub capacity: u64,
    /// The guest was told the disk is read-only (VIRTIO_BLK_F_RO), or that it is not.
    pub read_only: bool,
}

pub struct Block {
    activation: Activation,
    worker: Worker,
    /// One entry per request queue.
    queue_sizes: Vec<u16>,
    /// `aio=threads`: the pool's workers until the VMM takes them to start them.
    pool_workers: Vec<PoolWorker>,
    features: u64,
    config: Vec<u8>,
    /// Set once the device stopped serving its queue (needs a reset).
    broken: bool,
    /// The rate limits' buckets; `None` when unlimited, so the data path then costs one
    /// branch per chain.
    throttle: Option<Box<Throttle>>,
    /// Wakes the device when a rate limit lets the next request through. Made even
    /// for an unlimited drive, so that limits set at run time need no new descriptor
    /// (nor a timerfd_create on the sandboxed device thread).
    waker: Waker,
    /// The engine was full when a queue still had requests: every queue is served
    /// again after the next completions.
    starved: bool,
    /// `snapshot=on`: the guest's writes live in a temporary overlay no restore could
    /// find, so the VM cannot be saved.
    overlay: bool,
}

impl Block {
    /// Opens the image (read-only if asked, O_DIRECT / O_DSYNC as the cache
    /// mode says), locks it and probes discard support.
    pub fn new(cfg: BlockOptions) -> Result<Block, BlockError> {
        if !(1..=MAX_QUEUES).contains(&cfg.num_queues) {
            return Err(BlockError::NumQueues { path: cfg.path.clone(), n: cfg.num_queues });
        }
        let disk = Disk::open(&cfg)?;
        let activation = Activation::new().map_err(|source| BlockError::Event { path: cfg.path.clone(), source })?;
        let waker = Waker::new();
        let throttle = Throttle::new(&cfg.limits, waker.now());
        let mut id = [0u8; ID_BYTES];
        let n = cfg.id.len().min(ID_BYTES);
        if cfg.id.len() > ID_BYTES {
            log::warn!("virtio-blk: drive id {:?} is longer than {ID_BYTES} bytes; the guest sees it cut", cfg.id);
        }
        id[..n].copy_from_slice(&cfg.id.as_bytes()[..n]);

        let mut features = VIRTIO_F_VERSION_1
            | 1 << VIRTIO_RING_F_EVENT_IDX
            | 1 << VIRTIO_RING_F_INDIRECT_DESC
            | 1 << VIRTIO_BLK_F_SEG_MAX
            | 1 << VIRTIO_BLK_F_BLK_SIZE;
        if cfg.cache.has_volatile_cache() {
            features |= 1 << VIRTIO_BLK_F_FLUSH;
        }
        // As QEMU: one queue is the plain device, whose config num_queues says 1 anyway.
        if cfg.num_queues > 1 {
            features |= 1 << VIRTIO_BLK_F_MQ;
        }
        let discard = !disk.read_only && disk.punch_hole;
        // Always possible on a writable disk: emulated by writing zeroes if
        // the file system cannot fallocate them.
        let write_zeroes = !disk.read_only;
        if disk.read_only {
            features |= 1 << VIRTIO_BLK_F_RO;
        }
        if discard {
            features |= 1 << VIRTIO_BLK_F_DISCARD;
        }
        if write_zeroes {
            features |= 1 << VIRTIO_BLK_F_WRITE_ZEROES;
        }
        let config = config_space(&disk, discard, write_zeroes, cfg.num_queues);
        let formatted = disk.formatted();
        let mut worker = Worker::new(disk, id, cfg.id);
        let path = || cfg.path.clone();
        let mut pool_workers = Vec::new();
        match cfg.engine {
            Engine::IoUring | Engine::Threads if formatted => log::warn!(
                "virtio-blk {}: aio={} does not apply to format=qcow2 or snapshot=on; serving it synchronously",
                worker.name,
                if cfg.engine == Engine::IoUring { "io_uring" } else { "threads" }
            ),
            Engine::IoUring => {
                let ring = Uring::new().map_err(|source| BlockError::Uring { path: path(), source })?;
                worker.engine = Some(Box::new(ring));
            }
            Engine::Threads => {
                let mut pool = Pool::new().map_err(|source| BlockError::Pool { path: path(), source })?;
                pool_workers = pool.take_workers();
                worker.engine = Some(Box::new(pool));
            }
            Engine::Sync => {}
        }
        worker.discard = discard;
        worker.write_zeroes = write_zeroes;
        let overlay = cfg.image.snapshot;
        let queue_sizes = vec![QUEUE_SIZE; usize::from(cfg.num_queues)];
        let starved = false;
        Ok(Block {
            activation,
            worker,
            queue_sizes,
            pool_workers,
            features,
            config,
            broken: false,
            throttle,
            waker,
            starved,
            overlay,
        })
    }

    /// The `aio=threads` pool's workers, for the VMM to start each on a thread of its
    /// own (kind `aio-worker`); none for the other engines, or once taken.
    pub fn take_pool_workers(&mut self) -> Vec<PoolWorker> {
        std::mem::take(&mut self.pool_workers)
    }

    /// Capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.worker.disk.capacity
    }

    /// Replaces the rate limits (Firecracker's `PATCH /drives`, QMP's
    /// `block_set_io_throttle`), with full buckets. Called off the device thread: that
    /// thread is woken to serve whatever waited for the old ones.
    pub fn set_limits(&mut self, limits: &DriveLimits) {
        self.throttle = Throttle::new(limits, self.waker.now());
        self.waker.cancel();
        self.activation.wake();
    }

    fn read_only(&self) -> bool {
        self.features & (1 << VIRTIO_BLK_F_RO) != 0
    }

    /// Serves every queue (activation, a rate limit's or the engine's room back).
    fn process_all(&mut self) {
        for q in 0..self.activation.queues().map_or(0, <[Virtqueue]>::len) {
            self.process_queue(q);
        }
    }

    fn process_queue(&mut self, q: usize) {
        // A blocked rate limit: the waker's timer brings the device back.
        if self.broken || self.waker.blocked() {
            return;
        }
        let Some(ctx) = self.activation.active.as_mut() else { return };
        // Borrowed, not cloned: a GuestMemoryMmap clone allocates.
        let ActivateContext { mem, queues, queue_events, .. } = ctx;
        let mem = &*mem;
        let Some(queue) = queues.get_mut(q) else { return };
        let mut used_any = false;
        let mut broken = None;
        let mut served = 0;
        'batch: loop {
            // No kicks while we are draining the ring anyway.
            if let Err(e) = queue.disable_notification(mem) {
                broken = Some(QueueFault::Used(e));
                break;
            }
            loop {
                if served == CHAINS_PER_TURN {
                    // Kicks stay off: the device comes back for the rest on the next turn.
                    come_back_later(&queue_events[q]);
                    break 'batch;
                }
                if self.worker.engine.as_ref().is_some_and(|e| e.full()) {
                    // Kicks stay off: the next completion brings the device back.
                    self.starved = true;
                    break 'batch;
                }
                let chain = match queue.iter(mem) {
                    Ok(mut iter) => iter.next(),
                    Err(e) => {
                        // A corrupt avail ring: stop serving rather than guess.
                        broken = Some(QueueFault::Avail(e));
                        break 'batch;
                    }
                };
                let Some(chain) = chain else { break };
                if let Some(throttle) = self.throttle.as_mut() {
                    if let Some(wait) = throttle.admit(mem, &chain, self.waker.now()) {
                        // Left in the ring for when the budget allows it; kicks stay off
                        // meanwhile, as the timer brings the device back.
                        queue.go_to_previous_position();
                        self.waker.sleep(wait);
                        break 'batch;
                    }
                }
                served += 1;
                let head = chain.head_index();
                if head >= queue.size() {
                    // No used entry can name it; the driver broke its own request.
                    self.worker.complain(GuestError::BadHead);
                    continue;
                }
                let Some(len) = self.worker.serve(mem, q as u16, chain) else { continue };
                if let Err(e) = queue.add_used(mem, head, len) {
                    broken = Some(QueueFault::Used(e));
                    break 'batch;
                }
                used_any = true;
            }
            // Re-enable kicks; if requests arrived meanwhile, serve them too.
            match queue.enable_notification(mem) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    broken = Some(QueueFault::Used(e));
                    break;
                }
            }
        }
        if let Some(engine) = self.worker.engine.as_mut() {
            if let Err(e) = engine.submit() {
                broken = broken.or(Some(QueueFault::Engine(e)));
            }
        }
        // What the engine finished within the submit joins the chains served here: one
        // interrupt for the batch.
        let used = u32::from(used_any) << q | self.complete(Reap::Ready).0;
        self.notify(used);
        if let Some(why) = broken {
            self.needs_reset(why);
        }
    }
}

/// The configuration space (struct virtio_blk_config), little-endian.
fn config_space(disk: &Disk, discard: bool, write_zeroes: bool, num_queues: u16) -> Vec<u8> {
    type C = virtio_blk_config;
    let mut c = vec![0u8; size_of::<C>()];
    let mut put = |at: usize, bytes: &[u8]| c[at..at + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(C, capacity), &disk.capacity.to_le_bytes());
    put(offset_of!(C, seg_max), &SEG_MAX.to_le_bytes());
    put(offset_of!(C, blk_size), &(disk::SECTOR_SIZE as u32).to_le_bytes());
    put(offset_of!(C, num_queues), &num_queues.to_le_bytes());
    if discard {
        put(offset_of!(C, max_discard_sectors), &MAX_DISCARD_SECTORS.to_le_bytes());
        put(offset_of!(C, max_discard_seg), &MAX_DISCARD_SEG.to_le_bytes());
        put(offset_of!(C, discard_sector_alignment), &disk.discard_alignment.to_le_bytes());
    }
    if write_zeroes {
        put(offset_of!(C, max_write_zeroes_sectors), &MAX_WRITE_ZEROES_SECTORS.to_le_bytes());
        put(offset_of!(C, max_write_zeroes_seg), &MAX_WRITE_ZEROES_SEG.to_le_bytes());
        put(offset_of!(C, write_zeroes_may_unmap), &[u8::from(disk.punch_hole)]);
    }
    c
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }
    /// Without VIRTIO_BLK_F_MQ the driver sets up the first queue only (virtio 1.x
    /// §5.2.5).
    fn active_queues(&self, acked_features: u64) -> usize {
        if acked_features & (1 << VIRTIO_BLK_F_MQ) != 0 {
            self.queue_sizes.len()
        } else {
            1
        }
    }
    fn features(&self) -> u64 {
        self.features
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }
    fn activate(&mut self, mut ctx: ActivateContext) -> Result<(), ActivateError> {
        let want = self.active_queues(ctx.acked_features);
        if ctx.queues.len() != want {
            self.worker.metrics.activate_fails.inc();
            return Err(ActivateError::QueueCount { device: "virtio-blk", given: ctx.queues.len(), needed: want });
        }
        let event_idx = ctx.acked_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        for queue in &mut ctx.queues {
            queue.set_event_idx(event_idx);
        }
        self.broken = false;
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        // The ring's requests write into guest memory: let them finish first.
        if let Err(e) = self.complete_all() {
            log::error!("virtio-blk {}: reset: {e}", self.worker.name);
            return false;
        }
        self.activation.deactivate();
        self.waker.cancel();
        self.broken = false;
        true
    }
    fn active_queues_now(&self) -> Option<&[Virtqueue]> {
        self.activation.queues()
    }
    fn save(&mut self) -> Result<VirtioState, StateError> {
        if self.overlay {
            // Refused before anything is written: the restored guest would find its disk
            // without the writes it made (QEMU's migration would reopen a new overlay too).
            return Err(StateError::Unsupported {
                device: "virtio-blk",
                why: "a snapshot=on drive keeps the guest's writes in a temporary overlay that a restore cannot reopen",
            });
        }
        self.complete_all().map_err(|source| StateError::Backend {
            device: "virtio-blk",
            op: "waiting for requests in flight",
            source,
        })?;
        if self.worker.disk.formatted() {
            // The image file must be whole without this process: write the qcow2
            // metadata cache back (a restore opens the file afresh).
            self.worker.disk.write_back().map_err(|source| StateError::Backend {
                device: "virtio-blk",
                op: "writing the qcow2 metadata back",
                source,
            })?;
        }
        Ok(VirtioState::Block(BlockState { capacity: self.capacity(), read_only: self.read_only() }))
    }
    fn restore(&mut self, state: VirtioState) -> Result<(), StateError> {
        let VirtioState::Block(saved) = state else { return Err(state.mismatch("virtio-blk")) };
        if saved.capacity != self.capacity() {
            let (saved, now) = (saved.capacity, self.capacity());
            return Err(StateError::Config { device: "virtio-blk", what: "disk size in sectors", saved, now });
        }
        if saved.read_only != self.read_only() {
            let (saved, now) = (u64::from(saved.read_only), u64::from(self.read_only()));
            return Err(StateError::Config {
                device: "virtio-blk",
                what: "read-only setting (1: readonly=on)",
                saved,
                now,
            });
        }
        Ok(())
    }
}

impl Drop for Block {
    /// What the engine still carries out writes into guest memory (which the activation
    /// holds) through the image's descriptor (which the disk holds): both must outlive it.
    fn drop(&mut self) {
        if let Err(e) = self.complete_all() {
            log::error!("virtio-blk {}: at exit: {e}", self.worker.name);
        }
    }
}
