//! `-device isa-debug-exit`: QEMU's test-exit port.

use super::{DebugExitConfig, PlatformConfig, PlatformDevice, PlatformKind};
use crate::device_kinds::props::{prop, DeviceArgs, KindDesc, PropError, Value, DEVICE_ID};

pub(crate) const DESC: KindDesc = KindDesc {
    name: "isa-debug-exit",
    help: "QEMU's test-exit port (not a virtio device): a guest write of V ends microvm with status \
           (V << 1) | 1. The port exists only when asked for.",
    props: &[
        prop("iobase", Value::Text("PORT"), Some("0x501"), "The I/O port (decimal or 0x hex)."),
        prop("iosize", Value::Text("N"), Some("2"), "How many ports from iobase, 1..8."),
        DEVICE_ID,
    ],
};

pub(crate) struct DebugExit;

impl PlatformKind for DebugExit {
    fn desc(&self) -> &'static KindDesc {
        &DESC
    }

    fn parse(&self, args: &DeviceArgs) -> Result<PlatformDevice, PropError> {
        let id = args.id()?;
        let defaults = DebugExitConfig::default();
        let iobase = args.parsed("iobase", |p| p.number(u64::from(u16::MAX)))?;
        let iosize = args.parsed("iosize", |p| p.number(8))?.unwrap_or(u64::from(defaults.iosize));
        if iosize == 0 {
            return Err(args.error("iosize must be 1 to 8"));
        }
        // Both fit: `number` capped them.
        let config = DebugExitConfig { iobase: iobase.map_or(defaults.iobase, |b| b as u16), iosize: iosize as u8 };
        Ok(PlatformDevice { id, config: PlatformConfig::DebugExit(config) })
    }

    fn at_most_one(&self) -> &'static str {
        "only one isa-debug-exit"
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::PlatformExample> {
        let device = |iobase, iosize| PlatformDevice {
            id: None,
            config: PlatformConfig::DebugExit(DebugExitConfig { iobase, iosize }),
        };
        vec![
            super::PlatformExample { props: &[], device: device(0x501, 2) },
            super::PlatformExample { props: &[("iobase", "0xf4"), ("iosize", "0x4")], device: device(0xf4, 4) },
            super::PlatformExample { props: &[("iobase", "65535"), ("iosize", "8")], device: device(0xffff, 8) },
        ]
    }
}
