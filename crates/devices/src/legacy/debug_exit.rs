//! QEMU's `isa-debug-exit`: a port test guests write a value to in order to
//! end the VM with a status they choose. A write of V ends it with status
//! (V << 1) | 1, so a guest can never report plain success (0) by accident.
//! Reads return all ones, as QEMU's device does.

use crate::bus::BusDevice;

/// Called with the process status when the guest writes the port.
pub type ExitWith = Box<dyn Fn(u32) + Send>;

pub struct DebugExit {
    exit: ExitWith,
}

impl DebugExit {
    pub fn new(exit: ExitWith) -> Self {
        DebugExit { exit }
    }
}

/// The status a write of `data` (little-endian, the access width) asks for.
pub fn exit_status(data: &[u8]) -> u32 {
    let value = data.iter().take(4).rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    (value << 1) | 1
}

impl BusDevice for DebugExit {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        (self.exit)(exit_status(data));
    }

    /// Nothing to save: a write ends the VM at once.
    fn save(&mut self) -> Result<crate::state::DeviceState, crate::state::StateError> {
        Ok(crate::state::DeviceState::Stateless)
    }

    fn restore(&mut self, state: crate::state::DeviceState) -> Result<(), crate::state::StateError> {
        crate::state::restore_stateless(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_write_of_v_asks_for_v_shifted_with_the_low_bit_set() {
        assert_eq!(exit_status(&[0]), 1);
        assert_eq!(exit_status(&[0x21]), 0x43);
        assert_eq!(exit_status(&[0x34, 0x12]), 0x2469);
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let mut dev = DebugExit::new(Box::new(move |s| sink.lock().unwrap().push(s)));
        dev.write(0, &[3]);
        let mut data = [0u8; 2];
        dev.read(0, &mut data);
        assert_eq!((got.lock().unwrap().as_slice(), data), (&[7u32][..], [0xff, 0xff]));
    }
}
