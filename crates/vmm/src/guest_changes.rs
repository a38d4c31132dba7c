//! The guest's changes the monitors announce (QMP BALLOON_CHANGE, VSERPORT_CHANGE): the
//! devices queue them (`devices::guest_events`), the main loop turns them into VM events
//! and sends them through QEMU's rate limit, whose held events a timer releases.

use crate::control::{VmEvent, VmEventKind};
use crate::monitor::RateLimit;
use devices::guest_events::{GuestEvent, GuestEvents};
use devices::oneshot_timer::OneShotTimer;
use devices::virtio::balloon::PAGE_SIZE;
use event_manager::{EventOps, EventSet, Events};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

pub struct GuestChanges {
    queue: Arc<GuestEvents>,
    limit: RateLimit,
    timer: OneShotTimer,
}

impl GuestChanges {
    pub fn new(queue: Arc<GuestEvents>) -> io::Result<GuestChanges> {
        Ok(GuestChanges { queue, limit: RateLimit::default(), timer: OneShotTimer::new()? })
    }

    pub fn init(&self, ops: &mut EventOps) {
        for fd in [self.queue.eventfd().as_raw_fd(), self.timer.as_raw_fd()] {
            if let Err(e) = ops.add(Events::new_raw(fd, EventSet::IN)) {
                log::error!("event loop: cannot watch the guest's changes (fd {fd}): {e:?}");
            }
        }
    }

    /// Serves `fd` if it is the queue's or the timer's: the queued changes, as the events
    /// that announce them (`mem_size`: the guest's RAM, for the balloon's `actual`).
    pub fn process(&mut self, fd: RawFd, mem_size: u64) -> Option<Vec<VmEventKind>> {
        if fd == self.timer.as_raw_fd() {
            devices::oneshot_timer::acknowledge_expiry(fd);
            return Some(Vec::new());
        }
        if fd != self.queue.eventfd().as_raw_fd() {
            return None;
        }
        let kind = |event| match event {
            GuestEvent::BalloonActual { pages } => {
                VmEventKind::BalloonChange { actual: mem_size.saturating_sub(u64::from(pages) * PAGE_SIZE) }
            }
            GuestEvent::PortOpen { id, open } => VmEventKind::VserportChange { id, open },
        };
        Some(self.queue.take().into_iter().map(kind).collect())
    }

    /// What to send now: events held past their second, then `events` less those the
    /// rate limit holds; the timer is set for the next held one. Once the VM has `ended`,
    /// everything held goes out with `events`: clients learn the last state before
    /// SHUTDOWN (QEMU drops what its limit still holds at exit).
    pub fn limit(&mut self, events: Vec<VmEvent>, ended: bool) -> Vec<VmEvent> {
        if ended {
            let mut out = self.limit.release_all();
            out.extend(events);
            return out;
        }
        let now = Instant::now();
        let mut out = self.limit.due(now);
        out.extend(self.limit.admit(events, now));
        let next = self.limit.next_deadline().map(|at| at.saturating_duration_since(now));
        if let Err(e) = self.timer.arm(next) {
            log::warn!("event loop: cannot set the event rate limit's timer: {e}");
        }
        out
    }
}
