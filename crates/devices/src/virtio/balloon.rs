//! virtio-balloon (virtio 1.x §5.5): the host asks the guest to give back
//! memory (QMP `balloon`); pages the guest hands over (inflate queue) and,
//! with free-page-reporting, pages it reports free are returned to the host
//! (MADV_DONTNEED on private memory, FALLOC_FL_PUNCH_HOLE on a shared
//! memfd or file, where MADV_DONTNEED would not free anything).
//!
//! Queues: inflate, deflate, stats, and reporting with free-page-reporting=on.
//! The transport needs every queue the device has, and Linux sets up one per
//! feature it accepts: the device offers STATS_VQ always, so the queue
//! indices match what Linux uses.

use super::{read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VIRTIO_F_VERSION_1};
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_BALLOON;
use virtio_queue::{QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

const QUEUE_SIZE: u16 = 128;
const INFLATE: usize = 0;
const DEFLATE: usize = 1;
const STATS: usize = 2;
/// The balloon's unit: 4 KiB pages, whatever the guest's page size.
pub const PAGE_SIZE: u64 = 4096;
const PAGE_SHIFT: u32 = 12;
pub const F_STATS_VQ: u64 = 1 << 1;
pub const F_DEFLATE_ON_OOM: u64 = 1 << 2;
pub const F_FREE_PAGE_REPORTING: u64 = 1 << 5;
/// One stats entry: le16 tag, le64 value.
const STAT_ENTRY_LEN: u64 = 10;
/// Most stats entries read from one buffer (Linux sends 10 to 16).
const MAX_STATS: u64 = 32;

/// What the balloon shares with the monitor: the target the host set and
/// what the guest says it has given back, both in 4 KiB pages.
#[derive(Debug, Default)]
pub struct BalloonState {
    target_pages: AtomicU32,
    actual_pages: AtomicU32,
    /// Guest RAM, bytes: what `query-balloon` subtracts the balloon from.
    pub ram_size: u64,
}

impl BalloonState {
    pub fn actual_pages(&self) -> u32 {
        self.actual_pages.load(Ordering::SeqCst)
    }
    pub fn target_pages(&self) -> u32 {
        self.target_pages.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalloonOptions {
    pub deflate_on_oom: bool,
    pub free_page_reporting: bool,
}

pub struct Balloon {
    options: BalloonOptions,
    queue_sizes: Vec<u16>,
    state: Arc<BalloonState>,
    activation: Activation,
    /// The last statistics the guest sent: (tag, value).
    stats: Vec<(u16, u64)>,
    /// The guest's stats buffer, held until new statistics are wanted.
    stats_head: Option<u16>,
    broken: bool,
}

impl Balloon {
    pub fn new(options: BalloonOptions, ram_size: u64) -> std::io::Result<Self> {
        let queues = if options.free_page_reporting { 4 } else { 3 };
        Ok(Balloon {
            options,
            queue_sizes: vec![QUEUE_SIZE; queues],
            state: Arc::new(BalloonState { ram_size, ..Default::default() }),
            activation: Activation::new()?,
            stats: Vec::new(),
            stats_head: None,
            broken: false,
        })
    }

    /// For the monitor: read `actual`, and `set_target` through [`Balloon::set_target`].
    pub fn state(&self) -> Arc<BalloonState> {
        self.state.clone()
    }

    /// QMP `balloon`: ask the guest to hold `pages` 4 KiB pages; a
    /// configuration change interrupt tells it.
    pub fn set_target(&mut self, pages: u32) {
        self.state.target_pages.store(pages, Ordering::SeqCst);
        if let Some(ctx) = &self.activation.active {
            ctx.interrupt.signal_config_change();
        }
    }

    pub fn stats(&self) -> &[(u16, u64)] {
        &self.stats
    }

    fn process(&mut self, queue_index: usize) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let queue = &mut ctx.queues[queue_index];
        let mut used_any = false;
        loop {
            let chain = match queue.iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    if !self.broken {
                        log::warn!("virtio-balloon: bad avail ring ({e}); device needs reset");
                        self.broken = true;
                        ctx.interrupt.signal_needs_reset();
                    }
                    return;
                }
            };
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            match queue_index {
                INFLATE => {
                    for desc in chain.readable() {
                        discard_pfns(&mem, desc.addr(), desc.len());
                    }
                }
                DEFLATE => {} // The pages come back by being touched.
                STATS => {
                    if let Some(desc) = chain.readable().next() {
                        self.stats = read_stats(&mem, desc.addr(), desc.len());
                    }
                    // Held: returning it is how the device asks for fresh statistics.
                    self.stats_head = Some(head);
                    continue;
                }
                _ => {
                    // Linux posts the reported ranges as device-writable buffers (QEMU reads
                    // the in_sg); a readable one is taken alike.
                    for desc in chain {
                        discard_range(&mem, desc.addr().0, u64::from(desc.len()));
                    }
                }
            }
            if queue.add_used(&mem, head, 0).is_err() {
                log::warn!("virtio-balloon: used ring is outside guest memory");
                return;
            }
            used_any = true;
        }
        if used_any {
            ctx.interrupt.signal_used_queue();
        }
    }

    /// Hands the stats buffer back, which makes the guest send fresh statistics.
    pub fn request_stats(&mut self) {
        let (Some(ctx), Some(head)) = (self.activation.active.as_mut(), self.stats_head.take()) else { return };
        if ctx.queues[STATS].add_used(&ctx.mem, head, 0).is_ok() {
            ctx.interrupt.signal_used_queue();
        }
    }
}

/// Inflate: an array of le32 page frame numbers (4 KiB units).
fn discard_pfns(mem: &GuestMemoryMmap, addr: GuestAddress, len: u32) {
    let count = u64::from(len) / 4;
    let mut run: Option<(u64, u64)> = None;
    for i in 0..count {
        let Ok(pfn) = mem.read_obj::<u32>(GuestAddress(addr.0.wrapping_add(i * 4))) else { break };
        let page = u64::from(pfn) << PAGE_SHIFT;
        run = match run {
            Some((start, n)) if start + n * PAGE_SIZE == page => Some((start, n + 1)),
            Some((start, n)) => {
                discard_range(mem, start, n * PAGE_SIZE);
                Some((page, 1))
            }
            None => Some((page, 1)),
        };
    }
    if let Some((start, n)) = run {
        discard_range(mem, start, n * PAGE_SIZE);
    }
}

/// Returns guest RAM [addr, addr+len) to the host, where it lies in one
/// region; anything else (malformed guest input) is ignored.
fn discard_range(mem: &GuestMemoryMmap, addr: u64, len: u64) {
    let Some(region) = mem.find_region(GuestAddress(addr)) else { return };
    let offset = addr - region.start_addr().0;
    if len == 0 || offset.checked_add(len).map_or(true, |end| end > region.len()) {
        return;
    }
    let Ok(host) = region.get_host_address(vm_memory::MemoryRegionAddress(offset)) else { return };
    let rc = match region.file_offset() {
        Some(file) => {
            let flags = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            let at = (file.start() + offset) as libc::off_t;
            // SAFETY: punches a hole in our own guest-memory file; the mapping stays valid
            // (the pages read back as zeroes, as a balloon's freed pages may).
            unsafe { libc::fallocate(file.file().as_raw_fd(), flags, at, len as libc::off_t) }
        }
        // SAFETY: the range lies inside a live guest mapping (checked above); DONTNEED on
        // private anonymous memory only makes the pages read back as zeroes.
        None => unsafe { libc::madvise(host.cast(), len as usize, libc::MADV_DONTNEED) },
    };
    if rc != 0 {
        log::debug!("virtio-balloon: cannot discard {len} bytes at {addr:#x}: {}", std::io::Error::last_os_error());
    }
}

fn read_stats(mem: &GuestMemoryMmap, addr: GuestAddress, len: u32) -> Vec<(u16, u64)> {
    let count = (u64::from(len) / STAT_ENTRY_LEN).min(MAX_STATS);
    (0..count)
        .map_while(|i| {
            let at = addr.0.checked_add(i * STAT_ENTRY_LEN)?;
            let tag = mem.read_obj::<u16>(GuestAddress(at)).ok()?;
            let value = mem.read_obj::<u64>(GuestAddress(at + 2)).ok()?;
            Some((u16::from_le(tag), u64::from_le(value)))
        })
        .collect()
}

impl VirtioDevice for Balloon {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BALLOON
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }
    fn features(&self) -> u64 {
        let mut f = VIRTIO_F_VERSION_1 | F_STATS_VQ;
        if self.options.deflate_on_oom {
            f |= F_DEFLATE_ON_OOM;
        }
        if self.options.free_page_reporting {
            f |= F_FREE_PAGE_REPORTING;
        }
        f
    }
    /// `struct virtio_balloon_config { le32 num_pages; le32 actual; ... }`
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 8];
        config[..4].copy_from_slice(&self.state.target_pages().to_le_bytes());
        config[4..].copy_from_slice(&self.state.actual_pages().to_le_bytes());
        read_config_bytes(&config, offset, data);
    }
    /// The driver writes `actual` (4 bytes at offset 4).
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        if offset == 4 && data.len() == 4 {
            let actual = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            self.state.actual_pages.store(actual, Ordering::SeqCst);
        }
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.stats_head = None;
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.stats_head = None;
        self.state.actual_pages.store(0, Ordering::SeqCst);
        true
    }
}

impl MutEventSubscriber for Balloon {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            if self.activation.on_wake(ops) {
                for q in 0..self.queue_sizes.len() {
                    Balloon::process(self, q);
                }
            }
            return;
        }
        let index = events.data() as usize;
        if let Some(ctx) = &self.activation.active {
            if let Some(evt) = ctx.queue_events.get(index) {
                let _ = evt.read();
            }
        }
        if !self.broken && index < self.queue_sizes.len() {
            Balloon::process(self, index);
        }
    }
}

#[cfg(test)]
mod tests;
