//! `-device virtio-serial-device` and its ports, `virtconsole` and `virtserialport`: one
//! slot, a one-port console (`DeviceConfig::Console`) or QEMU's multiport virtio-serial
//! (`DeviceConfig::SerialPorts`). Which ports go to which device is the front end's
//! business (the CLI's `devices/ports.rs`).

use super::props::{prop, PropDesc, Value, DEVICE_ID, ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, DeviceArgs, DeviceKind, KindDesc, Parsed, PortRequest, PropError};
use crate::chardev_config::ChardevConfig;
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::console::{Console, MultiportConsole, PortBackend};

/// QEMU's default and largest `max_ports`.
pub const MAX_PORTS: u32 = 31;

/// A port's id: what QMP names it by.
const PORT_ID: PropDesc = PropDesc {
    help: "Optional device id; with multiport, QMP's VSERPORT_CHANGE announces the guest opening and closing \
           the port under it.",
    ..ID
};
const CHARDEV: PropDesc = prop("chardev", Value::Text("ID"), None, "Required: the id of a -chardev.");
const BUS_PROP: PropDesc = prop("bus", Value::Text("DEVID.0"), None, "The virtio-serial-device (its id, then .0).");

pub(super) const BUS: KindDesc = KindDesc {
    name: "virtio-serial-device",
    help: "One virtio-mmio slot carrying the virtconsoles and virtserialports after it (a port goes to the \
           first earlier one without ports, else the last, unless bus= says). One virtconsole alone is a \
           one-port console; otherwise QEMU's multiport virtio-serial.",
    props: &[
        prop("max_ports", Value::Text("N"), Some("31"), "Ports the guest may see, 1..31 (multiport)."),
        PACKED,
        DEVICE_ID,
    ],
};

pub(super) const CONSOLE: KindDesc = KindDesc {
    name: "virtconsole",
    help: "A console port (the guest's hvcN) on a virtio-serial-device.",
    props: &[
        CHARDEV,
        BUS_PROP,
        prop(
            "name",
            Value::Text("NAME"),
            None,
            "With other ports or max_ports= (multiport): also /dev/virtio-ports/NAME. A lone virtconsole is a \
             one-port console, where a name has no effect.",
        ),
        PORT_ID,
    ],
};

pub(super) const PORT: KindDesc = KindDesc {
    name: "virtserialport",
    help: "A plain port on a virtio-serial-device (multiport): /dev/vportNpM, and /dev/virtio-ports/NAME.",
    props: &[
        CHARDEV,
        prop("name", Value::Text("NAME"), None, "The guest's /dev/virtio-ports/NAME (e.g. org.qemu.guest_agent.0)."),
        BUS_PROP,
        PORT_ID,
    ],
};

/// `-device virtio-serial-device[,max_ports=N]` with its `virtconsole`s and
/// `virtserialport`s, as QEMU's multiport virtio-serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioSerialConfig {
    /// What the guest reads as max_nr_ports (at least `ports.len()`).
    pub max_ports: u32,
    pub ports: Vec<SerialPortConfig>,
}

/// One port of a virtio-serial-device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialPortConfig {
    pub chardev: ChardevConfig,
    /// `-device ...,id=`: the guest's opening and closing of the port is announced
    /// (QMP VSERPORT_CHANGE) under it.
    pub id: Option<String>,
    /// `virtserialport,name=`: /dev/virtio-ports/NAME in the guest.
    pub name: Option<String>,
    /// A `virtconsole` (the guest's hvcN).
    pub console: bool,
}
/// `-device virtio-serial-device` + `-device virtconsole,chardev=ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub chardev: ChardevConfig,
}

pub(super) struct Serial;

impl DeviceKind for Serial {
    fn names(&self) -> &'static [&'static str] {
        &[BUS.name, CONSOLE.name, PORT.name]
    }

    fn parse(&self, name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let id = args.id()?;
        if name == BUS.name {
            let max_ports = args.parsed("max_ports", |p| match p.value.parse::<u32>() {
                Ok(n @ 1..=MAX_PORTS) => Ok(n),
                _ => Err(p.error(format!("max_ports is 1 to {MAX_PORTS}"))),
            })?;
            return Ok(Parsed::SerialBus { id, max_ports });
        }
        let chardev = args.reference("chardev")?;
        let chardev = args.required(chardev, "chardev=ID is required (the id of a -chardev)")?;
        let bus = args.reference("bus")?;
        Ok(Parsed::SerialPort(PortRequest { chardev, id, name: args.text("name"), console: name == CONSOLE.name, bus }))
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        match config {
            DeviceConfig::Console(cfg) => {
                let console = Console::new(ctx.chardev(&cfg.chardev)?)?;
                ctx.add(console, "virtio-mmio (virtio-console)", CONSOLE.name, Some(&cfg.chardev.id))
            }
            DeviceConfig::SerialPorts(cfg) => {
                let mut ports = Vec::with_capacity(cfg.ports.len());
                for port in &cfg.ports {
                    let chardev = ctx.chardev(&port.chardev)?;
                    let (id, name, console) = (port.id.clone(), port.name.clone(), port.console);
                    ports.push(PortBackend { chardev, id, name, console });
                }
                let mut serial = MultiportConsole::new(ports, cfg.max_ports)?;
                if cfg.ports.iter().any(|p| p.id.is_some()) {
                    serial.report_to(ctx.inventory.guest_events()?);
                }
                ctx.add(serial, "virtio-mmio (virtio-serial)", BUS.name, None)
            }
            _ => Err(wrong_config(BUS.name)),
        }
    }

    fn shape(&self, config: &DeviceConfig) -> &'static str {
        match config {
            DeviceConfig::Console(_) => CONSOLE.name,
            _ => BUS.name,
        }
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        // Ports and buses are gathered by the front end: tests.rs checks their parse.
        Vec::new()
    }
}
