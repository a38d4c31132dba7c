//! The virtio-mmio transport, register layout version 2 (virtio 1.x §4.2.2).
//! Every value the guest writes is checked here before a device sees it.

pub mod saved;
mod state;

pub use saved::TransportState;

use super::queue::{Virtqueue, VIRTIO_F_RING_PACKED};
use super::{status, ActivateContext, Interrupt, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::bus::BusDevice;
use crate::guest_memory::GuestMemoryMmap;
use crate::state::{DeviceState, StateError};
use std::sync::{Arc, Mutex, MutexGuard};
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

const MAGIC_VALUE: u32 = 0x7472_6976; // "virt"
const MMIO_VERSION: u32 = 2;
/// Vendor id reported to the guest ("MVM" + 0); drivers do not look at it.
const VENDOR_ID: u32 = 0x004d_564d;

// Register offsets.
const REG_MAGIC: u64 = 0x000;
const REG_VERSION: u64 = 0x004;
const REG_DEVICE_ID: u64 = 0x008;
const REG_VENDOR_ID: u64 = 0x00c;
const REG_DEVICE_FEATURES: u64 = 0x010;
const REG_DEVICE_FEATURES_SEL: u64 = 0x014;
const REG_DRIVER_FEATURES: u64 = 0x020;
const REG_DRIVER_FEATURES_SEL: u64 = 0x024;
const REG_QUEUE_SEL: u64 = 0x030;
const REG_QUEUE_NUM_MAX: u64 = 0x034;
const REG_QUEUE_NUM: u64 = 0x038;
const REG_QUEUE_READY: u64 = 0x044;
/// The guest's notify register. Its offset is what the VMM registers as
/// the ioeventfd address, with the queue index as datamatch.
pub const REG_QUEUE_NOTIFY: u64 = 0x050;
const REG_INTERRUPT_STATUS: u64 = 0x060;
const REG_INTERRUPT_ACK: u64 = 0x064;
const REG_STATUS: u64 = 0x070;
const REG_QUEUE_DESC_LOW: u64 = 0x080;
const REG_QUEUE_DESC_HIGH: u64 = 0x084;
const REG_QUEUE_AVAIL_LOW: u64 = 0x090;
const REG_QUEUE_AVAIL_HIGH: u64 = 0x094;
const REG_QUEUE_USED_LOW: u64 = 0x0a0;
const REG_QUEUE_USED_HIGH: u64 = 0x0a4;
const REG_CONFIG_GENERATION: u64 = 0x0fc;
const CONFIG_SPACE: u64 = 0x100;

pub struct MmioTransport {
    device: Arc<Mutex<dyn VirtioDevice>>,
    mem: GuestMemoryMmap,
    interrupt: Arc<Interrupt>,
    queue_events: Vec<EventFd>,
    queues: Vec<Queue>,
    /// A queue the driver gave a size the device cannot use (virtio-queue
    /// would silently keep the old size, and the rings would disagree).
    bad_queue_size: Vec<bool>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    acked_features: u64,
    queue_sel: u32,
    activated: bool,
    /// Set once a bad access has been logged, so a misbehaving guest cannot
    /// flood the host log.
    complained: bool,
    /// `packed=on`: VIRTIO_F_RING_PACKED is offered.
    packed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("device has {queues} queues but {events} queue events were given")]
    QueueEvents { queues: usize, events: usize },
    #[error("invalid queue size {0}")]
    QueueSize(u16),
}

impl MmioTransport {
    /// `queue_events` are the ioeventfds the VMM registered for this slot's
    /// notify register, one per queue of the device.
    pub fn new(
        device: Arc<Mutex<dyn VirtioDevice>>,
        mem: GuestMemoryMmap,
        interrupt: Arc<Interrupt>,
        queue_events: Vec<EventFd>,
    ) -> Result<Self, TransportError> {
        let sizes: Vec<u16> = lock(&device).queue_max_sizes().to_vec();
        if sizes.len() != queue_events.len() {
            return Err(TransportError::QueueEvents { queues: sizes.len(), events: queue_events.len() });
        }
        let queues = sizes
            .iter()
            .map(|&max| Queue::new(max).map_err(|_| TransportError::QueueSize(max)))
            .collect::<Result<_, _>>()?;
        Ok(MmioTransport {
            device,
            mem,
            interrupt,
            queue_events,
            bad_queue_size: vec![false; sizes.len()],
            queues,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            acked_features: 0,
            queue_sel: 0,
            activated: false,
            complained: false,
            packed: false,
        })
    }

    /// `packed=on`: offers the packed ring layout (VIRTIO_F_RING_PACKED); the driver's
    /// choice decides each activation's layout. Off by default, as in QEMU.
    pub fn offer_packed_ring(&mut self, on: bool) {
        self.packed = on;
    }

    pub fn offers_packed_ring(&self) -> bool {
        self.packed
    }

    /// What the device offers, with the transport's own bits.
    fn offered_features(&self) -> u64 {
        let packed = if self.packed { VIRTIO_F_RING_PACKED } else { 0 };
        lock(&self.device).features() | VIRTIO_F_VERSION_1 | packed
    }

    pub fn device(&self) -> &Arc<Mutex<dyn VirtioDevice>> {
        &self.device
    }

    fn complain(&mut self, what: String) {
        if !self.complained {
            log::warn!("virtio-mmio: {what} (further guest errors on this device are not logged)");
            self.complained = true;
        }
    }

    /// The selected queue, if queue set-up is still allowed.
    fn selected_queue(&mut self) -> Option<&mut Queue> {
        if self.activated || self.status & status::DRIVER_OK != 0 {
            return None;
        }
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn read_register(&self, offset: u64) -> u32 {
        match offset {
            REG_MAGIC => MAGIC_VALUE,
            REG_VERSION => MMIO_VERSION,
            REG_DEVICE_ID => lock(&self.device).device_type(),
            REG_VENDOR_ID => VENDOR_ID,
            REG_DEVICE_FEATURES => {
                let features = self.offered_features();
                match self.device_features_sel {
                    0 => features as u32,
                    1 => (features >> 32) as u32,
                    _ => 0,
                }
            }
            REG_QUEUE_NUM_MAX => self.queues.get(self.queue_sel as usize).map_or(0, |q| u32::from(q.max_size())),
            REG_QUEUE_READY => self.queues.get(self.queue_sel as usize).map_or(0, |q| u32::from(q.ready())),
            REG_INTERRUPT_STATUS => self.interrupt.status(),
            REG_STATUS if self.interrupt.needs_reset() => self.status | status::DEVICE_NEEDS_RESET,
            REG_STATUS => self.status,
            REG_CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            REG_DEVICE_FEATURES_SEL => self.device_features_sel = value,
            REG_DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            REG_DRIVER_FEATURES if self.status & status::FEATURES_OK == 0 => {
                let shift = match self.driver_features_sel {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                self.acked_features = (self.acked_features & !(0xffff_ffffu64 << shift)) | (u64::from(value) << shift);
            }
            REG_QUEUE_SEL => self.queue_sel = value,
            REG_QUEUE_NUM => {
                let index = self.queue_sel as usize;
                if let Some(q) = self.selected_queue() {
                    let size = u16::try_from(value).unwrap_or(0);
                    q.set_size(size);
                    let refused = q.size() != size || size == 0;
                    self.bad_queue_size[index] = refused;
                }
            }
            REG_QUEUE_READY => {
                if let Some(q) = self.selected_queue() {
                    q.set_ready(value == 1);
                }
            }
            REG_QUEUE_DESC_LOW => self.set_queue_address(|q, v| q.set_desc_table_address(Some(v), None), value),
            REG_QUEUE_DESC_HIGH => self.set_queue_address(|q, v| q.set_desc_table_address(None, Some(v)), value),
            REG_QUEUE_AVAIL_LOW => self.set_queue_address(|q, v| q.set_avail_ring_address(Some(v), None), value),
            REG_QUEUE_AVAIL_HIGH => self.set_queue_address(|q, v| q.set_avail_ring_address(None, Some(v)), value),
            REG_QUEUE_USED_LOW => self.set_queue_address(|q, v| q.set_used_ring_address(Some(v), None), value),
            REG_QUEUE_USED_HIGH => self.set_queue_address(|q, v| q.set_used_ring_address(None, Some(v)), value),
            REG_QUEUE_NOTIFY => {
                // Normally caught by the ioeventfd in KVM; a notify that gets
                // here (e.g. an unregistered index) is forwarded by hand.
                match self.queue_events.get(value as usize) {
                    Some(evt) => {
                        let _ = evt.write(1);
                    }
                    None => self.complain(format!("notify for queue {value}, which does not exist")),
                }
            }
            REG_INTERRUPT_ACK => self.interrupt.ack(value),
            REG_STATUS => self.write_status(value),
            _ => self.complain(format!("write of {value:#x} to read-only or reserved register {offset:#x}")),
        }
    }

    fn set_queue_address(&mut self, set: impl FnOnce(&mut Queue, u32), value: u32) {
        if let Some(q) = self.selected_queue() {
            set(q, value);
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let added = value & !self.status;
        // The driver may only add bits (virtio 1.x §3.1.1), except via reset.
        if value & self.status != self.status {
            self.complain(format!("status {value:#x} clears bits of {:#x}", self.status));
            return;
        }
        let mut new_status = value & !status::DEVICE_NEEDS_RESET;
        if added & status::FEATURES_OK != 0 {
            let offered = self.offered_features();
            if self.acked_features & !offered != 0 || self.acked_features & VIRTIO_F_VERSION_1 == 0 {
                // Leaving FEATURES_OK unset tells the driver the features were refused.
                new_status &= !status::FEATURES_OK;
            }
        }
        self.status = new_status;
        if added & status::DRIVER_OK != 0 && self.status & status::FEATURES_OK != 0 && !self.activated {
            self.activate();
        }
    }

    fn activate(&mut self) {
        let sizes: Vec<u16> = self.queues.iter().map(|q| q.max_size()).collect();
        let active = lock(&self.device).active_queues(self.acked_features).min(self.queues.len());
        let packed = self.acked_features & VIRTIO_F_RING_PACKED != 0;
        let usable = |(i, q): (usize, &Queue)| {
            q.ready() && !self.bad_queue_size[i] && Virtqueue::registers_valid(q, packed, &self.mem)
        };
        if let Some(index) = self.queues[..active].iter().enumerate().position(|iq| !usable(iq)) {
            self.complain(format!("queue {index} is not ready or not valid at DRIVER_OK"));
            self.needs_reset();
            return;
        }
        let mut events = Vec::with_capacity(active);
        for evt in &self.queue_events[..active] {
            match evt.try_clone() {
                Ok(e) => events.push(e),
                Err(e) => {
                    log::error!("virtio-mmio: cannot hand queue events to the device: {e}");
                    self.needs_reset();
                    return;
                }
            }
        }
        // The transport keeps fresh queues for a later reset and re-activation.
        let mut queues =
            std::mem::replace(&mut self.queues, sizes.iter().filter_map(|&max| Queue::new(max).ok()).collect());
        queues.truncate(active);
        let ctx = ActivateContext {
            mem: self.mem.clone(),
            acked_features: self.acked_features,
            queues: queues.into_iter().map(|q| Virtqueue::from_registers(q, packed)).collect(),
            queue_events: events,
            interrupt: self.interrupt.clone(),
        };
        let activated = lock(&self.device).activate(ctx);
        match activated {
            Ok(()) => self.activated = true,
            Err(e) => {
                log::error!("virtio-mmio: device activation failed: {e}");
                self.needs_reset();
            }
        }
    }

    fn needs_reset(&mut self) {
        self.interrupt.signal_needs_reset();
    }

    fn reset(&mut self) {
        if self.activated && !lock(&self.device).reset() {
            self.complain("device cannot be reset after activation".into());
            self.interrupt.signal_needs_reset();
            return;
        }
        self.activated = false;
        self.status = 0;
        self.acked_features = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.bad_queue_size.fill(false);
        self.interrupt.clear();
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_SPACE {
            lock(&self.device).read_config(offset - CONFIG_SPACE, data);
            return;
        }
        data.fill(0);
        if data.len() != 4 || offset % 4 != 0 {
            self.complain(format!("{}-byte read of register {offset:#x}", data.len()));
            return;
        }
        data.copy_from_slice(&self.read_register(offset).to_le_bytes());
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= CONFIG_SPACE {
            lock(&self.device).write_config(offset - CONFIG_SPACE, data);
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            self.complain(format!("{}-byte write to register {offset:#x}", data.len()));
            return;
        };
        if offset % 4 != 0 {
            self.complain(format!("unaligned write to register {offset:#x}"));
            return;
        }
        self.write_register(offset, u32::from_le_bytes(bytes));
    }

    fn save(&mut self) -> Result<DeviceState, StateError> {
        self.save_state()
    }

    fn restore(&mut self, state: DeviceState) -> Result<(), StateError> {
        self.restore_state(state)
    }
}

fn lock(device: &Mutex<dyn VirtioDevice>) -> MutexGuard<'_, dyn VirtioDevice + 'static> {
    device.lock().unwrap_or_else(|p| p.into_inner())
}
