//! The `-device`s that are not virtio slots: ISA ports and ACPI pieces the machine has at
//! fixed places, one file each (`platform/`), listed in `mod.rs`'s `PLATFORM_KINDS`. Each
//! descriptor holds its names, properties and help and turns its checked properties into a
//! [`PlatformConfig`]; the front end only puts that config in its `VmConfig` field
//! (`i8042`, `debug_exit`, `vmgenid`, the serial port), since these are not built into
//! slots. This file holds what they share and imports none of them (each imports it).

pub(super) mod debug_exit;
pub(super) mod i8042;
pub(super) mod isa_serial;
pub(super) mod vmgenid;

use crate::device_kinds::props::{DeviceArgs, KindDesc, PropError};
use crate::guid::VmGenIdConfig;

/// One platform device kind: at most one of each on a command line (it sits at fixed
/// ports or a fixed ACPI place).
pub trait PlatformKind: Sync {
    /// Its `-device` name, help and properties (also listed in `DEVICE_KINDS`).
    fn desc(&self) -> &'static KindDesc;

    /// `-device name,...`'s properties (checked against its description) → its config.
    fn parse(&self, args: &DeviceArgs) -> Result<PlatformDevice, PropError>;

    /// Why a second one is refused.
    fn at_most_one(&self) -> &'static str;

    /// Configs with the properties that give them, for the table's consistency test.
    #[cfg(test)]
    fn examples(&self) -> Vec<PlatformExample>;
}

/// What one platform `-device` adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformDevice {
    /// The `-device`'s own `id=`.
    pub id: Option<String>,
    pub config: PlatformConfig,
}

/// A platform device's config, which the front end puts in its `VmConfig` field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformConfig {
    /// `-device isa-serial`: COM1, talking on this `-chardev` (`None`: on nothing).
    IsaSerial {
        chardev: Option<String>,
    },
    DebugExit(DebugExitConfig),
    VmGenId(VmGenIdConfig),
    I8042,
}

/// A platform kind's example for the consistency test.
#[cfg(test)]
pub struct PlatformExample {
    pub props: &'static [(&'static str, &'static str)],
    pub device: PlatformDevice,
}

/// `-device isa-debug-exit,iobase=,iosize=` (QEMU's defaults: 0x501, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugExitConfig {
    pub iobase: u16,
    pub iosize: u8,
}

impl Default for DebugExitConfig {
    fn default() -> Self {
        DebugExitConfig { iobase: 0x501, iosize: 2 }
    }
}
