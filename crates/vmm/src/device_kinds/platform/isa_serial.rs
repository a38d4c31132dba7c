//! `-device isa-serial`: the 16550A at COM1, the one serial port microvm has.

use super::{PlatformConfig, PlatformDevice, PlatformKind};
use crate::device_kinds::props::{prop, DeviceArgs, KindDesc, PropError, Value, DEVICE_ID};

pub(crate) const DESC: KindDesc = KindDesc {
    name: "isa-serial",
    help: "The 16550A (COM1, 0x3f8, IRQ 4; not a virtio device): turns legacy mode on. Without chardev= it is \
           connected to nothing; with -serial as well (other than none), an error: there is one port.",
    props: &[
        prop("chardev", Value::Text("ID"), None, "The -chardev it talks on."),
        prop("index", Value::OneOf(&["0"]), Some("0"), "Only 0 (COM1)."),
        prop("iobase", Value::OneOf(&["0x3f8"]), Some("0x3f8"), "Only COM1's."),
        prop("irq", Value::OneOf(&["4"]), Some("4"), "Only COM1's."),
        DEVICE_ID,
    ],
};

/// COM1's index, port and IRQ: QEMU's properties are accepted when they name COM1
/// (written in any number form), so a QEMU command line spelling them out still works.
const COM1: [(&str, u64); 3] = [("index", 0), ("iobase", 0x3f8), ("irq", 4)];

pub(crate) struct IsaSerial;

impl PlatformKind for IsaSerial {
    fn desc(&self) -> &'static KindDesc {
        &DESC
    }

    fn parse(&self, args: &DeviceArgs) -> Result<PlatformDevice, PropError> {
        let id = args.id()?;
        for (name, com1) in COM1 {
            if let Some(p) = args.get(name) {
                if p.number(0xffff)? != com1 {
                    return Err(p.error("microvm's one serial port is COM1: index=0,iobase=0x3f8,irq=4"));
                }
            }
        }
        Ok(PlatformDevice { id, config: PlatformConfig::IsaSerial { chardev: args.reference("chardev")? } })
    }

    fn at_most_one(&self) -> &'static str {
        "microvm has one serial port (COM1)"
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::PlatformExample> {
        let device = |id: Option<&str>, chardev: Option<&str>| PlatformDevice {
            id: id.map(Into::into),
            config: PlatformConfig::IsaSerial { chardev: chardev.map(Into::into) },
        };
        vec![
            super::PlatformExample { props: &[], device: device(None, None) },
            super::PlatformExample {
                props: &[("chardev", "c0"), ("index", "0"), ("iobase", "0x3F8"), ("irq", "4"), ("id", "com1")],
                device: device(Some("com1"), Some("c0")),
            },
        ]
    }
}
