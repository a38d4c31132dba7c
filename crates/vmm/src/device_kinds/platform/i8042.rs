//! `-device i8042`: the PS/2 keyboard controller with a keyboard.

use super::{PlatformConfig, PlatformDevice, PlatformKind};
use crate::device_kinds::props::{DeviceArgs, KindDesc, PropError, DEVICE_ID};

pub(crate) const DESC: KindDesc = KindDesc {
    name: "i8042",
    help: "The PS/2 keyboard controller (ports 0x60 and 0x64, IRQ 1) with a keyboard: send-key and \
           input-send-event type on it, and system_powerdown sends Ctrl-Alt-Del to it when acpi=off. Not a \
           virtio slot; at most one. Without it only the controller's reset command (port 0x64) exists.",
    props: &[DEVICE_ID],
};

pub(crate) struct I8042;

impl PlatformKind for I8042 {
    fn desc(&self) -> &'static KindDesc {
        &DESC
    }

    fn parse(&self, args: &DeviceArgs) -> Result<PlatformDevice, PropError> {
        Ok(PlatformDevice { id: args.id()?, config: PlatformConfig::I8042 })
    }

    fn at_most_one(&self) -> &'static str {
        "there is one i8042 (ports 0x60 and 0x64 are taken)"
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::PlatformExample> {
        vec![super::PlatformExample {
            props: &[("id", "kbc")],
            device: PlatformDevice { id: Some("kbc".into()), config: PlatformConfig::I8042 },
        }]
    }
}
