//! Changes the guest makes that the monitors announce: QMP's BALLOON_CHANGE and
//! VSERPORT_CHANGE. The devices see them on a vCPU thread (a configuration write) or the
//! device thread (a control message); the monitors live on the main thread. A device
//! queues the change here and wakes the main loop through the eventfd, which then takes
//! the queue.
//!
//! At most two changes are queued for the same thing (the same balloon, the same port):
//! the first one and the latest, which replaces any in between. That is what QEMU's rate
//! limit lets through of a burst (the first at once, the last when its second ends;
//! microvm's main loop applies the same limit), so a guest that opens and closes a port
//! before the main loop takes the queue is still announced open then closed, and a guest
//! repeating a change in a loop cannot grow the queue.

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

    /// Queues `event` (after the first queued for the same thing, replacing a later one)
    /// and wakes the main loop.
    pub fn send(&self, event: GuestEvent) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut same = queue.iter_mut().filter(|queued| queued.same_subject(&event));
        match (same.next(), same.next()) {
            (Some(_), Some(latest)) => *latest = event,
            _ => queue.push(event),
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
    fn the_first_and_the_latest_change_of_each_thing_are_kept() {
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
                GuestEvent::PortOpen { id: "a".into(), open: true },
                GuestEvent::BalloonActual { pages: 1 },
                GuestEvent::PortOpen { id: "b".into(), open: true },
                GuestEvent::PortOpen { id: "a".into(), open: false },
                GuestEvent::BalloonActual { pages: 7 },
            ]
        );
        assert!(events.take().is_empty());
        assert!(events.eventfd().read().is_err(), "taking clears the wake-up");
    }
}
