//! Token-bucket rate limiters for the virtio data paths (block, net rx and tx, rng), as
//! Firecracker defines them: a bandwidth bucket (bytes) and an ops bucket (requests), each
//! with a `size`, a `refill_time` in which an empty bucket fills up, and a
//! `one_time_burst` spent before the bucket and never refilled. QEMU's `-drive
//! throttling.*` is mapped onto the same buckets by the command line (docs/dropin.md).
//!
//! The buckets are plain arithmetic on a clock the caller passes (nanoseconds from any
//! fixed origin), so the tests drive time by hand; [`Waker`] is the device side: the
//! monotonic clock and a timerfd the device thread's event loop watches, armed for the
//! moment a blocked bucket holds enough again. Nothing sleeps and nothing polls.
//!
//! Decisions:
//! - A request larger than the bucket (a 1 MiB write on a 100 KiB bucket) is let through
//!   when the bucket is full and leaves it in debt: the next request waits until the debt
//!   is paid. Firecracker does the same ("over-consumption"); refusing it forever would
//!   hang the guest, and the long-run rate stays `size / refill_time`.
//! - A request that the budget cannot cover takes nothing from any bucket: a device
//!   checks every bucket that applies before it takes from any, so a blocked request
//!   never pays twice.
//! - A bucket with size 0 or refill_time 0 limits nothing (Firecracker's rule).

#[cfg(test)]
mod tests;
mod waker;

pub use waker::{Gate, Waker};

const NANOS_PER_MILLI: u128 = 1_000_000;

/// One bucket as configured: Firecracker's `TokenBucket` fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketConfig {
    /// Tokens (bytes or requests) the bucket holds when full.
    pub size: u64,
    /// Tokens spent before the bucket's own, once.
    pub one_time_burst: u64,
    /// Milliseconds in which an empty bucket fills up: the rate is `size / refill_time`.
    pub refill_time_ms: u64,
}

impl BucketConfig {
    /// Whether the bucket limits anything.
    pub fn limits(&self) -> bool {
        self.size > 0 && self.refill_time_ms > 0
    }
}

/// A limiter as configured: an optional bucket for bytes and one for requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimiterConfig {
    pub bandwidth: Option<BucketConfig>,
    pub ops: Option<BucketConfig>,
}

impl LimiterConfig {
    /// Whether either bucket limits anything.
    pub fn limits(&self) -> bool {
        self.bandwidth.is_some_and(|b| b.limits()) || self.ops.is_some_and(|b| b.limits())
    }
}

/// One bucket's state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TokenBucket {
    size: u64,
    refill_ns: u128,
    /// Negative after a request larger than what was left (the debt above).
    budget: i128,
    one_time_burst: u64,
    /// When the budget was last brought up to date.
    updated: u64,
    /// The refill since then short of a whole token, in ns × size (below `refill_ns`),
    /// so no fraction of a token is ever lost.
    carry: u128,
}

impl TokenBucket {
    fn new(config: BucketConfig, now: u64) -> Option<TokenBucket> {
        config.limits().then(|| TokenBucket {
            size: config.size,
            refill_ns: u128::from(config.refill_time_ms) * NANOS_PER_MILLI,
            budget: i128::from(config.size),
            one_time_burst: config.one_time_burst,
            updated: now,
            carry: 0,
        })
    }

    /// Adds what has refilled since the last update, up to `size`.
    fn refill(&mut self, now: u64) {
        let size = i128::from(self.size);
        if now <= self.updated {
            return;
        }
        if self.budget >= size {
            self.updated = now;
            self.carry = 0;
            return;
        }
        let progress = u128::from(now - self.updated) * u128::from(self.size) + self.carry;
        let tokens = progress / self.refill_ns;
        self.carry = progress % self.refill_ns;
        self.updated = now;
        // At most what is missing up to size, so it fits an i128.
        let room = (size - self.budget) as u128;
        self.budget += tokens.min(room) as i128;
        if self.budget == size {
            self.carry = 0;
        }
    }

    /// How long until `tokens` can be taken; `None` if they can now.
    fn wait(&mut self, tokens: u64, now: u64) -> Option<u64> {
        self.refill(now);
        let from_budget = tokens.saturating_sub(self.one_time_burst);
        if from_budget == 0 {
            return None;
        }
        // A request larger than the bucket needs a full one (the debt rule above).
        let needed = i128::from(from_budget.min(self.size));
        if self.budget >= needed {
            return None;
        }
        // The carry (a fraction of a token) already counts towards it.
        let missing = (needed - self.budget) as u128 * self.refill_ns - self.carry;
        let ns = missing.div_ceil(u128::from(self.size)).max(1);
        Some(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Takes `tokens`, the one-time burst first; call after [`Self::wait`] said yes.
    fn take(&mut self, tokens: u64) {
        let from_burst = tokens.min(self.one_time_burst);
        self.one_time_burst -= from_burst;
        self.budget -= i128::from(tokens - from_burst);
    }
}

/// A bandwidth and an ops bucket, checked and spent together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimiter {
    bandwidth: Option<TokenBucket>,
    ops: Option<TokenBucket>,
}

impl RateLimiter {
    /// Full buckets at `now` (ns on the caller's clock).
    pub fn new(config: &LimiterConfig, now: u64) -> RateLimiter {
        RateLimiter {
            bandwidth: config.bandwidth.and_then(|b| TokenBucket::new(b, now)),
            ops: config.ops.and_then(|b| TokenBucket::new(b, now)),
        }
    }

    /// Whether it limits anything.
    pub fn limits(&self) -> bool {
        self.bandwidth.is_some() || self.ops.is_some()
    }

    /// Nanoseconds until `ops` requests of `bytes` bytes fit the budget; `None` if they
    /// fit now. Takes nothing.
    pub fn wait(&mut self, ops: u64, bytes: u64, now: u64) -> Option<u64> {
        let ops_wait = self.ops.as_mut().and_then(|b| b.wait(ops, now));
        let bytes_wait = self.bandwidth.as_mut().and_then(|b| b.wait(bytes, now));
        ops_wait.max(bytes_wait)
    }

    /// Spends `ops` and `bytes`; call once [`Self::wait`] said they fit.
    pub fn take(&mut self, ops: u64, bytes: u64) {
        if let Some(b) = self.ops.as_mut() {
            b.take(ops);
        }
        if let Some(b) = self.bandwidth.as_mut() {
            b.take(bytes);
        }
    }

    /// [`Self::wait`], then [`Self::take`] if they fit.
    pub fn consume(&mut self, ops: u64, bytes: u64, now: u64) -> Option<u64> {
        let wait = self.wait(ops, bytes, now);
        if wait.is_none() {
            self.take(ops, bytes);
        }
        wait
    }
}
