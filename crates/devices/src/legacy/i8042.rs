use crate::bus::BusDevice;
use crate::EventFdTrigger;
use vm_superio::{I8042Device, Trigger};

/// vm-superio numbers i8042 registers from the data port 0x60; the command
/// port 0x64 is its offset 4.
const COMMAND_REGISTER: u8 = 4;

/// Status register value: output buffer full, input buffer empty. Linux's
/// i8042 driver reads a controller whose output never drains as "No
/// controller found" within 16 reads, instead of waiting ~1 s for command
/// replies a reset-only model never gives; the reboot path only waits for
/// the input buffer to be empty, so the reset command goes through at once.
const STATUS_OUTPUT_FULL: u8 = 0x01;

/// The command that pulses the CPU reset line (what vm-superio turns into the event).
const CPU_RESET: u8 = 0xfe;

/// Counts a read of `width` bytes in Firecracker's `i8042` section, which takes one-byte
/// accesses and counts others as missed (both controllers here answer them anyway).
pub(crate) fn count_read(width: usize) {
    if width == 1 {
        metrics::I8042.read_count.inc();
    } else {
        metrics::I8042.missed_read_count.inc();
    }
}

/// Counts a write of `width` bytes; `command` is the byte written to port 0x64.
pub(crate) fn count_write(width: usize, command: Option<u8>) {
    if width != 1 {
        metrics::I8042.missed_write_count.inc();
        return;
    }
    metrics::I8042.write_count.inc();
    if command == Some(CPU_RESET) {
        metrics::I8042.reset_count.inc();
    }
}

/// Hands a command vm-superio models (the CPU reset) to its controller.
pub(crate) fn pulse<T: Trigger>(controller: &mut I8042Device<T>, command: u8)
where
    T::E: std::fmt::Display,
{
    if let Err(e) = controller.write(COMMAND_REGISTER, command) {
        metrics::I8042.error_count.inc();
        log::error!("i8042: cannot signal the reset: {e}");
    }
}

/// The i8042 command port alone: the CPU reset command (0xFE) fires the
/// reset event. Nothing else of the keyboard controller is modelled, so
/// nothing else is exposed, and the guest's driver sees no keyboard.
///
/// The event is any trigger: an eventfd the main loop watches, or in solo mode one
/// that tells the only thread directly (no eventfd to make, dup and close at start).
pub struct I8042Reset<T: Trigger = EventFdTrigger> {
    controller: I8042Device<T>,
}

impl<T: Trigger> I8042Reset<T> {
    pub fn new(reset: T) -> Self {
        I8042Reset { controller: I8042Device::new(reset) }
    }
}

impl<T: Trigger + Send> BusDevice for I8042Reset<T>
where
    T::E: std::fmt::Display,
{
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(STATUS_OUTPUT_FULL);
        count_read(data.len());
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let &[command] = data else {
            count_write(data.len(), None);
            return;
        };
        count_write(1, Some(command));
        pulse(&mut self.controller, command);
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

    /// Firecracker's `i8042` section: bytes read and written, resets, wide accesses
    /// missed. Other tests of this process may count too, so each check is a lower bound.
    #[test]
    fn accesses_and_resets_are_counted() {
        let m = &metrics::I8042;
        let before = [m.read_count.total(), m.write_count.total(), m.reset_count.total()];
        let missed = [m.missed_read_count.total(), m.missed_write_count.total()];
        let evt = EventFd::new(EFD_NONBLOCK).unwrap();
        let mut dev = I8042Reset::new(EventFdTrigger::new(evt.try_clone().unwrap()));
        dev.read(0, &mut [0u8]);
        dev.read(0, &mut [0u8; 2]);
        dev.write(0, &[0xd1]);
        dev.write(0, &[0xfe]);
        dev.write(0, &[0xfe, 0]);
        assert!(m.read_count.total() > before[0]);
        assert!(m.write_count.total() >= before[1] + 2);
        assert!(m.reset_count.total() > before[2]);
        assert!(m.missed_read_count.total() > missed[0] && m.missed_write_count.total() > missed[1]);
        assert_eq!(evt.read().unwrap(), 1, "the wide write was not a reset");
    }
}
