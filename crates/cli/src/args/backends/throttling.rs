//! `-drive throttling.*` (and the older `bps=`, `iops=`, ... spellings, which the property
//! table gives as aliases) → the block device's token buckets (`devices::rate_limiter`).
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

use super::super::keyval::Setting;
use super::super::{invalid, ArgsError};
use super::DRIVE;
use vmm::config::{BucketConfig, DriveLimits, LimiterConfig};

/// QEMU's THROTTLE_VALUE_MAX: larger values are refused.
const VALUE_MAX: u64 = 1_000_000_000_000_000;
/// Milliseconds in which a bucket without `-max` refills: QEMU's bucket holds a tenth of
/// a second's worth.
const DEFAULT_REFILL_MS: u64 = 100;

/// One limit as written: average, burst rate, burst length.
#[derive(Clone, Copy, Default)]
struct Limit {
    avg: u64,
    max: u64,
    max_length: Option<u64>,
}

/// The six limits, in QEMU's order: bps-total, bps-read, bps-write, iops-total,
/// iops-read, iops-write.
const NAMES: [&str; 6] = ["bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write"];

/// Collects a drive's `throttling.*` settings.
#[derive(Default)]
pub(super) struct Throttling {
    limits: [Limit; 6],
    ops_size: u64,
    pub(super) group: Option<String>,
}

impl Throttling {
    /// Takes `s` if it is a throttling key; false if it is not.
    pub(super) fn take(&mut self, s: &Setting) -> Result<bool, ArgsError> {
        let Some(key) = s.name().strip_prefix("throttling.") else { return Ok(false) };
        if key == "group" {
            if s.value.is_empty() {
                return Err(invalid(DRIVE, &s.text, "a throttling group needs a name"));
            }
            self.group = Some(s.value.clone());
            return Ok(true);
        }
        let n = match s.value.parse::<u64>() {
            Ok(n) if n <= VALUE_MAX => n,
            _ => return Err(invalid(DRIVE, &s.text, format!("expected a number from 0 to {VALUE_MAX}"))),
        };
        if key == "iops-size" {
            self.ops_size = n;
            return Ok(true);
        }
        let (name, field) = match key.strip_suffix("-max-length") {
            Some(name) => (name, 2),
            None => match key.strip_suffix("-max") {
                Some(name) => (name, 1),
                None => (key, 0),
            },
        };
        let Some(index) = NAMES.iter().position(|&k| k == name) else { return Ok(false) };
        let limit = &mut self.limits[index];
        match field {
            0 => limit.avg = n,
            1 => limit.max = n,
            _ if n == 0 => return Err(invalid(DRIVE, &s.text, "a burst length is at least 1 second")),
            _ => limit.max_length = Some(n),
        }
        Ok(true)
    }

    /// The buckets, after QEMU's checks (`throttle_is_valid`), in its words.
    pub(super) fn limits(&self, value: &str) -> Result<DriveLimits, ArgsError> {
        for (i, l) in self.limits.iter().enumerate() {
            let name = NAMES[i];
            if l.max > 0 && l.avg == 0 {
                return Err(invalid(DRIVE, value, format!("{name}-max requires {name} (bps_max/iops_max require corresponding bps/iops values)")));
            }
            if l.max > 0 && l.max < l.avg {
                return Err(invalid(DRIVE, value, format!("{name}-max cannot be lower than {name}")));
            }
            if l.max_length.is_some_and(|n| n > 1) && l.max == 0 {
                return Err(invalid(DRIVE, value, format!("{name}-max-length needs {name}-max")));
            }
        }
        for (total, read, write) in [(0, 1, 2), (3, 4, 5)] {
            if self.limits[total].avg > 0 && (self.limits[read].avg > 0 || self.limits[write].avg > 0) {
                return Err(invalid(
                    DRIVE,
                    value,
                    format!("{} and {}/{} cannot be used at the same time", NAMES[total], NAMES[read], NAMES[write]),
                ));
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
    use super::super::super::help_text;
    use super::super::super::test_util::*;
    use super::*;
    use vmm::config::DeviceConfig;

    /// The limits of the drive `-drive id=d,file=f,if=none,<spec>` gets.
    fn limits(spec: &str) -> DriveLimits {
        let drive = format!("id=d,file=f,if=none,{spec}");
        match devs(&["-drive", &drive, "-device", "virtio-blk-device,drive=d"]).as_slice() {
            [DeviceConfig::Block(b)] => b.limits,
            other => panic!("{other:?}"),
        }
    }

    const TEN_MB: Option<BucketConfig> = Some(BucketConfig { size: 1_000_000, one_time_burst: 0, refill_time_ms: 100 });

    #[test]
    fn every_key_and_its_legacy_spelling_reach_the_drive() {
        assert_eq!(limits("throttling.bps-total=10000000").total.bandwidth, TEN_MB);
        assert_eq!(limits("bps=10000000").total.bandwidth, TEN_MB);
        assert_eq!(limits("throttling.bps-read=10000000").read.bandwidth, TEN_MB);
        assert_eq!(limits("bps_rd=10000000").read.bandwidth, TEN_MB);
        assert_eq!(limits("bps_wr=10000000").write.bandwidth, TEN_MB);
        let hundred = Some(BucketConfig { size: 10, one_time_burst: 0, refill_time_ms: 100 });
        assert_eq!(limits("throttling.iops-total=100").total.ops, hundred);
        assert_eq!(limits("iops=100").total.ops, hundred);
        assert_eq!(limits("iops_rd=100").read.ops, hundred);
        assert_eq!(limits("throttling.iops-write=100").write.ops, hundred);
        let l = limits("iops=100,iops_max=1000,iops_max_length=5,iops_size=8192");
        assert_eq!(l.total.ops, Some(BucketConfig { size: 5000, one_time_burst: 0, refill_time_ms: 50_000 }));
        assert_eq!(l.ops_size, 8192);
        let l = limits("throttling.bps-write=1000,throttling.bps-write-max=4000,throttling.bps-write-max-length=2");
        assert_eq!(l.write.bandwidth, Some(BucketConfig { size: 8000, one_time_burst: 0, refill_time_ms: 8000 }));
        assert!(!limits("throttling.group=g1").limits(), "a group alone limits nothing");
        assert!(!limits("bps=0").limits(), "0 is QEMU's unlimited");
        assert_eq!(limits("cache=none"), DriveLimits::default());
    }

    #[test]
    fn qemus_checks_refuse_what_qemu_refuses() {
        let e = |spec: &str| err(&["-drive", &format!("id=d,file=f,if=none,{spec}")]);
        assert_invalid(e("bps=100,bps_rd=10"), "-drive", "cannot be used at the same time");
        assert_invalid(e("iops=100,throttling.iops-write=10"), "-drive", "cannot be used at the same time");
        assert_invalid(e("bps_max=100"), "-drive", "requires bps-total");
        assert_invalid(e("bps=100,bps_max=10"), "-drive", "cannot be lower");
        assert_invalid(e("iops=100,iops_max_length=5"), "-drive", "needs iops-total-max");
        assert_invalid(e("iops=100,iops_max=200,iops_max_length=0"), "-drive", "at least 1 second");
        assert_invalid(e("bps=ten"), "-drive", "expected a number");
        assert_invalid(e("bps=1000000000000001"), "-drive", "expected a number");
        assert_invalid(e("throttling.group="), "-drive", "needs a name");
        assert_invalid(e("throttling.bps-totl=5"), "-drive", "unknown property");
        // A group of two drives would share one budget: refused.
        let two = err(&[
            "-drive",
            "id=a,file=a,if=none,throttling.group=g,bps=1000",
            "-drive",
            "id=b,file=b,if=none,group=g,bps=1000",
        ]);
        assert_invalid(two, "-drive", "throttling group 'g' already has a drive");
    }

    #[test]
    fn help_lists_the_keys_and_their_legacy_names() {
        let help = help_text();
        for word in ["throttling.bps-total", "throttling.iops-write-max-length", "throttling.iops-size", "bps_rd"] {
            assert!(help.contains(word), "-help does not say {word}");
        }
    }

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
}
