//! `-nic TYPE[,NETDEV-PROPS...][,model=virtio-net-device][,mac=MAC]`: QEMU's shorthand
//! for a `-netdev TYPE,...` and the NIC that uses it, in one option.
//!
//! Decisions (each also stated in `-help` and docs/dropin.md):
//! - Every property but `model=` and `mac=` is the netdev's, parsed by `-netdev` itself
//!   (so `-nic user,hostfwd=...` and `-nic tap,ifname=...` take exactly what `-netdev user`
//!   and `-netdev tap` take); errors name `-nic` and the value as written.
//! - `id=` names the netdev, as in QEMU; without it the netdev is QEMU's
//!   `__org.qemu.nicN` (N counts the `-nic` options), an id no `-netdev` can take.
//! - The NIC is `virtio-net-device` (`model=virtio`, QEMU's name for "the machine's virtio
//!   NIC", means the same); any other model is refused in one line. In QEMU the machine
//!   creates a `-nic`'s NIC on its own bus, and warns when it creates none.
//! - The NIC takes its virtio slot where the `-nic` is on the command line, as a `-device`
//!   there would.

use super::super::keyval::{elements, settings, Elem, ShortForms};
use super::super::netdev::NETDEV;
use super::super::schema::Value::Text;
use super::super::schema::{prop, PropDesc};
use super::super::{invalid, ArgsError};
use super::{Devices, NIC};

/// The properties `-nic` keeps for its NIC; the others go to the netdev.
pub(in super::super) const NIC_PROPS: &[PropDesc] = &[
    prop(
        "model",
        Text("MODEL"),
        Some("virtio-net-device"),
        "virtio-net-device, or virtio (the same here): microvm's only NIC. Other models are refused.",
    ),
    prop("mac", Text("MAC"), None, "The NIC's MAC, as virtio-net-device's mac= (default: QEMU's 52:54:00:12:34:56)."),
];

/// The prefix of the ids `-nic` gives its netdevs, QEMU's.
const GENERATED_ID: &str = "__org.qemu.nic";

impl Devices {
    /// `-nic none` (nothing), or a netdev and its virtio-net-device.
    pub(in super::super) fn nic(&mut self, value: &str) -> Result<(), ArgsError> {
        let elems = elements(NIC, value, Some("type"), ShortForms::Everywhere)?;
        let kind = elems.iter().rev().find(|e| e.key == "type").and_then(|e| e.value.clone());
        let (nic, netdev): (Vec<Elem>, Vec<Elem>) =
            elems.into_iter().partition(|e| NIC_PROPS.iter().any(|p| p.name == e.key));
        let (mut mac, mut model) = (None, None);
        for s in settings(NIC, &join(&nic), None, NIC_PROPS, NIC)? {
            match s.name() {
                // Checked by the NIC's kind, as virtio-net-device's mac=.
                "mac" => mac = Some(s.into_prop()),
                _ => model = Some(s.value.clone()),
            }
        }
        match kind.as_deref() {
            Some("none") if netdev.len() == 1 && nic.is_empty() => return Ok(()),
            Some("none") => return Err(invalid(NIC, value, "-nic none takes no properties")),
            Some(_) => {}
            None => return Err(invalid(NIC, value, "expected TYPE[,...]: user, tap, stream, dgram or none")),
        }
        check_model(model.as_deref(), value)?;
        let netdev_value = join(&netdev);
        let generated = self.backends.netdevs.iter().filter(|n| n.id.starts_with(GENERATED_ID)).count();
        let default_id = format!("{GENERATED_ID}{generated}");
        self.backends.netdev_or(&netdev_value, Some(default_id)).map_err(|e| renamed(e, &netdev_value, value))?;
        // netdev_or pushed the netdev last (it fails otherwise).
        let id = self.backends.netdevs.last().map(|n| n.id.clone()).unwrap_or_default();
        let netdev = vmm::device_kinds::Prop { name: "netdev", text: format!("netdev={id}"), value: id, on: false };
        let props = std::iter::once(netdev).chain(mac).collect();
        self.implied_device("virtio-net-device", props, value).map_err(|e| renamed(e, &netdev_value, value))
    }
}

/// The elements as one option list again (`,` inside a value doubled, as written).
fn join(elems: &[Elem]) -> String {
    elems.iter().map(|e| e.text.replace(',', ",,")).collect::<Vec<_>>().join(",")
}

fn check_model(model: Option<&str>, value: &str) -> Result<(), ArgsError> {
    match model {
        None | Some("virtio-net-device" | "virtio") => Ok(()),
        Some(m) if m.contains("pci") => {
            Err(invalid(NIC, value, "microvm has no PCI bus yet; its NIC is model=virtio-net-device (the default)"))
        }
        Some(_) => Err(invalid(NIC, value, "microvm's only NIC is virtio-net-device: leave model= out")),
    }
}

/// An error of `-netdev` (or of the shared MAC parser, which names `-device`) as one of
/// `-nic`: the option renamed, the whole netdev list shown as the user wrote it.
fn renamed(err: ArgsError, netdev_value: &str, value: &str) -> ArgsError {
    match err {
        ArgsError::InvalidValue { option, value: v, reason } if option == NETDEV || option == super::DEVICE => {
            let v = if v == netdev_value { value.to_owned() } else { v };
            ArgsError::InvalidValue { option: NIC, value: v, reason }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
