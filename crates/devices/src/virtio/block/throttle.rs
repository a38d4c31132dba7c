//! A drive's rate limits: Firecracker's one limiter on every request, or QEMU's
//! `throttling.*` with limits on all requests, on reads and on writes, each request
//! counted as `ceil(bytes / ops_size)` operations when `throttling.iops-size` is set.

use crate::guest_memory::GuestMemoryMmap;
use crate::rate_limiter::{LimiterConfig, RateLimiter};
use crate::virtio::queue::Chain;
use std::ops::Deref;
use virtio_bindings::virtio_blk::{VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT};

use vm_memory::Bytes;

/// Header (16 bytes) and status byte: what a request moves besides its data.
const NOT_DATA: u64 = 16 + 1;

/// The limits a drive is given, at start or at run time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriveLimits {
    /// Every request (Firecracker's `rate_limiter`; QEMU's `bps-total`, `iops-total`).
    pub total: LimiterConfig,
    /// Reads only (QEMU's `bps-read`, `iops-read`).
    pub read: LimiterConfig,
    /// Writes only (QEMU's `bps-write`, `iops-write`).
    pub write: LimiterConfig,
    /// QEMU's `throttling.iops-size`: a request of more bytes counts as several
    /// operations; 0 counts every request as one.
    pub ops_size: u64,
}

impl DriveLimits {
    /// Whether anything is limited.
    pub fn limits(&self) -> bool {
        self.total.limits() || self.read.limits() || self.write.limits()
    }
}

/// The buckets of a limited drive.
pub(super) struct Throttle {
    total: RateLimiter,
    read: RateLimiter,
    write: RateLimiter,
    ops_size: u64,
}

impl Throttle {
    /// Full buckets at `now`; `None` if nothing is limited (the data path then does no
    /// accounting at all).
    pub(super) fn new(limits: &DriveLimits, now: u64) -> Option<Box<Throttle>> {
        limits.limits().then(|| {
            Box::new(Throttle {
                total: RateLimiter::new(&limits.total, now),
                read: RateLimiter::new(&limits.read, now),
                write: RateLimiter::new(&limits.write, now),
                ops_size: limits.ops_size,
            })
        })
    }

    /// Spends what `chain`'s request costs if every bucket it draws on has it; else
    /// spends nothing and returns the nanoseconds to wait. Flushes, discards and GET_ID
    /// count as one operation of no data, on the total limits only.
    pub(super) fn admit<M>(&mut self, mem: &GuestMemoryMmap, chain: &Chain<M>, now: u64) -> Option<u64>
    where
        M: Deref<Target = GuestMemoryMmap> + Clone,
    {
        let mut descs = chain.clone();
        let first = descs.next()?;
        // An unreadable header is the request's own error, served (and failed) at once.
        let kind: u32 = mem.read_obj(first.addr()).unwrap_or(u32::MAX);
        let all: u64 = u64::from(first.len()) + descs.map(|d| u64::from(d.len())).sum::<u64>();
        let (bytes, mut direction) = match kind {
            VIRTIO_BLK_T_IN => (all.saturating_sub(NOT_DATA), Some(&mut self.read)),
            VIRTIO_BLK_T_OUT => (all.saturating_sub(NOT_DATA), Some(&mut self.write)),
            _ => (0, None),
        };
        let ops = if self.ops_size > 0 { bytes.div_ceil(self.ops_size).max(1) } else { 1 };
        let mut wait = self.total.wait(ops, bytes, now);
        if let Some(d) = direction.as_deref_mut() {
            wait = wait.max(d.wait(ops, bytes, now));
        }
        if wait.is_none() {
            self.total.take(ops, bytes);
            if let Some(d) = direction {
                d.take(ops, bytes);
            }
        }
        wait
    }
}
