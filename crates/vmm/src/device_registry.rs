//! Devices kept by id with typed handles, so monitor commands (and later snapshot,
//! hot reconfiguration, balloon control) can find a device and talk to its own type.
//! Ids are the ones the command line gave: a drive's id for a disk, a netdev's id for a
//! NIC, a chardev's id for a console; a device without one is kept but cannot be named.

use crate::slot::Slot;
use devices::virtio::balloon::Balloon;
use devices::virtio::input::VirtioKeyboard;
use std::any::Any;
use std::sync::{Arc, Mutex};

/// One device: its QEMU type name and the device itself, which the code that knows its
/// type takes back with [`DeviceHandle::get`]. Untyped so that a new device kind needs
/// no variant here (its descriptor, `device_kinds/`, names it).
#[derive(Clone)]
pub struct DeviceHandle {
    type_name: &'static str,
    device: Arc<dyn Any + Send + Sync>,
}

impl DeviceHandle {
    pub fn new<D: Send + 'static>(type_name: &'static str, device: Arc<Mutex<D>>) -> Self {
        DeviceHandle { type_name, device }
    }

    /// QEMU's device type name.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The device, if it is a `D`.
    pub fn get<D: Send + 'static>(&self) -> Option<Arc<Mutex<D>>> {
        self.device.clone().downcast::<Mutex<D>>().ok()
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
    pub fn balloon(&self) -> Option<Arc<Mutex<Balloon>>> {
        self.devices.iter().find_map(|d| d.handle.get())
    }

    /// The first virtio keyboard, if any: where QMP's keys go.
    pub fn keyboard(&self) -> Option<Arc<Mutex<VirtioKeyboard>>> {
        self.devices.iter().find_map(|d| d.handle.get())
    }

    /// The device `id`, if it is a `D`.
    pub fn get_as<D: Send + 'static>(&self, id: &str) -> Option<Arc<Mutex<D>>> {
        self.get(id).and_then(DeviceHandle::get)
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
    use devices::virtio::rng::Rng;

    #[test]
    fn devices_are_found_by_id_and_ids_are_unique() {
        let mut registry = DeviceRegistry::default();
        let rng = || DeviceHandle::new("virtio-rng-device", Arc::new(Mutex::new(Rng::new().unwrap())));
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
        assert!(registry.get_as::<Rng>("rng0").is_some(), "the handle gives its device back by type");
        assert!(registry.get_as::<Balloon>("rng0").is_none(), "and nothing of another type");
    }
}
