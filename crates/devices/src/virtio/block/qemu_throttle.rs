//! QEMU's I/O throttling settings (`-drive throttling.*` and QMP's
//! `block_set_io_throttle`) → a drive's token buckets ([`DriveLimits`]): one home for the
//! mapping, which the command line and the monitor both use.
//!
//! QEMU meters with a leaky bucket per limit: an average rate, and a burst of `-max` per
//! second for at most `-max-length` seconds (1 by default); without `-max` the bucket
//! holds a tenth of a second's worth. microvm maps each limit onto one token bucket that
//! refills at the average rate and holds what QEMU's bucket holds: `max × max-length`, or
//! a tenth of a second's worth (a whole second's when the rate is not a multiple of 10,
//! to keep the rate exact). Where they differ: QEMU spends its burst at no more than
//! `-max` per second, microvm's bucket is spent as fast as the guest asks; and QEMU
//! delays the request that overdraws its bucket, microvm lets a request larger than the
//! bucket through when the bucket is full and makes the next one wait (docs/dropin.md).

use super::DriveLimits;
use crate::rate_limiter::{BucketConfig, LimiterConfig};

/// QEMU's THROTTLE_VALUE_MAX: larger values are refused.
pub const VALUE_MAX: u64 = 1_000_000_000_000_000;
/// Milliseconds in which a bucket without `-max` refills: QEMU's bucket holds a tenth of
/// a second's worth.
const DEFAULT_REFILL_MS: u64 = 100;

/// The six limits, in QEMU's order, by their `throttling.*` names.
const NAMES: [&str; 6] = ["bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write"];

/// Why QEMU's settings cannot be used; QEMU's checks (`throttle_is_valid`), in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    #[error("{0}-max requires {0} (bps_max/iops_max require corresponding bps/iops values)")]
    MaxWithoutAverage(&'static str),
    #[error("{0}-max cannot be lower than {0}")]
    MaxBelowAverage(&'static str),
    #[error("{0}-max-length needs {0}-max")]
    LengthWithoutMax(&'static str),
    #[error("{0}-max-length: a burst length is at least 1 second")]
    ZeroLength(&'static str),
    #[error("{0} and {1}/{2} cannot be used at the same time")]
    TotalAndSplit(&'static str, &'static str, &'static str),
    #[error("{0}: values are at most {VALUE_MAX}")]
    TooLarge(String),
}

/// One limit as QEMU takes it: average, burst rate, burst length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Limit {
    avg: u64,
    max: u64,
    max_length: Option<u64>,
}

/// A drive's throttling settings, collected key by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QemuThrottle {
    limits: [Limit; 6],
    ops_size: u64,
}

/// The `throttling.*` name (without the prefix) of a QMP / legacy `-drive` name: `bps`,
/// `bps_rd`, `iops_wr_max`, `bps_max_length`, `iops_size`...
pub fn modern_name(legacy: &str) -> Option<String> {
    if legacy == "iops_size" {
        return Some("iops-size".into());
    }
    let (base, suffix) = match legacy.find('_').map(|at| legacy.split_at(at)) {
        Some((kind, rest)) => match rest {
            "_rd" => (format!("{kind}-read"), ""),
            "_wr" => (format!("{kind}-write"), ""),
            "_max" => (format!("{kind}-total"), "-max"),
            "_max_length" => (format!("{kind}-total"), "-max-length"),
            "_rd_max" => (format!("{kind}-read"), "-max"),
            "_wr_max" => (format!("{kind}-write"), "-max"),
            "_rd_max_length" => (format!("{kind}-read"), "-max-length"),
            "_wr_max_length" => (format!("{kind}-write"), "-max-length"),
            _ => return None,
        },
        None => (format!("{legacy}-total"), ""),
    };
    NAMES.contains(&base.as_str()).then(|| format!("{base}{suffix}"))
}

impl QemuThrottle {
    /// Sets `name` (a `throttling.*` name without the prefix, e.g. `bps-total-max`) to
    /// `value`; false if no such setting.
    pub fn set(&mut self, name: &str, value: u64) -> Result<bool, ThrottleError> {
        if value > VALUE_MAX {
            return Err(ThrottleError::TooLarge(name.to_owned()));
        }
        if name == "iops-size" {
            self.ops_size = value;
            return Ok(true);
        }
        let (base, field) = match name.strip_suffix("-max-length") {
            Some(base) => (base, 2),
            None => match name.strip_suffix("-max") {
                Some(base) => (base, 1),
                None => (name, 0),
            },
        };
        let Some(index) = NAMES.iter().position(|&n| n == base) else { return Ok(false) };
        let limit = &mut self.limits[index];
        match field {
            0 => limit.avg = value,
            1 => limit.max = value,
            _ if value == 0 => return Err(ThrottleError::ZeroLength(NAMES[index])),
            _ => limit.max_length = Some(value),
        }
        Ok(true)
    }

    /// The buckets, after QEMU's checks.
    pub fn limits(&self) -> Result<DriveLimits, ThrottleError> {
        for (l, &name) in self.limits.iter().zip(NAMES.iter()) {
            if l.max > 0 && l.avg == 0 {
                return Err(ThrottleError::MaxWithoutAverage(name));
            }
            if l.max > 0 && l.max < l.avg {
                return Err(ThrottleError::MaxBelowAverage(name));
            }
            if l.max_length.is_some_and(|n| n > 1) && l.max == 0 {
                return Err(ThrottleError::LengthWithoutMax(name));
            }
        }
        for (total, read, write) in [(0, 1, 2), (3, 4, 5)] {
            if self.limits[total].avg > 0 && (self.limits[read].avg > 0 || self.limits[write].avg > 0) {
                return Err(ThrottleError::TotalAndSplit(NAMES[total], NAMES[read], NAMES[write]));
            }
        }
        let limiter = |bytes: usize, ops: usize| LimiterConfig {
            bandwidth: bucket(self.limits[bytes]),
            ops: bucket(self.limits[ops]),
        };
        Ok(DriveLimits { total: limiter(0, 3), read: limiter(1, 4), write: limiter(2, 5), ops_size: self.ops_size })
    }
}

/// One limit's token bucket (module comment); `None` for a limit of 0 (unlimited).
fn bucket(l: Limit) -> Option<BucketConfig> {
    if l.avg == 0 {
        return None;
    }
    let (size, refill_time_ms) = if l.max > 0 {
        let size = l.max.saturating_mul(l.max_length.unwrap_or(1));
        // The time the average rate takes to fill it, at least a millisecond.
        let ms = u128::from(size) * 1000 / u128::from(l.avg);
        (size, u64::try_from(ms).unwrap_or(u64::MAX).max(1))
    } else if l.avg % 10 == 0 {
        (l.avg / 10, DEFAULT_REFILL_MS)
    } else {
        (l.avg, 1000)
    };
    Some(BucketConfig { size, one_time_burst: 0, refill_time_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_average_rate_and_hold_what_qemus_do() {
        let b = |avg, max, max_length| bucket(Limit { avg, max, max_length }).unwrap();
        assert_eq!(b(10_000_000, 0, None), BucketConfig { size: 1_000_000, one_time_burst: 0, refill_time_ms: 100 });
        // Not a multiple of 10: a second's worth keeps the rate exact.
        assert_eq!(b(7, 0, None), BucketConfig { size: 7, one_time_burst: 0, refill_time_ms: 1000 });
        // 2000 ops/s for 10 s on top of 100/s: a bucket of 20000 filled in 200 s.
        assert_eq!(b(100, 2000, Some(10)), BucketConfig { size: 20_000, one_time_burst: 0, refill_time_ms: 200_000 });
        assert_eq!(bucket(Limit::default()), None);
    }

    #[test]
    fn legacy_and_qmp_names_map_onto_throttling_names() {
        for (old, new) in [
            ("bps", "bps-total"),
            ("bps_rd", "bps-read"),
            ("iops_wr", "iops-write"),
            ("bps_max", "bps-total-max"),
            ("iops_rd_max", "iops-read-max"),
            ("bps_wr_max_length", "bps-write-max-length"),
            ("iops_max_length", "iops-total-max-length"),
            ("iops_size", "iops-size"),
        ] {
            assert_eq!(modern_name(old).as_deref(), Some(new), "{old}");
        }
        for none in ["group", "bps_total", "ops", "bps_rd_min", ""] {
            assert_eq!(modern_name(none), None, "{none}");
        }
    }
}
