//! The `-device`s that are not virtio slots: ISA ports and ACPI pieces the machine has at
//! fixed places, one file each (`platform/`). Each descriptor holds its names, properties
//! and help and turns its checked properties into a [`PlatformConfig`]; the front end only
//! puts that config in its `VmConfig` field (`i8042`, `debug_exit`, `vmgenid`, the serial
//! port), since these are not built into slots.

mod debug_exit;
mod i8042;
mod isa_serial;
mod vmgenid;

use super::{DeviceArgs, KindDesc, PropError};
use crate::guid::VmGenIdConfig;
pub use debug_exit::DebugExitConfig;

pub(super) const ISA_SERIAL: KindDesc = isa_serial::DESC;
pub(super) const DEBUG_EXIT: KindDesc = debug_exit::DESC;
pub(super) const VMGENID: KindDesc = vmgenid::DESC;
pub(super) const I8042: KindDesc = i8042::DESC;

/// Every platform device kind.
pub static PLATFORM_KINDS: &[&dyn PlatformKind] =
    &[&isa_serial::IsaSerial, &debug_exit::DebugExit, &vmgenid::VmGenId, &i8042::I8042];

/// The platform kind of a `-device` name; `None` for the virtio kinds and unknown names.
pub fn platform_kind(name: &str) -> Option<&'static dyn PlatformKind> {
    PLATFORM_KINDS.iter().copied().find(|k| k.desc().name == name)
}

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
