//! A virtio driver written for tests: it programs a device through the real
//! MMIO transport registers, lays out split virtqueues in a test guest
//! memory, posts descriptor chains (well-formed or not), runs the device's
//! event loop and reads the used ring back.

use super::mmio::{MmioTransport, REG_QUEUE_NOTIFY};
use super::{status, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::bus::BusDevice;
use crate::guest_memory::GuestMemoryMmap;
use crate::state::{DeviceState, StateError};
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use vm_memory::{Address, Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub const VIRTQ_DESC_F_NEXT: u16 = 1;
pub const VIRTQ_DESC_F_WRITE: u16 = 2;

/// Guest memory of every test: 16 MiB.
pub const MEM_SIZE: u64 = 16 << 20;
/// Queue q's rings live at QUEUE_AREA + q * 0x10000.
const QUEUE_AREA: u64 = 0x10000;
/// Buffers handed out by `alloc` start here.
const BUFFER_AREA: u64 = 0x100000;

#[derive(Clone)]
struct DriverQueue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
    /// Packed ring: ring slots each posted buffer id took.
    packed_slots: Vec<u16>,
}

pub struct TestDriver {
    pub mem: GuestMemoryMmap,
    pub transport: MmioTransport,
    pub irq: EventFd,
    pub interrupt: Arc<Interrupt>,
    queues: Vec<DriverQueue>,
    events: SharedLoop,
    next_buffer: u64,
}

/// A device event loop, shared by drivers whose devices serve on one thread (as the VMM's
/// devices share the virtio thread).
type SharedLoop = Rc<RefCell<EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>>>;

pub fn mem() -> GuestMemoryMmap {
    crate::guest_memory::untracked(&[(GuestAddress(0), MEM_SIZE as usize)])
}

impl TestDriver {
    pub fn new<D>(device: D) -> (Self, Arc<Mutex<D>>)
    where
        D: VirtioDevice + MutEventSubscriber + 'static,
    {
        Self::on_loop(device, Rc::new(RefCell::new(EventManager::new().unwrap())))
    }

    /// [`TestDriver::new`] on guest memory with dirty-page tracking (a bitmap per region).
    pub fn tracked<D>(device: D) -> (Self, Arc<Mutex<D>>)
    where
        D: VirtioDevice + MutEventSubscriber + 'static,
    {
        let mem = crate::guest_memory::anonymous(&[(GuestAddress(0), MEM_SIZE as usize)], true).unwrap();
        Self::on_memory(device, Rc::new(RefCell::new(EventManager::new().unwrap())), mem)
    }

    /// The pages written through vm-memory (or marked) since the last call, then cleared:
    /// page numbers of the tracked memory of [`TestDriver::tracked`].
    pub fn take_dirty_pages(&self) -> Vec<u64> {
        use vm_memory::GuestMemoryBackend;
        let region = self.mem.iter().next().expect("one region");
        let bitmap = (**region).bitmap().as_ref().expect("memory from TestDriver::tracked");
        let words = bitmap.get_and_reset();
        (0..words.len() as u64 * 64).filter(|&p| words[(p / 64) as usize] & (1 << (p % 64)) != 0).collect()
    }

    /// Where queue `queue`'s used ring is.
    pub fn used_ring(&self, queue: usize) -> u64 {
        self.queues[queue].used
    }

    /// A driver for `device`, which serves on the same event loop as `other`'s device.
    pub fn beside<D>(device: D, other: &TestDriver) -> (Self, Arc<Mutex<D>>)
    where
        D: VirtioDevice + MutEventSubscriber + 'static,
    {
        Self::on_loop(device, other.events.clone())
    }

    fn on_loop<D>(device: D, events: SharedLoop) -> (Self, Arc<Mutex<D>>)
    where
        D: VirtioDevice + MutEventSubscriber + 'static,
    {
        Self::on_memory(device, events, mem())
    }

    /// The transport's saved state (its device's included), as the VMM's snapshot takes it.
    pub fn save(&mut self) -> DeviceState {
        self.transport.save().expect("the device saves")
    }

    /// A snapshot restored, as a new process would: `device` (freshly built) on a new
    /// transport and event loop over this driver's guest memory (which the VMM maps from
    /// the memory file), given `state`. The driver side goes on where this one was (its
    /// rings and buffers are in that memory). The loop then runs once, as the device
    /// thread does when it starts.
    pub fn restored<D>(&self, device: D, state: DeviceState) -> Result<(Self, Arc<Mutex<D>>), StateError>
    where
        D: VirtioDevice + MutEventSubscriber + 'static,
    {
        let events = Rc::new(RefCell::new(EventManager::new().unwrap()));
        let (mut driver, device) = Self::on_memory(device, events, self.mem.clone());
        driver.transport.offer_packed_ring(self.transport.offers_packed_ring());
        driver.transport.restore(state)?;
        driver.queues = self.queues.clone();
        driver.next_buffer = self.next_buffer;
        driver.run_ready();
        Ok((driver, device))
    }

    fn on_memory<D>(device: D, events: SharedLoop, mem: GuestMemoryMmap) -> (Self, Arc<Mutex<D>>)
    where
        D: VirtioDevice + MutEventSubscriber + 'static,
    {
        let device = Arc::new(Mutex::new(device));
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let interrupt = Arc::new(Interrupt::new(irq.try_clone().unwrap()));
        let nqueues = device.lock().unwrap().queue_max_sizes().len();
        let queue_events = (0..nqueues).map(|_| EventFd::new(EFD_NONBLOCK).unwrap()).collect();
        let transport = MmioTransport::new(device.clone(), mem.clone(), interrupt.clone(), queue_events).unwrap();
        let subscriber: Arc<Mutex<dyn MutEventSubscriber + Send>> = device.clone();
        events.borrow_mut().add_subscriber(subscriber);
        let driver =
            TestDriver { mem, transport, irq, interrupt, queues: Vec::new(), events, next_buffer: BUFFER_AREA };
        (driver, device)
    }

    pub fn read_reg(&mut self, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        self.transport.read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    pub fn write_reg(&mut self, offset: u64, value: u32) {
        self.transport.write(offset, &value.to_le_bytes());
    }

    pub fn status(&mut self) -> u32 {
        self.read_reg(0x70)
    }

    pub fn device_features(&mut self) -> u64 {
        self.write_reg(0x14, 0);
        let low = self.read_reg(0x10);
        self.write_reg(0x14, 1);
        u64::from(self.read_reg(0x10)) << 32 | u64::from(low)
    }

    /// ACKNOWLEDGE, DRIVER, the features (VERSION_1 added), FEATURES_OK.
    /// Returns the status read back.
    pub fn negotiate(&mut self, features: u64) -> u32 {
        let features = features | VIRTIO_F_VERSION_1;
        self.write_reg(0x70, status::ACKNOWLEDGE);
        self.write_reg(0x70, status::ACKNOWLEDGE | status::DRIVER);
        self.write_reg(0x24, 0);
        self.write_reg(0x20, features as u32);
        self.write_reg(0x24, 1);
        self.write_reg(0x20, (features >> 32) as u32);
        self.write_reg(0x70, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        self.status()
    }

    /// Programs queue `index` with `size` entries and marks it ready.
    pub fn setup_queue(&mut self, index: u32, size: u16) {
        let base = QUEUE_AREA + u64::from(index) * 0x10000;
        let (desc, avail) = (base, base + 16 * u64::from(size));
        let used = (avail + 6 + 2 * u64::from(size)).next_multiple_of(4);
        self.write_reg(0x30, index);
        self.write_reg(0x38, u32::from(size));
        for (reg, addr) in [(0x80, desc), (0x90, avail), (0xa0, used)] {
            self.write_reg(reg, addr as u32);
            self.write_reg(reg + 4, (addr >> 32) as u32);
        }
        self.write_reg(0x44, 1);
        let packed_slots = vec![0; usize::from(size)];
        let q = DriverQueue { size, desc, avail, used, next_desc: 0, avail_idx: 0, used_seen: 0, packed_slots };
        let i = index as usize;
        if self.queues.len() <= i {
            self.queues.resize_with(i + 1, || DriverQueue {
                size: 0,
                desc: 0,
                avail: 0,
                used: 0,
                next_desc: 0,
                avail_idx: 0,
                used_seen: 0,
                packed_slots: Vec::new(),
            });
        }
        self.queues[i] = q;
    }

    /// Packed ring (VIRTIO_F_RING_PACKED acked): posts buffer `id` made of `bufs` (addr,
    /// len, device-writable) in the next ring slots, the head's flags written last. The
    /// queue's descriptor area is the ring; `next_desc` counts slots free-running.
    pub fn post_packed(&mut self, queue: usize, bufs: &[(u64, u32, bool)], id: u16) {
        let q = &mut self.queues[queue];
        let start = q.next_desc;
        let mut head_flags = 0;
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            let at = start.wrapping_add(i as u16);
            let wrap = (at / q.size) % 2 == 0;
            let mut flags = if wrap { 1 << 7 } else { 1 << 15 };
            flags |= if i + 1 < bufs.len() { VIRTQ_DESC_F_NEXT } else { 0 };
            flags |= if write { VIRTQ_DESC_F_WRITE } else { 0 };
            let slot = q.desc + 16 * u64::from(at % q.size);
            let mut raw = [0u8; 14];
            raw[..8].copy_from_slice(&addr.to_le_bytes());
            raw[8..12].copy_from_slice(&len.to_le_bytes());
            raw[12..14].copy_from_slice(&id.to_le_bytes());
            self.mem.write_slice(&raw, GuestAddress(slot)).unwrap();
            if i == 0 {
                head_flags = flags;
            } else {
                self.mem.write_obj(flags, GuestAddress(slot + 14)).unwrap();
            }
        }
        let head = q.desc + 16 * u64::from(start % q.size);
        self.mem.write_obj(head_flags, GuestAddress(head + 14)).unwrap();
        q.packed_slots[usize::from(id)] = bufs.len() as u16;
        q.next_desc = start.wrapping_add(bufs.len() as u16);
    }

    /// Packed ring: the used descriptors the device wrote since the last call, (id, len).
    pub fn packed_used(&mut self, queue: usize) -> Vec<(u16, u32)> {
        let mut out = Vec::new();
        let q = &mut self.queues[queue];
        for _ in 0..q.size {
            let slot = GuestAddress(q.desc + 16 * u64::from(q.used_seen % q.size));
            let flags: u16 = self.mem.read_obj(slot.unchecked_add(14)).unwrap();
            let wrap = (q.used_seen / q.size) % 2 == 0;
            if (flags & (1 << 7) != 0) != wrap || (flags & (1 << 15) != 0) != wrap {
                break;
            }
            let id: u16 = self.mem.read_obj(slot.unchecked_add(12)).unwrap();
            let len: u32 = self.mem.read_obj(slot.unchecked_add(8)).unwrap();
            out.push((id, len));
            let slots = q.packed_slots.get(usize::from(id)).copied().unwrap_or(1).max(1);
            q.used_seen = q.used_seen.wrapping_add(slots);
        }
        out
    }

    /// Sets DRIVER_OK and lets the device's event loop pick the queues up.
    pub fn driver_ok(&mut self) -> u32 {
        let s = self.status();
        self.write_reg(0x70, s | status::DRIVER_OK);
        self.run_ready();
        self.status()
    }

    /// Resets the device (status 0) and forgets the rings, zeroed as a driver's fresh
    /// allocation would be.
    pub fn reset(&mut self) {
        self.write_reg(0x70, 0);
        let zeros = vec![0u8; (BUFFER_AREA - QUEUE_AREA) as usize];
        self.mem.write_slice(&zeros, GuestAddress(QUEUE_AREA)).unwrap();
        self.queues.clear();
    }

    /// Negotiates `features`, sets up every queue with `size` entries, DRIVER_OK.
    pub fn activate(&mut self, features: u64, size: u16) {
        assert_ne!(self.negotiate(features) & status::FEATURES_OK, 0, "features refused");
        let nqueues = self.transport.device().lock().unwrap().queue_max_sizes().len();
        for q in 0..nqueues as u32 {
            self.setup_queue(q, size);
        }
        let s = self.driver_ok();
        assert_eq!(s & status::DEVICE_NEEDS_RESET, 0, "device refused activation");
    }

    /// Reserves `len` bytes of guest memory for a buffer, filled with `fill`.
    pub fn alloc(&mut self, len: u32, fill: u8) -> u64 {
        let addr = self.next_buffer;
        self.mem.write_slice(&vec![fill; len as usize], GuestAddress(addr)).unwrap();
        self.next_buffer = (addr + u64::from(len)).next_multiple_of(16);
        addr
    }

    pub fn write_desc(&mut self, queue: usize, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(self.queues[queue].desc + 16 * u64::from(index));
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&next.to_le_bytes());
        self.mem.write_slice(&raw, at).unwrap();
    }

    /// Writes a chain of (addr, len, device-writable) buffers into fresh
    /// descriptors and publishes it. Returns the head index.
    pub fn add_chain(&mut self, queue: usize, buffers: &[(u64, u32, bool)]) -> u16 {
        let size = self.queues[queue].size;
        let head = self.queues[queue].next_desc;
        for (i, &(addr, len, writable)) in buffers.iter().enumerate() {
            let index = (head + i as u16) % size;
            let last = i + 1 == buffers.len();
            let flags = if writable { VIRTQ_DESC_F_WRITE } else { 0 } | if last { 0 } else { VIRTQ_DESC_F_NEXT };
            self.write_desc(queue, index, addr, len, flags, (index + 1) % size);
        }
        self.queues[queue].next_desc = (head + buffers.len() as u16) % size;
        self.publish(queue, head);
        head
    }

    /// Puts `head` in the next avail ring slot and bumps the avail index.
    pub fn publish(&mut self, queue: usize, head: u16) {
        let q = &self.queues[queue];
        let slot = q.avail + 4 + 2 * u64::from(q.avail_idx % q.size);
        self.mem.write_obj(head, GuestAddress(slot)).unwrap();
        let idx = q.avail_idx.wrapping_add(1);
        self.set_avail_idx(queue, idx);
    }

    /// Writes the avail index directly (e.g. to make it jump).
    pub fn set_avail_idx(&mut self, queue: usize, idx: u16) {
        self.queues[queue].avail_idx = idx;
        self.mem.write_obj(idx, GuestAddress(self.queues[queue].avail + 2)).unwrap();
    }

    /// Writes the avail ring's used_event field (VIRTIO_RING_F_EVENT_IDX):
    /// the driver wants an interrupt once the used index passes `idx`.
    pub fn set_used_event(&mut self, queue: usize, idx: u16) {
        let q = &self.queues[queue];
        let at = q.avail + 4 + 2 * u64::from(q.size);
        self.mem.write_obj(idx, GuestAddress(at)).unwrap();
    }

    /// Notifies the queue through the transport and runs the device's
    /// event loop until it has nothing left to do.
    pub fn notify(&mut self, queue: u32) {
        self.write_reg(REG_QUEUE_NOTIFY, queue);
        self.run_events();
    }

    /// Writes the queue's notify register without running the loop.
    pub fn kick(&mut self, queue: u32) {
        self.write_reg(REG_QUEUE_NOTIFY, queue);
    }

    /// One turn of the (possibly shared) event loop: every ready event served once.
    pub fn run_turn(&mut self) {
        self.events.borrow_mut().run_with_timeout(10).unwrap();
    }

    /// Serves the events ready now, without waiting; returns how many there were (0: the
    /// device left the loop idle).
    pub fn run_turn_count(&mut self) -> usize {
        self.events.borrow_mut().run_with_timeout(0).unwrap()
    }

    /// Runs the loop while events are ready, without waiting for more (every event a
    /// test or fuzz input causes is ready at once); panics if it never settles.
    pub fn run_ready(&mut self) {
        for _ in 0..1000 {
            if self.events.borrow_mut().run_with_timeout(0).unwrap() == 0 {
                return;
            }
        }
        panic!("device event loop does not settle");
    }

    /// Panics if the loop never settles: a device that keeps an fd readable
    /// without consuming it would spin the real event loop forever.
    pub fn run_events(&mut self) {
        for _ in 0..1000 {
            if self.events.borrow_mut().run_with_timeout(10).unwrap() == 0 {
                return;
            }
        }
        panic!("device event loop does not settle");
    }

    /// Used-ring entries (descriptor head, bytes written) added since the last call.
    pub fn used(&mut self, queue: usize) -> Vec<(u32, u32)> {
        let q = &self.queues[queue];
        let idx: u16 = self.mem.read_obj(GuestAddress(q.used + 2)).unwrap();
        let mut out = Vec::new();
        let mut seen = q.used_seen;
        while seen != idx {
            let elem = q.used + 4 + 8 * u64::from(seen % q.size);
            let id: u32 = self.mem.read_obj(GuestAddress(elem)).unwrap();
            let len: u32 = self.mem.read_obj(GuestAddress(elem + 4)).unwrap();
            out.push((id, len));
            seen = seen.wrapping_add(1);
        }
        self.queues[queue].used_seen = seen;
        out
    }

    /// The used ring's index as the device last wrote it.
    pub fn used_idx(&self, queue: usize) -> u16 {
        self.mem.read_obj(GuestAddress(self.queues[queue].used + 2)).unwrap()
    }

    pub fn read_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    /// True if the device raised its interrupt since the last call.
    pub fn interrupted(&self) -> bool {
        self.irq.read().is_ok()
    }

    /// How many times the device raised its interrupt since the last call (the irqfd
    /// counts its writes).
    pub fn interrupts(&self) -> u64 {
        self.irq.read().unwrap_or(0)
    }

    /// The used ring's avail_event field (VIRTIO_RING_F_EVENT_IDX): the
    /// device wants a notification once the avail index passes it.
    pub fn avail_event(&self, queue: usize) -> u16 {
        let q = &self.queues[queue];
        self.mem.read_obj(GuestAddress(q.used + 4 + 8 * u64::from(q.size))).unwrap()
    }
}

/// Helpers added for virtio-console's tests.
impl TestDriver {
    /// Reserves a buffer holding `data`.
    pub fn alloc_with(&mut self, data: &[u8]) -> u64 {
        let addr = self.alloc(data.len() as u32, 0);
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
        addr
    }

    /// Writes the avail ring's flags (1: VRING_AVAIL_F_NO_INTERRUPT).
    pub fn set_avail_flags(&mut self, queue: usize, flags: u16) {
        self.mem.write_obj(flags, GuestAddress(self.queues[queue].avail)).unwrap();
    }
}
