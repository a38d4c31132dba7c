use crate::bus::BusDevice;
use crate::EventFdTrigger;
use vm_superio::I8042Device;

/// vm-superio numbers i8042 registers from the data port 0x60; the command
/// port 0x64 is its offset 4.
const COMMAND_REGISTER: u8 = 4;

/// Status register value: output buffer full, input buffer empty. Linux's
/// i8042 driver reads a controller whose output never drains as "No
/// controller found" within 16 reads, instead of waiting ~1 s for command
/// replies a reset-only model never gives; the reboot path only waits for
/// the input buffer to be empty, so the reset command goes through at once.
const STATUS_OUTPUT_FULL: u8 = 0x01;

/// The i8042 command port alone: the CPU reset command (0xFE) fires the
/// reset event. Nothing else of the keyboard controller is modelled, so
/// nothing else is exposed, and the guest's driver sees no keyboard.
pub struct I8042Reset {
    controller: I8042Device<EventFdTrigger>,
}

impl I8042Reset {
    pub fn new(reset: EventFdTrigger) -> Self {
        I8042Reset { controller: I8042Device::new(reset) }
    }
}

impl BusDevice for I8042Reset {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(STATUS_OUTPUT_FULL);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        if let Some(&command) = data.first() {
            if let Err(e) = self.controller.write(COMMAND_REGISTER, command) {
                log::error!("i8042: cannot signal the reset: {e}");
            }
        }
    }

    /// Nothing to save: vm-superio's controller holds only its reset event.
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
    use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

    #[test]
    fn reset_command_fires_the_event_and_others_do_not() {
        let evt = EventFd::new(EFD_NONBLOCK).unwrap();
        let mut dev = I8042Reset::new(EventFdTrigger::new(evt.try_clone().unwrap()));
        dev.write(0, &[0xd1]);
        assert!(evt.read().is_err(), "no event for another command");
        let mut status = [0u8];
        dev.read(0, &mut status);
        assert_eq!(status[0] & 0x02, 0, "input buffer empty: reset can be written");
        assert_eq!(status[0] & 0x01, 1, "output stuck full: drivers find no controller");
        dev.write(0, &[0xfe]);
        assert_eq!(evt.read().unwrap(), 1);
    }
}
