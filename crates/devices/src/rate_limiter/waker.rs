//! The device side of a rate limiter: the clock its buckets read and the timer that wakes
//! the device thread when a blocked bucket has refilled.

use super::{LimiterConfig, RateLimiter};
use crate::oneshot_timer::{acknowledge_expiry, OneShotTimer};
use event_manager::{EventOps, EventSet, Events};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// One per limited device: a monotonic clock and a one-shot timerfd. While the timer is
/// armed the device is blocked, and it serves nothing until the timer fires (a guest kick
/// meanwhile finds the budget still short, so it is not worth looking). The timerfd is
/// made the first time a limit blocks the device: an unlimited device (every one a
/// command line does not limit) costs no descriptor and no system call at start.
pub struct Waker {
    origin: Instant,
    timer: Option<OneShotTimer>,
    /// The timer exists but the device's event loop does not watch it yet.
    unwatched: bool,
    blocked: bool,
}

impl Default for Waker {
    fn default() -> Self {
        Waker { origin: Instant::now(), timer: None, unwatched: false, blocked: false }
    }
}

impl Waker {
    pub fn new() -> Waker {
        Waker::default()
    }

    /// Nanoseconds since the waker was made: the buckets' clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the device waits for the timer.
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    /// Blocks the device for `ns` nanoseconds: the timer fires then. Called while the
    /// device serves its queue, inside its `process`, whose end `watch`es a new timer.
    pub fn sleep(&mut self, ns: u64) {
        if self.timer.is_none() {
            match OneShotTimer::new() {
                Ok(timer) => {
                    self.timer = Some(timer);
                    self.unwatched = true;
                }
                Err(e) => {
                    log::error!("rate limiter: cannot create the refill timer: {e}; serving unlimited");
                    return;
                }
            }
        }
        let Some(timer) = &mut self.timer else { return };
        if let Err(e) = timer.arm(Some(Duration::from_nanos(ns))) {
            // Without the timer the queue would never be looked at again.
            log::error!("rate limiter: cannot arm the refill timer: {e}; serving unlimited");
            return;
        }
        self.blocked = true;
    }

    /// Unblocks the device at once (its limits changed).
    pub fn cancel(&mut self) {
        if let (true, Some(timer)) = (self.blocked, &mut self.timer) {
            let _ = timer.arm(None);
        }
        self.blocked = false;
    }

    /// Adds the timer to the device's event loop once it exists: from the device's
    /// `MutEventSubscriber::init` and at the end of each `process`.
    pub fn watch(&mut self, ops: &mut EventOps) {
        let Some(timer) = &self.timer else { return };
        if !std::mem::take(&mut self.unwatched) {
            return;
        }
        if let Err(e) = ops.add(Events::new(timer, EventSet::IN)) {
            log::error!("rate limiter: cannot watch the refill timer: {e:?}");
        }
    }

    /// Whether `events` is the timer's; if so the expiry is consumed and the device is
    /// unblocked.
    pub fn is_expiry(&mut self, events: &Events) -> bool {
        if self.timer.as_ref().map_or(true, |t| events.fd() != t.as_raw_fd()) {
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
    pub fn new(config: &LimiterConfig) -> Gate {
        let waker = Waker::new();
        let limiter = config.limits().then(|| Box::new(RateLimiter::new(config, waker.now())));
        Gate { limiter, waker }
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
