//! virtio-balloon (virtio 1.x §5.5): the host asks the guest to give back memory by
//! raising `num_pages`; the guest answers with the page frame numbers it gave up on the
//! inflate queue, and those pages are returned to the host here. With
//! `free-page-reporting=on` the guest also reports free memory it does not need on the
//! reporting queue, which is returned the same way. The statistics queue carries the
//! guest's memory statistics; the device keeps the latest set.
//!
//! Returning a page: `MADV_DONTNEED` on private anonymous guest RAM (the default; the
//! next guest touch gets a zero page), `MADV_REMOVE` on shared memfd or file memory
//! (frees the backing pages, as a hole punch does).

use super::{
    come_back_later, read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, CHAINS_PER_TURN,
    VIRTIO_F_VERSION_1,
};
use crate::guest_events::{GuestEvent, GuestEvents};
use crate::guest_memory::GuestMemoryMmap;
use crate::guest_warn;
use crate::noise::LineBudget;
use crate::virtio::queue::Chain;
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::sync::{Arc, Mutex};
use virtio_bindings::virtio_ids::VIRTIO_ID_BALLOON;

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};

#[cfg(test)]
mod tests;

/// What a snapshot keeps of the balloon beyond its queues.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BalloonDeviceState {
    /// The target the host set (`num_pages`) and what the guest says it gave (`actual`).
    pub target_pages: u32,
    pub actual_pages: u32,
    /// The last statistics, and when they came (s since the epoch): `query-balloon`
    /// and the QOM stats read them.
    pub stats: [Option<u64>; STAT_NAMES.len()],
    pub stats_updated_at: u64,
    pub returned_bytes: u64,
    /// The statistics buffer the device holds until it wants new statistics: the guest
    /// posts one and only one, so losing it would end statistics for good.
    pub stats_head: Option<u16>,
}

/// Feature bits (virtio 1.x §5.5.3; virtio-bindings has no balloon header).
pub const F_STATS_VQ: u64 = 1 << 1;
pub const F_DEFLATE_ON_OOM: u64 = 1 << 2;
pub const F_REPORTING: u64 = 1 << 5;

/// The balloon's unit: PFNs on the inflate queue count 4 KiB pages whatever the guest's
/// page size (§5.5.6).
pub const PAGE_SIZE: u64 = 4096;

const QUEUE_SIZE: u16 = 256;
/// Most PFNs of one inflate buffer that are released; the rest are ignored (the buffer is
/// still completed). Linux sends at most 256 (VIRTIO_BALLOON_ARRAY_PFNS_MAX); without a
/// bound one buffer the size of guest RAM would cost one madvise per page in a single
/// turn of the device thread (found by the queue_balloon fuzzer: 40 s for one input).
const MAX_PFNS_PER_BUFFER: u64 = 256;
const INFLATE: usize = 0;
const DEFLATE: usize = 1;

/// One statistic as the guest sends it: le16 tag, le64 value, packed.
const STAT_SIZE: usize = 10;
/// Tags the spec defines (§5.5.6.3), by name, in tag order.
pub const STAT_NAMES: [&str; 10] = [
    "stat-swap-in",
    "stat-swap-out",
    "stat-major-faults",
    "stat-minor-faults",
    "stat-free-memory",
    "stat-total-memory",
    "stat-available-memory",
    "stat-disk-caches",
    "stat-htlb-pgalloc",
    "stat-htlb-pgfail",
];

/// `-device virtio-balloon-device,...`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalloonOptions {
    pub deflate_on_oom: bool,
    pub free_page_reporting: bool,
}

/// What the host and the guest agreed so far, shared with the monitor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalloonState {
    /// Pages the host asks the guest to hold (config `num_pages`).
    pub target_pages: u32,
    /// Pages the guest says it holds (config `actual`).
    pub actual_pages: u32,
    /// The latest statistics, by tag (unknown tags are dropped).
    pub stats: [Option<u64>; STAT_NAMES.len()],
    /// When they arrived, seconds since the epoch (QEMU's `last-update`); 0: never.
    pub stats_updated_at: u64,
    /// Bytes returned to the host so far (inflate and reporting).
    pub returned_bytes: u64,
}

pub struct Balloon {
    activation: Activation,
    options: BalloonOptions,
    acked: u64,
    state: Arc<Mutex<BalloonState>>,
    broken: bool,
    /// The statistics buffer the driver left with the device. It is held, not returned:
    /// returning it asks the guest for fresh statistics (`request_stats`), and a device
    /// that returned it at once would make the guest refill it in a tight loop.
    stats_head: Option<u16>,
    /// Log lines about oversized inflate buffers.
    oversized_lines: LineBudget,
    /// Where changes of `actual` go (the monitors' BALLOON_CHANGE); none in tests.
    events: Option<Arc<GuestEvents>>,
}

fn lock(state: &Mutex<BalloonState>) -> std::sync::MutexGuard<'_, BalloonState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Balloon {
    pub fn new(options: BalloonOptions) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(BalloonState::default()));
        Ok(Balloon {
            activation: Activation::new()?,
            options,
            acked: 0,
            state,
            broken: false,
            stats_head: None,
            oversized_lines: LineBudget::new(),
            events: None,
        })
    }

    /// Announces the guest's changes of `actual` through `events`.
    pub fn report_to(&mut self, events: Arc<GuestEvents>) {
        self.events = Some(events);
    }

    /// The state the monitor reads and sets the target in.
    pub fn state(&self) -> Arc<Mutex<BalloonState>> {
        self.state.clone()
    }

    /// Asks the guest to hold `pages` (QMP `balloon`): a configuration change interrupt.
    pub fn set_target(&mut self, pages: u32) {
        lock(&self.state).target_pages = pages;
        if let Some(ctx) = &self.activation.active {
            ctx.interrupt.signal_config_change();
        }
    }

    /// Hands the held statistics buffer back, so the guest sends fresh statistics; the
    /// monitor reads them once they arrive.
    pub fn request_stats(&mut self) {
        let (Some(head), Some(index)) = (self.stats_head, self.stats_queue()) else { return };
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let Some(queue) = ctx.queues.get_mut(index) else { return };
        if queue.add_used(&mem, head, 0).is_ok() {
            self.stats_head = None;
            if queue.needs_notification(&mem).unwrap_or(true) {
                ctx.interrupt.signal_used_queue();
            }
        }
    }

    fn stats_queue(&self) -> Option<usize> {
        (self.acked & F_STATS_VQ != 0).then_some(2)
    }

    fn reporting_queue(&self) -> Option<usize> {
        // Queues are numbered without gaps: reporting follows stats when there is one.
        (self.acked & F_REPORTING != 0).then_some(2 + usize::from(self.acked & F_STATS_VQ != 0))
    }

    /// Serves the available buffers of `index`, [`CHAINS_PER_TURN`] at most per turn.
    fn process_queue(&mut self, index: usize) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let stats = self.acked & F_STATS_VQ != 0 && index == 2;
        let Some(queue) = ctx.queues.get_mut(index) else { return };
        let mut used_any = false;
        let mut served = 0;
        loop {
            if served == CHAINS_PER_TURN {
                come_back_later(&ctx.queue_events[index]);
                break;
            }
            served += 1;
            let chain = match queue.iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    metrics::BALLOON.event_fails.inc();
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
            let returned = match index {
                INFLATE => {
                    let (released, ignored) = inflate(&mem, chain);
                    if ignored > 0 {
                        guest_warn!(
                            self.oversized_lines,
                            "virtio-balloon: an inflate buffer held {} PFNs; the {ignored} past the first \
                             {MAX_PFNS_PER_BUFFER} were not released",
                            ignored + MAX_PFNS_PER_BUFFER
                        );
                    }
                    released
                }
                DEFLATE => 0,
                _ if stats => {
                    let mut state = lock(&self.state);
                    if !read_stats(&mem, chain, &mut state.stats) {
                        metrics::BALLOON.stats_update_fails.inc();
                    }
                    state.stats_updated_at =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    drop(state);
                    metrics::BALLOON.stats_updates_count.inc();
                    self.stats_head = Some(head);
                    continue;
                }
                _ => {
                    let freed = report(&mem, chain);
                    metrics::BALLOON.free_page_report_count.inc();
                    metrics::BALLOON.free_page_report_freed.add(freed);
                    freed
                }
            };
            lock(&self.state).returned_bytes += returned;
            if queue.add_used(&mem, head, 0).is_err() {
                metrics::BALLOON.event_fails.inc();
                log::warn!("virtio-balloon: used ring is outside guest memory");
                return;
            }
            used_any = true;
        }
        // Firecracker counts each inflate and deflate queue event; here each turn that
        // served buffers (the device's wake-up also looks at every queue, finding none).
        match index {
            INFLATE if used_any => metrics::BALLOON.inflate_count.inc(),
            DEFLATE if used_any => metrics::BALLOON.deflate_count.inc(),
            _ => {}
        }
        if used_any && queue.needs_notification(&mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
    }
}

/// The inflate queue: arrays of le32 PFNs the guest gave up. Returns the bytes released
/// and how many PFNs past [`MAX_PFNS_PER_BUFFER`] were ignored.
fn inflate<M: std::ops::Deref<Target = GuestMemoryMmap>>(mem: &GuestMemoryMmap, chain: Chain<M>) -> (u64, u64) {
    let (mut released, mut seen) = (0, 0u64);
    for desc in chain.readable() {
        let count = u64::from(desc.len()) / 4;
        let take = count.min(MAX_PFNS_PER_BUFFER.saturating_sub(seen));
        seen += count;
        for i in 0..take {
            let Ok(pfn) = mem.read_obj::<u32>(desc.addr().unchecked_add(i * 4)) else { break };
            released += release(mem, GuestAddress(u64::from(pfn) * PAGE_SIZE), PAGE_SIZE);
        }
    }
    (released, seen.saturating_sub(MAX_PFNS_PER_BUFFER))
}

/// The reporting queue: each buffer *is* a free range the guest reports.
fn report<M: std::ops::Deref<Target = GuestMemoryMmap>>(mem: &GuestMemoryMmap, chain: Chain<M>) -> u64 {
    chain.map(|desc| release(mem, desc.addr(), u64::from(desc.len()))).sum()
}

/// The statistics queue: packed (tag, value) pairs. False if a buffer is outside guest
/// memory (what was read before it is kept).
fn read_stats<M: std::ops::Deref<Target = GuestMemoryMmap>>(
    mem: &GuestMemoryMmap,
    chain: Chain<M>,
    stats: &mut [Option<u64>; STAT_NAMES.len()],
) -> bool {
    for desc in chain.readable() {
        let mut buf = vec![0u8; (desc.len() as usize).min(STAT_SIZE * 64)];
        if mem.read_slice(&mut buf, desc.addr()).is_err() {
            return false;
        }
        for entry in buf.chunks_exact(STAT_SIZE) {
            let tag = u16::from_le_bytes([entry[0], entry[1]]) as usize;
            let value = u64::from_le_bytes(entry[2..].try_into().expect("8 bytes"));
            if let Some(slot) = stats.get_mut(tag) {
                *slot = Some(value);
            }
        }
    }
    true
}

/// Gives `len` bytes of guest RAM at `addr` back to the host, whole pages only, never
/// outside guest RAM. Returns the bytes released.
fn release(mem: &GuestMemoryMmap, addr: GuestAddress, len: u64) -> u64 {
    let Some(region) = mem.find_region(addr) else { return 0 };
    let offset = addr.0 - region.start_addr().0;
    let len = len.min(region.len() - offset);
    let (start, end) = (offset.next_multiple_of(PAGE_SIZE), (offset + len) / PAGE_SIZE * PAGE_SIZE);
    if end <= start {
        return 0;
    }
    let Ok(host) = region.get_host_address(vm_memory::MemoryRegionAddress(start)) else { return 0 };
    // Shared file-backed memory keeps its pages in the file: free them there.
    let advice = if region.file_offset().is_some() { libc::MADV_REMOVE } else { libc::MADV_DONTNEED };
    // SAFETY: [host, host + end - start) lies inside this region's mapping (checked
    // above), which lives as long as `mem`. The guest gave these pages up: discarding
    // their contents is what it asked for; it reads zeroes if it touches them again.
    let rc = unsafe { libc::madvise(host.cast(), (end - start) as usize, advice) };
    if rc != 0 {
        log::warn!("virtio-balloon: cannot return guest pages: {}", std::io::Error::last_os_error());
        return 0;
    }
    end - start
}

impl VirtioDevice for Balloon {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BALLOON
    }

    fn queue_max_sizes(&self) -> &[u16] {
        // inflate, deflate, stats, reporting: the last ones only if negotiated.
        const SIZES: [u16; 4] = [QUEUE_SIZE; 4];
        &SIZES[..2 + 1 + usize::from(self.options.free_page_reporting)]
    }

    fn active_queues(&self, acked: u64) -> usize {
        2 + usize::from(acked & F_STATS_VQ != 0) + usize::from(acked & F_REPORTING != 0)
    }

    fn features(&self) -> u64 {
        let optional = |on: bool, bit: u64| if on { bit } else { 0 };
        VIRTIO_F_VERSION_1
            | F_STATS_VQ
            | optional(self.options.deflate_on_oom, F_DEFLATE_ON_OOM)
            | optional(self.options.free_page_reporting, F_REPORTING)
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let state = lock(&self.state);
        let mut config = [0u8; 8];
        config[..4].copy_from_slice(&state.target_pages.to_le_bytes());
        config[4..].copy_from_slice(&state.actual_pages.to_le_bytes());
        read_config_bytes(&config, offset, data);
    }

    /// The driver reports how many pages it holds in `actual` (offset 4); the rest of the
    /// configuration space is the host's.
    /// A new value is announced, as QEMU's BALLOON_CHANGE (a repeated one is not).
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        if offset == 4 && data.len() == 4 {
            let pages = u32::from_le_bytes(data.try_into().expect("4 bytes"));
            let old = std::mem::replace(&mut lock(&self.state).actual_pages, pages);
            if let Some(events) = self.events.as_ref().filter(|_| pages != old) {
                events.send(GuestEvent::BalloonActual { pages });
            }
        }
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.acked = ctx.acked_features;
        self.broken = false;
        self.activation.activate(ctx).inspect_err(|_| metrics::BALLOON.activate_fails.inc())
    }

    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.stats_head = None;
        lock(&self.state).actual_pages = 0;
        true
    }

    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }

    fn save(&mut self) -> Result<super::VirtioState, crate::state::StateError> {
        let state = lock(&self.state);
        Ok(super::VirtioState::Balloon(BalloonDeviceState {
            target_pages: state.target_pages,
            actual_pages: state.actual_pages,
            stats: state.stats,
            stats_updated_at: state.stats_updated_at,
            returned_bytes: state.returned_bytes,
            stats_head: self.stats_head,
        }))
    }

    /// The pages the guest gave back stay given back: the memory file has them as
    /// zeroes (or holes), which is what the guest expects of them.
    fn restore(&mut self, state: super::VirtioState) -> Result<(), crate::state::StateError> {
        // The statistics head is the guest's, taken as it came (the used ring refuses one
        // beyond the queue when it is given back), so any value is what the device had.
        let super::VirtioState::Balloon(saved) = state else { return Err(state.mismatch("virtio-balloon")) };
        let mut state = lock(&self.state);
        state.target_pages = saved.target_pages;
        state.actual_pages = saved.actual_pages;
        state.stats = saved.stats;
        state.stats_updated_at = saved.stats_updated_at;
        state.returned_bytes = saved.returned_bytes;
        drop(state);
        self.stats_head = saved.stats_head;
        Ok(())
    }
}

impl MutEventSubscriber for Balloon {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            if self.activation.on_wake(ops) {
                let queues = self.active_queues(self.acked);
                for index in 0..queues {
                    self.process_queue(index);
                }
            }
            return;
        }
        let index = events.data() as usize;
        if let Some(evt) = self.activation.active.as_ref().and_then(|ctx| ctx.queue_events.get(index)) {
            let _ = evt.read();
        }
        if !self.broken && (index < 2 || Some(index) == self.stats_queue() || Some(index) == self.reporting_queue()) {
            self.process_queue(index);
        }
    }
}
