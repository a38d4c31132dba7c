//! Routes guest accesses to devices by address. One `Bus` serves the I/O port
//! space and another the MMIO space; each device owns one contiguous range.

use crate::state::{DeviceState, StateError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use crate::state::SavedDevice;

/// A device as seen from a vCPU: it gets the offset of the access within its
/// range and the data, whose length is the access width.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
    /// The device's state, for a snapshot. Called with the VM paused (no vCPU in
    /// KVM_RUN, the device thread parked). No default: a device cannot forget it.
    fn save(&mut self) -> Result<DeviceState, StateError>;
    /// Loads a state `save` returned, into a device built from the same command line;
    /// `KindMismatch` if the state is another kind's.
    fn restore(&mut self, state: DeviceState) -> Result<(), StateError>;
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("range {base:#x}+{len:#x} overlaps a device already on the bus")]
    Overlap { base: u64, len: u64 },
    #[error("empty or wrapping range {base:#x}+{len:#x}")]
    BadRange { base: u64, len: u64 },
}

/// A device registered on a bus, with a name for reports and logs.
pub struct BusEntry {
    pub len: u64,
    pub name: &'static str,
    pub device: Arc<Mutex<dyn BusDevice>>,
}

#[derive(Default)]
pub struct Bus {
    devices: BTreeMap<u64, BusEntry>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(
        &mut self,
        base: u64,
        len: u64,
        name: &'static str,
        device: Arc<Mutex<dyn BusDevice>>,
    ) -> Result<(), BusError> {
        let end = base.checked_add(len).filter(|_| len > 0).ok_or(BusError::BadRange { base, len })?;
        let overlaps_prev = self.devices.range(..end).next_back().is_some_and(|(b, e)| b + e.len > base);
        if overlaps_prev {
            return Err(BusError::Overlap { base, len });
        }
        self.devices.insert(base, BusEntry { len, name, device });
        Ok(())
    }

    /// The device covering `addr`, and the offset of `addr` in its range.
    fn find(&self, addr: u64) -> Option<(&BusEntry, u64)> {
        let (base, entry) = self.devices.range(..=addr).next_back()?;
        let offset = addr - base;
        (offset < entry.len).then_some((entry, offset))
    }

    /// Returns false when nothing is mapped at `addr` (`data` is then untouched).
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((entry, offset)) => {
                lock(&entry.device).read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Returns false when nothing is mapped at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((entry, offset)) => {
                lock(&entry.device).write(offset, data);
                true
            }
            None => false,
        }
    }

    /// Every device's state, in address order.
    pub fn save_all(&self) -> Result<Vec<SavedDevice>, StateError> {
        self.devices
            .iter()
            .map(|(&base, e)| {
                let state = lock(&e.device).save().map_err(|source| at(e.name, base, source))?;
                Ok(SavedDevice { base, len: e.len, name: e.name.to_string(), state })
            })
            .collect()
    }

    /// Restores what `save_all` returned. First checks that `saved` describes exactly
    /// the devices of this bus (same count, and base, length and name in order), so a
    /// machine built differently is refused before any device changes.
    pub fn restore_all(&self, saved: Vec<SavedDevice>) -> Result<(), StateError> {
        let describe = |base: u64, len: u64, name: &str| format!("{name} at {base:#x}+{len:#x}");
        let count = self.devices.len().max(saved.len());
        let mut here = self.devices.iter().map(|(&b, e)| describe(b, e.len, e.name));
        let mut there = saved.iter().map(|d| describe(d.base, d.len, &d.name));
        for index in 0..count {
            let (now, was) = (here.next(), there.next());
            if now != was {
                let none = || "nothing".to_string();
                return Err(StateError::Layout {
                    index,
                    saved: was.unwrap_or_else(none),
                    now: now.unwrap_or_else(none),
                });
            }
        }
        for (entry, device) in self.devices.values().zip(saved) {
            lock(&entry.device).restore(device.state).map_err(|source| at(entry.name, device.base, source))?;
        }
        Ok(())
    }

    /// Every range on the bus, in address order: (base, len, name).
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, &'static str)> + '_ {
        self.devices.iter().map(|(base, e)| (*base, e.len, e.name))
    }
}

fn at(name: &str, base: u64, source: StateError) -> StateError {
    StateError::At { name: name.to_string(), base, source: Box::new(source) }
}

/// A device whose lock was poisoned by a panicking thread still serves the
/// others: its state is plain data, never left half-updated by a bus access.
fn lock(device: &Mutex<dyn BusDevice>) -> MutexGuard<'_, dyn BusDevice + 'static> {
    device.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::acpi::GedState;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, Vec<u8>)>,
    }

    /// Saves how many writes it had (as a GED selector, any kind with a number will do).
    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
        fn save(&mut self) -> Result<DeviceState, StateError> {
            Ok(DeviceState::Ged(GedState { selector: self.writes.len() as u32 }))
        }
        fn restore(&mut self, state: DeviceState) -> Result<(), StateError> {
            let DeviceState::Ged(GedState { selector }) = state else { return Err(state.mismatch("recorder")) };
            self.writes = vec![(0, Vec::new()); selector as usize];
            Ok(())
        }
    }

    fn two_device_bus() -> (Bus, Arc<Mutex<Recorder>>, Arc<Mutex<Recorder>>) {
        let (a, b) = (Arc::new(Mutex::new(Recorder::default())), Arc::new(Mutex::new(Recorder::default())));
        let mut bus = Bus::new();
        bus.insert(0x3f8, 8, "serial", b.clone()).unwrap();
        bus.insert(0x60, 1, "i8042", a.clone()).unwrap();
        (bus, a, b)
    }

    #[test]
    fn every_device_is_saved_in_address_order_and_restored() {
        let (bus, _a, _b) = two_device_bus();
        bus.write(0x3f8, b"x");
        bus.write(0x3f9, b"y");
        let saved = bus.save_all().unwrap();
        let places: Vec<_> = saved.iter().map(|d| (d.base, d.len, d.name.as_str())).collect();
        assert_eq!(places, [(0x60, 1, "i8042"), (0x3f8, 8, "serial")]);
        let (fresh, a, b) = two_device_bus();
        fresh.restore_all(saved).unwrap();
        assert_eq!((a.lock().unwrap().writes.len(), b.lock().unwrap().writes.len()), (0, 2));
    }

    #[test]
    fn a_different_layout_is_refused_before_any_device_changes() {
        let (bus, _, _) = two_device_bus();
        bus.write(0x60, b"x");
        let saved = bus.save_all().unwrap();
        let (mut other, a, _) = two_device_bus();
        other.insert(0x70, 2, "rtc", Arc::new(Mutex::new(Recorder::default()))).unwrap();
        let err = other.restore_all(saved.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the devices differ from the saved machine: device 1 is rtc at 0x70+0x2 here, but was serial at 0x3f8+0x8"
        );
        assert!(a.lock().unwrap().writes.is_empty(), "nothing restored");
        let mut fewer = saved.clone();
        fewer.pop();
        let err = two_device_bus().0.restore_all(fewer).unwrap_err();
        assert!(
            matches!(err, StateError::Layout { index: 1, ref now, ref saved } if now.starts_with("serial") && saved == "nothing")
        );
        let mut moved = saved;
        moved[1].len = 16;
        assert!(matches!(two_device_bus().0.restore_all(moved), Err(StateError::Layout { index: 1, .. })));
    }

    #[test]
    fn a_device_error_names_the_device() {
        let (bus, _, _) = two_device_bus();
        let mut saved = bus.save_all().unwrap();
        saved[1].state = DeviceState::Stateless;
        let err = two_device_bus().0.restore_all(saved).unwrap_err();
        assert_eq!(
            err.to_string(),
            "serial at 0x3f8: the saved state is of kind stateless, but this device is of kind recorder"
        );
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset() {
        let dev = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(0x3f8, 8, "serial", dev.clone()).unwrap();
        let mut data = [0u8; 1];
        assert!(bus.read(0x3fd, &mut data));
        assert_eq!(data, [5]);
        assert!(bus.write(0x3f8, b"A"));
        assert_eq!(dev.lock().unwrap().writes, vec![(0, b"A".to_vec())]);
    }

    #[test]
    fn addresses_outside_every_range_are_unmapped() {
        let mut bus = Bus::new();
        bus.insert(0x3f8, 8, "serial", Arc::new(Mutex::new(Recorder::default()))).unwrap();
        let mut data = [0xaau8; 1];
        assert!(!bus.read(0x3f7, &mut data));
        assert!(!bus.read(0x400, &mut data));
        assert!(!bus.write(0, &[1]));
        assert_eq!(data, [0xaa]);
    }

    #[test]
    fn overlapping_and_empty_ranges_are_refused() {
        let dev = || Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(0x60, 1, "a", dev()).unwrap();
        bus.insert(0x64, 1, "b", dev()).unwrap();
        assert_eq!(bus.insert(0x5f, 2, "c", dev()), Err(BusError::Overlap { base: 0x5f, len: 2 }));
        assert_eq!(bus.insert(0x64, 1, "d", dev()), Err(BusError::Overlap { base: 0x64, len: 1 }));
        assert!(bus.insert(0x61, 3, "e", dev()).is_ok());
        assert_eq!(bus.insert(0x100, 0, "f", dev()), Err(BusError::BadRange { base: 0x100, len: 0 }));
        assert!(bus.insert(u64::MAX, 2, "g", dev()).is_err());
        let names: Vec<_> = bus.ranges().map(|r| r.2).collect();
        assert_eq!(names, ["a", "e", "b"]);
    }
}
