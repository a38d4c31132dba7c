//! The transport's part of a snapshot: its registers, every queue, the interrupt, and
//! the device's own state; and the restore that checks all of it against the rebuilt
//! device before anything changes.

use super::saved::TransportState;
use super::{lock, MmioTransport};
use crate::state::{DeviceState, StateError};
use crate::virtio::queue::{Virtqueue, VIRTIO_F_RING_PACKED};
use crate::virtio::{status, ActivateContext, SavedQueue, VIRTIO_F_VERSION_1};
use virtio_queue::{Queue, QueueState, QueueT};

impl MmioTransport {
    pub(super) fn save_state(&mut self) -> Result<DeviceState, StateError> {
        let mut device = lock(&self.device);
        // First: a vhost device brings its queues' positions back from the kernel here.
        let device_state = device.save()?;
        let taken = if self.activated { device.active_queues_now().unwrap_or(&[]) } else { &[] };
        let queues = self
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| taken.get(i).map_or_else(|| SavedQueue::from(q), SavedQueue::from))
            .collect();
        Ok(DeviceState::Virtio(TransportState {
            device_type: device.device_type(),
            status: self.status,
            device_features_sel: self.device_features_sel,
            driver_features_sel: self.driver_features_sel,
            acked_features: self.acked_features,
            queue_sel: self.queue_sel,
            activated: self.activated,
            interrupt_status: self.interrupt.status(),
            needs_reset: self.interrupt.needs_reset(),
            queues,
            bad_queue_size: self.bad_queue_size.clone(),
            device: device_state,
        }))
    }

    /// Checks `saved` against this (rebuilt, never driven) transport and its device, then
    /// loads it: a device that was active is activated again through its `activate`,
    /// with the restored queues, and then gets its own state.
    pub(super) fn restore_state(&mut self, state: DeviceState) -> Result<(), StateError> {
        let DeviceState::Virtio(saved) = state else { return Err(state.mismatch("virtio-mmio")) };
        // The queues and the device's activation are rebuilt from nothing: a device the
        // guest already set up would be activated twice.
        if self.activated || self.status != 0 {
            return Err(StateError::InUse { device: "virtio-mmio" });
        }
        let mut device = lock(&self.device);
        let device_type = device.device_type();
        if saved.device_type != device_type {
            let (saved, now) = (u64::from(saved.device_type), u64::from(device_type));
            return Err(StateError::Config { device: "virtio-mmio", what: "device type", saved, now });
        }
        let n = self.queues.len();
        if saved.queues.len() != n || saved.bad_queue_size.len() != n {
            return Err(StateError::QueueCount { saved: saved.queues.len(), now: n });
        }
        // Before FEATURES_OK the driver may have written anything (the transport refuses
        // it then): only accepted features must be offered.
        let offered = device.features() | VIRTIO_F_VERSION_1 | if self.packed { VIRTIO_F_RING_PACKED } else { 0 };
        if saved.status & status::FEATURES_OK != 0 && saved.acked_features & !offered != 0 {
            return Err(StateError::Features { acked: saved.acked_features, offered });
        }
        let active = if saved.activated { device.active_queues(saved.acked_features).min(n) } else { 0 };
        // Only an accepted feature set says the layout (the check above holds it).
        let packed = saved.status & status::FEATURES_OK != 0 && saved.acked_features & VIRTIO_F_RING_PACKED != 0;
        let mut queues = Vec::with_capacity(n);
        for (index, (q, now)) in saved.queues.iter().zip(&self.queues).enumerate() {
            queues.push(restored_queue(index, q, now.max_size(), index < active && packed, index < active, &self.mem)?);
        }
        if saved.activated {
            let ok = status::FEATURES_OK | status::DRIVER_OK;
            if saved.status & ok != ok {
                return Err(StateError::Invalid { device: "virtio-mmio", what: "status (active without DRIVER_OK)" });
            }
        }
        let mut events = Vec::with_capacity(active);
        for evt in &self.queue_events[..active] {
            let evt = evt.try_clone().map_err(|source| StateError::Backend {
                device: "virtio-mmio",
                op: "cannot hand queue events to the device",
                source,
            })?;
            events.push(evt);
        }

        self.status = saved.status;
        self.device_features_sel = saved.device_features_sel;
        self.driver_features_sel = saved.driver_features_sel;
        self.acked_features = saved.acked_features;
        self.queue_sel = saved.queue_sel;
        self.bad_queue_size = saved.bad_queue_size;
        if saved.activated {
            // As at DRIVER_OK: the device takes the queues in use, the transport keeps
            // fresh ones for a later reset and re-activation (and the optional ones).
            let taken = queues.drain(..active).map(|q| Virtqueue::from_registers(q, packed)).collect();
            let fresh = self.queues[..active].iter().filter_map(|q| Queue::new(q.max_size()).ok());
            self.queues = fresh.chain(queues).collect();
            let ctx = ActivateContext {
                mem: self.mem.clone(),
                acked_features: saved.acked_features,
                queues: taken,
                queue_events: events,
                interrupt: self.interrupt.clone(),
            };
            device.activate(ctx).map_err(StateError::Activate)?;
            self.activated = true;
        } else {
            self.queues = queues;
        }
        device.restore(saved.device)?;
        drop(device);
        self.interrupt.restore(saved.interrupt_status, saved.needs_reset);
        Ok(())
    }
}

/// A saved queue checked against the rebuilt device's queue of the same index and, if
/// the device is `in_use` of it, against guest memory (its rings must lie in it; before
/// DRIVER_OK a driver may have left any address there, which the transport checks then).
fn restored_queue(
    index: usize,
    q: &SavedQueue,
    max_size: u16,
    packed: bool,
    in_use: bool,
    mem: &crate::guest_memory::GuestMemoryMmap,
) -> Result<Queue, StateError> {
    let invalid = |why| StateError::InvalidQueue { index, why };
    if q.max_size != max_size {
        return Err(invalid("its maximum size differs from the rebuilt device's"));
    }
    if q.size == 0 || q.size > max_size || !q.size.is_power_of_two() {
        return Err(invalid("its size is not a power of two no larger than the maximum"));
    }
    let queue = Queue::try_from(QueueState::from(*q)).map_err(|_| invalid("a ring address is misaligned"))?;
    if in_use && !q.ready {
        return Err(invalid("not ready, but the device was using it"));
    }
    if in_use && !Virtqueue::registers_valid(&queue, packed, mem) {
        return Err(invalid("its rings are not inside guest memory"));
    }
    Ok(queue)
}
