//! `-drive throttling.*` (and the older `bps=`, `iops=`, ... spellings, which the property
//! table gives as aliases): each value checked as QEMU checks it, then mapped by
//! `devices::virtio::block::qemu_throttle`, which QMP's `block_set_io_throttle` shares
//! (what microvm does differently from QEMU's leaky bucket is said there).

use super::super::keyval::Setting;
use super::super::{invalid, ArgsError};
use super::DRIVE;
use devices::virtio::block::qemu_throttle::{QemuThrottle, VALUE_MAX};
use vmm::config::DriveLimits;

/// Collects a drive's `throttling.*` settings.
#[derive(Default)]
pub(super) struct Throttling {
    settings: QemuThrottle,
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
        self.settings.set(key, n).map_err(|e| invalid(DRIVE, &s.text, e.to_string()))
    }

    /// The buckets, after QEMU's checks.
    pub(super) fn limits(&self, value: &str) -> Result<DriveLimits, ArgsError> {
        self.settings.limits().map_err(|e| invalid(DRIVE, value, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::help_text;
    use super::super::super::test_util::*;
    use vmm::config::{BucketConfig, DeviceConfig, DriveLimits};

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
}
