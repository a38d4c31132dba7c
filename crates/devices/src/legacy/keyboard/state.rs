//! The i8042 controller and keyboard as saved in a snapshot.

use super::{I8042Controller, I8042PortDevice, Pending, QUEUE_LEN};
use crate::state::{DeviceState, StateError};
use serde::{Deserialize, Serialize};
use vm_superio::Trigger;

/// Everything the controller holds between two port accesses. vm-superio's part (the
/// reset command) holds nothing. An IRQ 1 already raised is the irqchip's to save.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct I8042State {
    pub config: u8,
    pub status: u8,
    pub output: u8,
    /// Bytes from the keyboard waiting for the output buffer (at most 256).
    pub queue: Vec<u8>,
    pub pending: PendingWrite,
    pub scanning: bool,
}

/// What the next byte written to the data port is for (`Pending`, for serde).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingWrite {
    None,
    Config,
    OutputPort,
    KeyboardOutput,
    AuxOutput,
    AuxDevice,
    KeyboardParameter(u8),
}

impl From<Pending> for PendingWrite {
    fn from(p: Pending) -> Self {
        match p {
            Pending::None => PendingWrite::None,
            Pending::Config => PendingWrite::Config,
            Pending::OutputPort => PendingWrite::OutputPort,
            Pending::KeyboardOutput => PendingWrite::KeyboardOutput,
            Pending::AuxOutput => PendingWrite::AuxOutput,
            Pending::AuxDevice => PendingWrite::AuxDevice,
            Pending::KeyboardParameter(c) => PendingWrite::KeyboardParameter(c),
        }
    }
}

impl From<PendingWrite> for Pending {
    fn from(p: PendingWrite) -> Self {
        match p {
            PendingWrite::None => Pending::None,
            PendingWrite::Config => Pending::Config,
            PendingWrite::OutputPort => Pending::OutputPort,
            PendingWrite::KeyboardOutput => Pending::KeyboardOutput,
            PendingWrite::AuxOutput => Pending::AuxOutput,
            PendingWrite::AuxDevice => Pending::AuxDevice,
            PendingWrite::KeyboardParameter(c) => Pending::KeyboardParameter(c),
        }
    }
}

impl<T: Trigger> I8042Controller<T> {
    pub fn save_state(&self) -> I8042State {
        I8042State {
            config: self.config,
            status: self.status,
            output: self.output,
            queue: self.queue.iter().copied().collect(),
            pending: self.pending.into(),
            scanning: self.scanning,
        }
    }

    pub fn restore_state(&mut self, state: I8042State) -> Result<(), StateError> {
        if state.queue.len() > QUEUE_LEN {
            return Err(StateError::Invalid { device: "i8042", what: "keyboard queue (over 256 bytes)" });
        }
        self.config = state.config;
        self.status = state.status;
        self.output = state.output;
        self.queue = state.queue.into();
        self.pending = state.pending.into();
        self.scanning = state.scanning;
        Ok(())
    }
}

/// Both ports save the whole controller (they share it); restoring it twice is harmless.
impl<T: Trigger + Send> I8042PortDevice<T>
where
    T::E: std::fmt::Display,
{
    pub(super) fn save_controller(&mut self) -> Result<DeviceState, StateError> {
        let controller = self.controller.lock().unwrap_or_else(|p| p.into_inner());
        Ok(DeviceState::Keyboard(controller.save_state()))
    }

    pub(super) fn restore_controller(&mut self, state: DeviceState) -> Result<(), StateError> {
        let DeviceState::Keyboard(state) = state else { return Err(state.mismatch("i8042")) };
        self.controller.lock().unwrap_or_else(|p| p.into_inner()).restore_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::BusDevice;
    use crate::legacy::{I8042Port, Key};
    use std::sync::{Arc, Mutex};
    use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

    fn ports() -> (I8042PortDevice, I8042PortDevice, EventFd) {
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let reset = EventFd::new(EFD_NONBLOCK).unwrap();
        let controller = Arc::new(Mutex::new(I8042Controller::new(
            crate::EventFdTrigger::new(reset),
            crate::EventFdTrigger::new(irq.try_clone().unwrap()),
        )));
        let data = I8042PortDevice { controller: controller.clone(), port: I8042Port::Data };
        let command = I8042PortDevice { controller, port: I8042Port::Command };
        (data, command, irq)
    }

    fn read(dev: &mut I8042PortDevice) -> u8 {
        let mut b = [0u8];
        dev.read(0, &mut b);
        b[0]
    }

    /// Keys typed before the snapshot and not yet read reach the guest after it, and a
    /// half-written command (0x60 then its byte) completes.
    #[test]
    fn typed_keys_and_a_pending_command_survive() {
        let (mut data, mut command, _irq) = ports();
        let a = Key::by_qcode("a").unwrap();
        data.controller.lock().unwrap().key_event(a, true);
        data.controller.lock().unwrap().key_event(a, false);
        let first = read(&mut data);
        command.write(0, &[0x60]); // write config: the byte comes next
        let saved = data.save().unwrap();
        assert_eq!(command.save().unwrap(), saved);

        let (mut data2, mut command2, _irq2) = ports();
        command2.restore(saved.clone()).unwrap();
        data2.restore(saved).unwrap();
        data2.write(0, &[0x45]); // the config byte: interrupt on, translate on
        let mut rest = Vec::new();
        while read(&mut command2) & 1 != 0 {
            rest.push(read(&mut data2));
        }
        command2.write(0, &[0x20]);
        assert_eq!(read(&mut data2), 0x45, "the pending write went to the config byte");
        let mut want = a.scancode(true, false);
        want.extend(a.scancode(false, false));
        assert_eq!(want[0], first);
        assert_eq!(rest, want[1..]);
    }

    #[test]
    fn an_overlong_queue_or_another_kind_is_refused() {
        let (mut data, _command, _irq) = ports();
        let DeviceState::Keyboard(mut state) = data.save().unwrap() else { panic!() };
        state.queue = vec![0; QUEUE_LEN + 1];
        assert!(matches!(data.restore(DeviceState::Keyboard(state)), Err(StateError::Invalid { .. })));
        assert!(matches!(data.restore(DeviceState::Stateless), Err(StateError::KindMismatch { .. })));
    }
}
