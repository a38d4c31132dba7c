//! The hand-over of queues from the transport (vCPU thread) to the device's
//! event handler (event loop thread).

use super::{ActivateContext, ActivateError};
use event_manager::{EventOps, EventSet, Events};
use std::os::fd::AsRawFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// A device keeps one of these: `activate` stores the context and wakes the
/// event loop through `wake`, whose handler then watches the queue events.
/// The event loop can only change what it watches from inside its own
/// callbacks, hence the wake-up eventfd.
pub struct Activation {
    wake: EventFd,
    pub active: Option<ActivateContext>,
    /// Queue events of a reset device, kept open until the event loop has
    /// stopped watching them: closing them first would leave epoll holding
    /// registrations for fds the transport still signals (a spinning loop),
    /// or for fd numbers reused by another device.
    retired: Vec<EventFd>,
}

impl Activation {
    pub fn new() -> std::io::Result<Self> {
        Ok(Activation { wake: EventFd::new(EFD_NONBLOCK)?, active: None, retired: Vec::new() })
    }

    /// The queues of the active device (for `VirtioDevice::active_queues_now`).
    pub fn queues(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.active.as_ref().map(|ctx| ctx.queues.as_slice())
    }

    /// Called by the transport, on a vCPU thread.
    pub fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.active = Some(ctx);
        self.wake.write(1).map_err(ActivateError::Wake)
    }

    /// Makes the event loop run the device's wake-up handler on its next turn (a vhost
    /// device stopped for a snapshot restarts its backend there).
    pub fn wake(&self) {
        if let Err(e) = self.wake.write(1) {
            log::error!("virtio: cannot wake the device event loop: {e}");
        }
    }

    /// Drops the queues (device reset) and asks the event loop to stop
    /// watching their events.
    pub fn deactivate(&mut self) {
        if let Some(ctx) = self.active.take() {
            self.retired.extend(ctx.queue_events);
            if let Err(e) = self.wake.write(1) {
                log::error!("virtio: cannot wake the device event loop: {e}");
            }
        }
    }

    /// For the device's `MutEventSubscriber::init`.
    pub fn watch_wake(&self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.wake, EventSet::IN)) {
            log::error!("virtio: cannot watch the activation event: {e:?}");
        }
    }

    pub fn is_wake_event(&self, events: &Events) -> bool {
        events.fd() == self.wake.as_raw_fd()
    }

    /// The dispatch of a one-queue device (block, rng, 9p) for an event that is not one
    /// of its own fds: its activation's wake-up (handled here) or its queue's
    /// notification (read here).
    pub fn single_queue_turn(&mut self, events: &Events, ops: &mut EventOps) -> QueueTurn {
        if self.is_wake_event(events) {
            return QueueTurn::Woken { active: self.on_wake(ops) };
        }
        if let Some(ctx) = &self.active {
            let _ = ctx.queue_events[0].read();
        }
        QueueTurn::Kicked
    }

    /// Handles the wake-up: starts watching every queue event, each with its
    /// queue index as the event data. Returns true if the device is active.
    pub fn on_wake(&mut self, ops: &mut EventOps) -> bool {
        self.on_wake_watching(ops, |_| true)
    }

    /// [`Self::on_wake`] watching only the queues `watched` selects: a vhost
    /// device leaves the events of the queues the kernel serves to the
    /// kernel (reading them here would steal its kicks).
    pub fn on_wake_watching(&mut self, ops: &mut EventOps, watched: impl Fn(usize) -> bool) -> bool {
        let _ = self.wake.read();
        for evt in self.retired.drain(..) {
            // Fails, harmlessly, for the events that were never watched.
            let _ = ops.remove(Events::new(&evt, EventSet::IN));
        }
        let Some(ctx) = &self.active else { return false };
        for (index, evt) in ctx.queue_events.iter().enumerate().filter(|(i, _)| watched(*i)) {
            let _ = ops.add(Events::with_data(evt, index as u32, EventSet::IN));
        }
        true
    }
}

/// What [`Activation::single_queue_turn`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueTurn {
    /// The activation's wake-up; `active`: the device now has its queue.
    Woken { active: bool },
    /// The guest notified the queue.
    Kicked,
}

impl QueueTurn {
    /// Whether the device serves its queue now: when activated, or when kicked unless it
    /// met a corrupt ring (`broken`, which only a reset and a new activation clear).
    pub fn serves(self, broken: bool) -> bool {
        match self {
            QueueTurn::Woken { active } => active,
            QueueTurn::Kicked => !broken,
        }
    }
}
