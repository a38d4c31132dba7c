//! The device side of a rate limiter: the clock its buckets read and the timer that wakes
//! the device thread when a blocked bucket has refilled.

use super::{LimiterConfig, RateLimiter};
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

/// A device's one limiter with its waker (net rx, net tx, rng): what the data path asks
/// before each request.
pub struct Gate {
    /// `None` when unlimited: the data path then costs one branch per request.
    limiter: Option<Box<RateLimiter>>,
    pub waker: Waker,
}

impl Gate {
    pub fn new(config: &LimiterConfig) -> io::Result<Gate> {
        let waker = Waker::new()?;
        let limiter = config.limits().then(|| Box::new(RateLimiter::new(config, waker.now())));
        Ok(Gate { limiter, waker })
    }

    /// New limits, with full buckets; a device blocked by the old ones is unblocked.
    pub fn set(&mut self, config: &LimiterConfig) {
        self.limiter = config.limits().then(|| Box::new(RateLimiter::new(config, self.waker.now())));
        self.waker.cancel();
    }

    /// Whether the device waits for the refill timer.
    pub fn blocked(&self) -> bool {
        self.waker.blocked()
    }

    /// Spends `ops` and `bytes` and returns true if they fit; else spends nothing, arms
    /// the timer for when they will, and returns false. `bytes` is only asked for when
    /// the device is limited (counting a chain's bytes walks its descriptors).
    pub fn admit(&mut self, ops: u64, bytes: impl FnOnce() -> u64) -> bool {
        let Some(limiter) = self.limiter.as_mut() else { return true };
        match limiter.consume(ops, bytes(), self.waker.now()) {
            None => true,
            Some(wait) => {
                self.waker.sleep(wait);
                false
            }
        }
    }
}
