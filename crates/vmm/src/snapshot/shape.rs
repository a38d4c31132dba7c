//! The machine a snapshot was taken of, as the command line describes it: what a restore
//! must build again before state can be loaded into it (QEMU's rule: the restoring
//! command line names the same machine; only host resources may differ).

use crate::config::{DeviceConfig, VmConfig};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineShape {
    pub mem_size: u64,
    pub vcpu_count: u8,
    pub pit: bool,
    pub acpi: bool,
    pub rtc: bool,
    pub i8042: bool,
    pub serial: bool,
    /// `-device vmgenid`: the DSDT in the saved RAM lists it or not.
    pub vmgenid: bool,
    /// virtio-mmio devices in slot order, by kind.
    pub devices: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the snapshot is of another machine: it has {what} {saved}, this command line {now}")]
pub struct ShapeMismatch {
    pub what: &'static str,
    pub saved: String,
    pub now: String,
}

/// A device's shape tag: QEMU's `-device` name of its kind (its descriptor's).
pub fn device_kind(device: &DeviceConfig) -> &'static str {
    crate::device_kinds::kind_of(device).shape(device)
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

impl MachineShape {
    pub fn of(config: &VmConfig) -> Self {
        MachineShape {
            mem_size: config.mem_size,
            vcpu_count: config.vcpu_count,
            pit: config.machine.pit,
            acpi: config.machine.acpi,
            rtc: config.machine.rtc,
            i8042: config.i8042,
            serial: config.serial.is_some(),
            vmgenid: config.vmgenid.is_some(),
            devices: config.devices.iter().map(|d| device_kind(d).to_string()).collect(),
        }
    }

    /// The first difference between the saved machine and this one, in words.
    pub fn check(&self, now: &MachineShape) -> Result<(), ShapeMismatch> {
        let differ = |what, saved: String, now: String| Err(ShapeMismatch { what, saved, now });
        if self.mem_size != now.mem_size {
            return differ("RAM of", mib(self.mem_size), mib(now.mem_size));
        }
        if self.vcpu_count != now.vcpu_count {
            return differ("vCPUs:", self.vcpu_count.to_string(), now.vcpu_count.to_string());
        }
        let flags = [
            ("pit=", self.pit, now.pit),
            ("acpi=", self.acpi, now.acpi),
            ("rtc=", self.rtc, now.rtc),
            ("-device i8042:", self.i8042, now.i8042),
            ("a serial port:", self.serial, now.serial),
            ("-device vmgenid:", self.vmgenid, now.vmgenid),
        ];
        for (what, saved, here) in flags {
            if saved != here {
                return differ(what, on_off(saved), on_off(here));
            }
        }
        if self.devices != now.devices {
            let list = |d: &[String]| if d.is_empty() { "none".to_string() } else { d.join(", ") };
            return differ("virtio devices", list(&self.devices), list(&now.devices));
        }
        Ok(())
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KernelConfig;

    fn config() -> VmConfig {
        VmConfig::new(KernelConfig { path: "k".into(), cmdline: String::new(), initrd: None })
    }

    #[test]
    fn the_first_difference_is_named() {
        let saved = MachineShape::of(&config());
        assert!(saved.check(&MachineShape::of(&config())).is_ok());
        let mut bigger = config();
        bigger.mem_size = 256 << 20;
        let e = saved.check(&MachineShape::of(&bigger)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the snapshot is of another machine: it has RAM of 128 MiB, this command line 256 MiB"
        );
        let mut with_rng = config();
        with_rng.devices.push(DeviceConfig::Rng(Default::default()));
        let e = saved.check(&MachineShape::of(&with_rng)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the snapshot is of another machine: it has virtio devices none, this command line virtio-rng-device"
        );
        let mut no_pit = config();
        no_pit.machine.pit = false;
        let e = saved.check(&MachineShape::of(&no_pit)).unwrap_err();
        assert_eq!(e.to_string(), "the snapshot is of another machine: it has pit= on, this command line off");
    }
}
