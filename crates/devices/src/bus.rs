//! Routes guest accesses to devices by address. One `Bus` serves the I/O port
//! space and another the MMIO space; each device owns one contiguous range.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A device as seen from a vCPU: it gets the offset of the access within its
/// range and the data, whose length is the access width.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
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

    /// Every range on the bus, in address order: (base, len, name).
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, &'static str)> + '_ {
        self.devices.iter().map(|(base, e)| (*base, e.len, e.name))
    }
}

/// A device whose lock was poisoned by a panicking thread still serves the
/// others: its state is plain data, never left half-updated by a bus access.
fn lock(device: &Mutex<dyn BusDevice>) -> MutexGuard<'_, dyn BusDevice + 'static> {
    device.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
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
