//! Changes the guest makes that the monitors announce: QMP's BALLOON_CHANGE and
//! VSERPORT_CHANGE. The devices see them on a vCPU thread (a configuration write) or the
//! device thread (a control message); the monitors live on the main thread. A device
//! queues the change here and wakes the main loop through the eventfd, which then takes
//! the queue.
//!
//! A change replaces a queued one for the same thing (the same balloon, the same port):
//! the monitors only ever owe clients the latest state, and a guest repeating a change in
//! a loop cannot grow the queue (QEMU's monitor rate-limits these events for the same
//! reason; microvm's main loop does too).

use std::io;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestEvent {
    /// The balloon driver reported the pages it holds (config `actual`).
    BalloonActual { pages: u32 },
    /// The guest opened or closed a virtio-serial port that has a device id.
    PortOpen { id: String, open: bool },
}

impl GuestEvent {
    /// Whether `other` says the same thing's state (so it replaces this one).
    fn same_subject(&self, other: &GuestEvent) -> bool {
        match (self, other) {
            (GuestEvent::BalloonActual { .. }, GuestEvent::BalloonActual { .. }) => true,
            (GuestEvent::PortOpen { id: a, .. }, GuestEvent::PortOpen { id: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// The queue between the devices and the main loop.
pub struct GuestEvents {
    queue: Mutex<Vec<GuestEvent>>,
    wake: EventFd,
}

impl GuestEvents {
    pub fn new() -> io::Result<Arc<GuestEvents>> {
        Ok(Arc::new(GuestEvents { queue: Mutex::new(Vec::new()), wake: EventFd::new(EFD_NONBLOCK)? }))
    }

    /// Queues `event` (replacing one queued for the same thing) and wakes the main loop.
    pub fn send(&self, event: GuestEvent) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match queue.iter_mut().find(|queued| queued.same_subject(&event)) {
            Some(queued) => *queued = event,
            None => queue.push(event),
        }
        // Only fails if the counter would overflow, and then the loop is awake anyway.
        let _ = self.wake.write(1);
    }

    /// Readable while changes wait.
    pub fn eventfd(&self) -> &EventFd {
        &self.wake
    }

    /// Every queued change, oldest first.
    pub fn take(&self) -> Vec<GuestEvent> {
        let _ = self.wake.read();
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_replaces_the_queued_one_for_the_same_thing_only() {
        let events = GuestEvents::new().unwrap();
        events.send(GuestEvent::PortOpen { id: "a".into(), open: true });
        events.send(GuestEvent::BalloonActual { pages: 1 });
        events.send(GuestEvent::PortOpen { id: "b".into(), open: true });
        for _ in 0..1000 {
            events.send(GuestEvent::PortOpen { id: "a".into(), open: false });
            events.send(GuestEvent::BalloonActual { pages: 7 });
        }
        assert_eq!(events.eventfd().read().unwrap(), 2003, "each change wakes the main loop");
        events.eventfd().write(1).unwrap();
        assert_eq!(
            events.take(),
            [
                GuestEvent::PortOpen { id: "a".into(), open: false },
                GuestEvent::BalloonActual { pages: 7 },
                GuestEvent::PortOpen { id: "b".into(), open: true },
            ]
        );
        assert!(events.take().is_empty());
        assert!(events.eventfd().read().is_err(), "taking clears the wake-up");
    }
}
