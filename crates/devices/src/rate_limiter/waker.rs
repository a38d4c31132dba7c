//! The device side of a rate limiter: the clock its buckets read and the timer that wakes
//! the device thread when a blocked bucket has refilled.

use crate::oneshot_timer::{acknowledge_expiry, OneShotTimer};
use event_manager::{EventOps, EventSet, Events};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// One per limited device: a monotonic clock and a one-shot timerfd. While the timer is
/// armed the device is blocked, and it serves nothing until the timer fires (a guest kick
/// meanwhile finds the budget still short, so it is not worth looking).
pub struct Waker {
    origin: Instant,
    timer: OneShotTimer,
    blocked: bool,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        Ok(Waker { origin: Instant::now(), timer: OneShotTimer::new()?, blocked: false })
    }

    /// Nanoseconds since the waker was made: the buckets' clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the device waits for the timer.
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    /// Blocks the device for `ns` nanoseconds: the timer fires then.
    pub fn sleep(&mut self, ns: u64) {
        if let Err(e) = self.timer.arm(Some(Duration::from_nanos(ns))) {
            // Without the timer the queue would never be looked at again.
            log::error!("rate limiter: cannot arm the refill timer: {e}; serving unlimited");
            return;
        }
        self.blocked = true;
    }

    /// Unblocks the device at once (its limits changed).
    pub fn cancel(&mut self) {
        if self.blocked {
            let _ = self.timer.arm(None);
            self.blocked = false;
        }
    }

    /// For the device's `MutEventSubscriber::init`.
    pub fn watch(&self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.timer, EventSet::IN)) {
            log::error!("rate limiter: cannot watch the refill timer: {e:?}");
        }
    }

    /// Whether `events` is the timer's; if so the expiry is consumed and the device is
    /// unblocked.
    pub fn is_expiry(&mut self, events: &Events) -> bool {
        if events.fd() != self.timer.as_raw_fd() {
            return false;
        }
        acknowledge_expiry(events.fd());
        self.blocked = false;
        true
    }
}
