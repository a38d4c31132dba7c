//! `-device virtio-keyboard-device`: a virtio-input keyboard QMP's keys type on.

use super::props::{DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::input::VirtioKeyboard;

pub(super) const DESC: KindDesc = KindDesc {
    name: "virtio-keyboard-device",
    help: "A virtio-input keyboard: QMP send-key and input-send-event type on it (on it rather than on \
           -device i8042 when both exist, as QEMU routes keys to the virtio keyboard).",
    props: &[PACKED, DEVICE_ID],
};

pub(super) struct Keyboard;

impl DeviceKind for Keyboard {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        Ok(Parsed::Slot { config: DeviceConfig::Keyboard, id: args.id()?, backend: None })
    }

    fn build(&self, _config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let keyboard = VirtioKeyboard::new().map_err(|source| Error::Io { what: "virtio-keyboard", source })?;
        ctx.add(keyboard, "virtio-mmio (virtio-input)", DESC.name, None)
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        vec![super::Example { name: DESC.name, props: &[("id", "kbd")], backend: None, config: DeviceConfig::Keyboard }]
    }
}
