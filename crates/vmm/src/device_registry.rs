//! Devices kept by id with typed handles, so monitor commands (and later snapshot,
//! hot reconfiguration, balloon control) can find a device and talk to its own type.
//! Ids are the ones the command line gave: a drive's id for a disk, a netdev's id for a
//! NIC, a chardev's id for a console; a device without one is kept but cannot be named.

use crate::virtio_devices::Slot;
use devices::legacy::SerialPort;
use devices::virtio::balloon::Balloon;
use devices::virtio::block::Block;
use devices::virtio::console::Console;
use devices::virtio::console::MultiportConsole;
use devices::virtio::hvsock::HybridVsock;
use devices::virtio::input::VirtioKeyboard;
use devices::virtio::net::Net;
use devices::virtio::ninep::Virtio9p;
use devices::virtio::rng::Rng;
use devices::virtio::vhost::fs::VhostUserFs;
use devices::virtio::vhost::net::VhostNet;
use devices::virtio::vhost::vsock::VhostVsock;
use std::sync::{Arc, Mutex};

/// One device, by type.
#[derive(Clone)]
pub enum DeviceHandle {
    Block(Arc<Mutex<Block>>),
    Net(Arc<Mutex<Net>>),
    Console(Arc<Mutex<Console>>),
    VirtioSerial(Arc<Mutex<MultiportConsole>>),
    Rng(Arc<Mutex<Rng>>),
    Keyboard(Arc<Mutex<VirtioKeyboard>>),
    Serial(Arc<Mutex<SerialPort>>),
    Vsock(Arc<Mutex<VhostVsock>>),
    HybridVsock(Arc<Mutex<HybridVsock>>),
    VhostNet(Arc<Mutex<VhostNet>>),
    Fs(Arc<Mutex<VhostUserFs>>),
    NineP(Arc<Mutex<Virtio9p>>),
    Balloon(Arc<Mutex<Balloon>>),
}

impl DeviceHandle {
    /// QEMU's device type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            DeviceHandle::Block(_) => "virtio-blk-device",
            DeviceHandle::Net(_) => "virtio-net-device",
            DeviceHandle::Console(_) => "virtconsole",
            DeviceHandle::VirtioSerial(_) => "virtio-serial-device",
            DeviceHandle::Rng(_) => "virtio-rng-device",
            DeviceHandle::Keyboard(_) => "virtio-keyboard-device",
            DeviceHandle::Serial(_) => "isa-serial",
            DeviceHandle::Vsock(_) => "vhost-vsock-device",
            // microvm's own name (QEMU has no hybrid vsock); the Firecracker front end's PUT /vsock.
            DeviceHandle::HybridVsock(_) => "hybrid-vsock-device",
            DeviceHandle::VhostNet(_) => "virtio-net-device",
            DeviceHandle::Fs(_) => "vhost-user-fs-device",
            DeviceHandle::NineP(_) => "virtio-9p-device",
            DeviceHandle::Balloon(_) => "virtio-balloon-device",
        }
    }
}

pub struct RegisteredDevice {
    pub id: Option<String>,
    /// The virtio-mmio slot, for virtio devices.
    pub slot: Option<Slot>,
    pub handle: DeviceHandle,
}

#[derive(Debug, thiserror::Error)]
#[error("duplicate device id '{0}'")]
pub struct DuplicateId(pub String);

#[derive(Default)]
pub struct DeviceRegistry {
    devices: Vec<RegisteredDevice>,
}

impl DeviceRegistry {
    pub fn insert(&mut self, id: Option<String>, slot: Option<Slot>, handle: DeviceHandle) -> Result<(), DuplicateId> {
        if let Some(id) = &id {
            if self.get(id).is_some() {
                return Err(DuplicateId(id.clone()));
            }
        }
        self.devices.push(RegisteredDevice { id, slot, handle });
        Ok(())
    }

    /// The balloon, if there is one (there is at most one).
    pub fn balloon(&self) -> Option<&Arc<Mutex<Balloon>>> {
        self.devices.iter().find_map(|d| match &d.handle {
            DeviceHandle::Balloon(b) => Some(b),
            _ => None,
        })
    }

    /// The first virtio keyboard, if any: where QMP's keys go.
    pub fn keyboard(&self) -> Option<&Arc<Mutex<VirtioKeyboard>>> {
        self.devices.iter().find_map(|d| match &d.handle {
            DeviceHandle::Keyboard(k) => Some(k),
            _ => None,
        })
    }

    pub fn get(&self, id: &str) -> Option<&DeviceHandle> {
        self.devices.iter().find(|d| d.id.as_deref() == Some(id)).map(|d| &d.handle)
    }

    /// In creation order (which is slot order for virtio devices).
    pub fn iter(&self) -> impl Iterator<Item = &RegisteredDevice> {
        self.devices.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_found_by_id_and_ids_are_unique() {
        let mut registry = DeviceRegistry::default();
        let rng = || DeviceHandle::Rng(Arc::new(Mutex::new(Rng::new().unwrap())));
        registry.insert(Some("rng0".into()), None, rng()).unwrap();
        registry.insert(None, None, rng()).unwrap();
        registry.insert(None, None, rng()).unwrap();
        assert_eq!(registry.get("rng0").map(DeviceHandle::type_name), Some("virtio-rng-device"));
        assert!(registry.get("nope").is_none());
        assert_eq!(
            registry.insert(Some("rng0".into()), None, rng()).unwrap_err().to_string(),
            "duplicate device id 'rng0'"
        );
        assert_eq!(registry.iter().count(), 3);
    }
}
