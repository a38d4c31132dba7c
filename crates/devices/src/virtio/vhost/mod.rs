//! Devices whose data path is the host kernel's vhost (vhost-vsock,
//! vhost-net), through rust-vmm's `vhost` crate.
//!
//! Set-up splits by thread. Opening the vhost device, `VHOST_SET_OWNER`
//! and the device's identity (the vsock CID, the net tap) happen when the
//! VM is built, so that a CID in use or a missing module is a start-up
//! error. Everything after the driver's DRIVER_OK (features, memory table,
//! vrings, start and stop) happens on the device thread, in the handler of
//! the activation wake-up: vhost ioctls never run on a vCPU thread.
//!
//! The kernel reads the guest's kicks straight from the queues' ioeventfds.
//! Its "call" eventfds are not KVM irqfds: virtio-mmio's interrupt status
//! register must say why the interrupt came, so the device thread relays
//! each call into the transport's `Interrupt` (as QEMU does for vhost on
//! virtio-mmio).

pub mod fs;
pub mod net;
pub mod vsock;

use super::{ActivateContext, Activation};
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Virtqueue;
use ::vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use event_manager::{EventOps, EventSet, Events};

pub use crate::virtio::errors::VhostError;
use vm_memory::{Address, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Event data of the call eventfds on the device thread: after any queue index (a
/// multiqueue vhost-net has up to 513 queues).
const CALL_DATA: u32 = 0x1_0000;

/// The backend's "call" eventfds, one per queue, and their relay into the transport's
/// interrupt on the device thread (see above).
pub struct CallRelay {
    calls: Vec<EventFd>,
}

impl CallRelay {
    pub fn new(queues: usize) -> std::io::Result<CallRelay> {
        let calls = (0..queues).map(|_| EventFd::new(EFD_NONBLOCK)).collect::<Result<_, _>>()?;
        Ok(CallRelay { calls })
    }

    /// What `start_vrings` hands the backend.
    pub fn eventfds(&self) -> &[EventFd] {
        &self.calls
    }

    /// Watches every call eventfd; `who` names the device in an error.
    pub fn watch(&self, ops: &mut EventOps, who: &str) {
        for (i, call) in self.calls.iter().enumerate() {
            if let Err(e) = ops.add(Events::with_data(call, CALL_DATA + i as u32, EventSet::IN)) {
                log::error!("{who}: cannot watch the backend's interrupts: {e:?}");
            }
        }
    }

    /// If `events` is a call: consumes it, raises the used-queue interrupt of the active
    /// device and returns true.
    pub fn relay(&self, events: &Events, activation: &Activation) -> bool {
        let index = events.data().checked_sub(CALL_DATA).map(|i| i as usize);
        let Some(call) = index.and_then(|i| self.calls.get(i)) else { return false };
        let _ = call.read();
        if let Some(ctx) = &activation.active {
            ctx.interrupt.signal_used_queue();
        }
        true
    }
}

impl CallRelay {
    /// Relays every call the backend made that the device thread has not yet relayed
    /// (it is parked for a snapshot): the interrupt status the transport then saves
    /// includes them, so the restored guest is not left waiting for used buffers.
    pub fn relay_pending(&self, activation: &Activation) {
        // Every eventfd is read (no short cut): each pending call is consumed.
        let pending = self.calls.iter().filter(|call| call.read().is_ok()).count() > 0;
        if let (true, Some(ctx)) = (pending, &activation.active) {
            ctx.interrupt.signal_used_queue();
        }
    }
}

fn ioctl(op: &'static str) -> impl FnOnce(::vhost::Error) -> VhostError {
    move |source| VhostError::Ioctl { op, source }
}

/// The guest's RAM as the kernel's vhost memory table describes it.
pub fn memory_table(mem: &GuestMemoryMmap) -> Vec<VhostUserMemoryRegionInfo> {
    mem.iter()
        .map(|region| VhostUserMemoryRegionInfo {
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
            mmap_offset: region.file_offset().map_or(0, |f| f.start()),
            mmap_handle: region.file_offset().map_or(-1, |f| std::os::fd::AsRawFd::as_raw_fd(f.file())),
        })
        .collect()
}

/// The split-ring layout of `queue` (virtio 1.x §2.7), checked to lie in
/// guest RAM: the kernel translates only each ring's start address, so a
/// ring running off its region would have it touch whatever follows.
pub fn vring_config(mem: &GuestMemoryMmap, index: usize, queue: &Virtqueue) -> Result<VringConfigData, VhostError> {
    let size = u64::from(queue.size());
    let rings = [
        ("descriptor table", queue.desc_table(), 16 * size),
        ("available ring", queue.avail_ring(), 6 + 2 * size),
        ("used ring", queue.used_ring(), 6 + 8 * size),
    ];
    for (ring, addr, len) in rings {
        let inside = mem.find_region(GuestAddress(addr)).is_some_and(|r| {
            let offset = addr - r.start_addr().raw_value();
            offset.checked_add(len).is_some_and(|end| end <= r.len())
        });
        if !inside {
            return Err(VhostError::RingOutsideMemory { queue: index, ring, addr, len });
        }
    }
    Ok(VringConfigData {
        queue_max_size: queue.max_size(),
        queue_size: queue.size(),
        flags: 0,
        desc_table_addr: queue.desc_table(),
        used_ring_addr: queue.used_ring(),
        avail_ring_addr: queue.avail_ring(),
        log_addr: None,
    })
}

/// Which addresses the backend takes for the rings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RingAddresses {
    /// Guest-physical (the vhost crate translates them for the kernel).
    Guest,
    /// microvm's own virtual addresses (vhost-user: the backend maps them
    /// through the memory table's userspace_addr).
    Host,
}

/// Hands queues `0..calls.len()` of `ctx` to the backend: features, memory
/// table, then each vring's size, addresses, first index, call and kick.
pub fn start_vrings<B: VhostBackend>(
    backend: &B,
    ctx: &ActivateContext,
    features: u64,
    calls: &[EventFd],
    addresses: RingAddresses,
) -> Result<(), VhostError> {
    start_vrings_from(backend, ctx, 0, features, calls, addresses)
}

/// [`start_vrings`] for the backend that serves queues `first..first + calls.len()`
/// of `ctx` as its vrings 0.. (one /dev/vhost-net per queue pair of a multiqueue NIC).
pub fn start_vrings_from<B: VhostBackend>(
    backend: &B,
    ctx: &ActivateContext,
    first: usize,
    features: u64,
    calls: &[EventFd],
    addresses: RingAddresses,
) -> Result<(), VhostError> {
    let mut configs = calls
        .iter()
        .enumerate()
        .map(|(i, _)| vring_config(&ctx.mem, first + i, &ctx.queues[first + i]))
        .collect::<Result<Vec<_>, _>>()?;
    if addresses == RingAddresses::Host {
        for config in &mut configs {
            for addr in [&mut config.desc_table_addr, &mut config.avail_ring_addr, &mut config.used_ring_addr] {
                // vring_config checked that each ring lies in one region.
                *addr = ctx.mem.get_host_address(GuestAddress(*addr)).map_or(0, |p| p as u64);
            }
        }
    }
    backend.set_features(features).map_err(ioctl("VHOST_SET_FEATURES"))?;
    backend.set_mem_table(&memory_table(&ctx.mem)).map_err(ioctl("VHOST_SET_MEM_TABLE"))?;
    for (i, (config, call)) in configs.iter().zip(calls).enumerate() {
        backend.set_vring_num(i, config.queue_size).map_err(ioctl("VHOST_SET_VRING_NUM"))?;
        backend.set_vring_addr(i, config).map_err(ioctl("VHOST_SET_VRING_ADDR"))?;
        backend.set_vring_base(i, ctx.queues[first + i].next_avail()).map_err(ioctl("VHOST_SET_VRING_BASE"))?;
        backend.set_vring_call(i, call).map_err(ioctl("VHOST_SET_VRING_CALL"))?;
        backend.set_vring_kick(i, &ctx.queue_events[first + i]).map_err(ioctl("VHOST_SET_VRING_KICK"))?;
    }
    Ok(())
}

/// For a snapshot, with the backend stopped (so the kernel no longer moves the rings):
/// brings the positions of queues `0..count` back into `ctx`'s queues, where the
/// transport saves them and where `start_vrings` takes them from when the backend is
/// started again. The kernel holds the next avail index (VHOST_GET_VRING_BASE); the
/// next used index is the used ring's, in guest memory (the kernel reads it from there
/// too when it starts).
pub fn fetch_vring_bases<B: VhostBackend>(
    backend: &B,
    ctx: &mut ActivateContext,
    count: usize,
) -> Result<(), VhostError> {
    fetch_vring_bases_from(backend, ctx, 0, count)
}

/// [`fetch_vring_bases`] for the backend whose vrings 0.. are `ctx`'s queues `first..`.
pub fn fetch_vring_bases_from<B: VhostBackend>(
    backend: &B,
    ctx: &mut ActivateContext,
    first: usize,
    count: usize,
) -> Result<(), VhostError> {
    for (vring, queue) in ctx.queues.iter_mut().skip(first).take(count).enumerate() {
        let i = first + vring;
        let base = backend.get_vring_base(vring).map_err(ioctl("VHOST_GET_VRING_BASE"))?;
        queue.set_next_avail(base as u16);
        let used = queue.used_idx(&ctx.mem, std::sync::atomic::Ordering::Acquire).map_err(|_| {
            VhostError::RingOutsideMemory { queue: i, ring: "used ring", addr: queue.used_ring(), len: 4 }
        })?;
        queue.set_next_used(used.0);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fake;
