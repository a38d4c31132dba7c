//! The ports of a `virtio-serial-device`: `virtconsole` and
//! `virtserialport,name=NAME`, each on a `-chardev`.
//!
//! A port goes to the virtio-serial-device its `bus=ID.0` names, else to the
//! first earlier one that has no port yet, else to the last earlier one (so
//! `virtio-serial-device virtconsole virtconsole` is one device with two
//! ports, as in QEMU, while the one-console-per-device lines of before keep
//! their slots). A device with one virtconsole (named or not) and no `max_ports=` stays
//! the one-port console (no MULTIPORT: the pinned address maps and guests'
//! view do not change); anything else is QEMU's multiport virtio-serial,
//! with `max_ports` defaulting to QEMU's 31.

use vmm::config::{ConsoleConfig, DeviceConfig, SerialPortConfig, VirtioSerialConfig};

use super::super::mux::ChardevUsers;
use super::super::{invalid, ArgsError};
use super::{esc, Device, Devices, DEVICE};

/// QEMU's default and largest max_ports.
use vmm::device_kinds::SERIAL_MAX_PORTS as MAX_PORTS;

pub(super) struct Port {
    pub(super) chardev: String,
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) console: bool,
    pub(super) value: String,
}

impl Devices {
    pub(super) fn attach_port(&mut self, bus: Option<String>, port: Port) -> Result<(), ArgsError> {
        let mut serials: Vec<(Option<&str>, &mut Vec<Port>, Option<u32>)> = self
            .devices
            .iter_mut()
            .filter_map(|d| match d {
                Device::Serial { id, ports, max_ports, .. } => Some((id.as_deref(), ports, *max_ports)),
                _ => None,
            })
            .collect();
        let index = match &bus {
            Some(bus) => serials.iter().position(|(id, _, _)| id.is_some_and(|id| bus.strip_suffix(".0") == Some(id))),
            None => serials.iter().position(|(_, ports, _)| ports.is_empty()).or(serials.len().checked_sub(1)),
        };
        let Some(index) = index else {
            let reason = match bus {
                Some(bus) => format!(
                    "bus '{}' not found: it is the id of an earlier -device virtio-serial-device followed by .0",
                    esc(&bus)
                ),
                None => format!(
                    "{} needs -device virtio-serial-device (given before it)",
                    if port.console { "virtconsole" } else { "virtserialport" }
                ),
            };
            return Err(invalid(DEVICE, &port.value, reason));
        };
        let (_, ports, max_ports) = &mut serials[index];
        let max = max_ports.unwrap_or(MAX_PORTS);
        if ports.len() as u32 >= max {
            return Err(invalid(DEVICE, &port.value, format!("the virtio-serial-device has max_ports={max} already")));
        }
        if let Some(name) = &port.name {
            if ports.iter().any(|p| p.name.as_ref() == Some(name)) {
                return Err(invalid(DEVICE, &port.value, format!("a port named '{}' exists already", esc(name))));
            }
        }
        ports.push(port);
        Ok(())
    }
}

/// The device a virtio-serial-device with `ports` becomes.
pub(super) fn resolve(
    ports: Vec<Port>,
    max_ports: Option<u32>,
    chardevs: &mut ChardevUsers,
) -> Result<DeviceConfig, ArgsError> {
    // A lone virtconsole keeps the one-port layout; its name only matters to multiport guests.
    let one_console = ports.len() == 1 && ports[0].console && max_ports.is_none();
    let mut resolved = Vec::with_capacity(ports.len());
    for port in ports {
        let chardev = chardevs.front_end(&port.chardev, DEVICE, &port.value)?;
        resolved.push(SerialPortConfig { chardev, id: port.id, name: port.name, console: port.console });
    }
    if one_console {
        let port = resolved.remove(0);
        return Ok(DeviceConfig::Console(ConsoleConfig { chardev: port.chardev }));
    }
    Ok(DeviceConfig::SerialPorts(VirtioSerialConfig { max_ports: max_ports.unwrap_or(MAX_PORTS), ports: resolved }))
}
