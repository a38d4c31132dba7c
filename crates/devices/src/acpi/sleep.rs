//! The sleep control, sleep status and reset registers of a hardware-reduced
//! ACPI platform (ACPI 6.x §4.8.3.6-7), one byte each, at QEMU's offsets. The
//! FADT points to them; Linux writes SLP_TYP|SLP_EN to power off and the reset
//! value to reboot.

use crate::bus::BusDevice;
use crate::state::{DeviceState, StateError};
use crate::EventFdTrigger;
use serde::{Deserialize, Serialize};
use vm_superio::Trigger;

/// Register offsets from the block's base (QEMU's ACPI_GED_REG_*).
pub const SLEEP_CONTROL_REGISTER: u64 = 0;
pub const SLEEP_STATUS_REGISTER: u64 = 1;
pub const RESET_REGISTER: u64 = 2;

/// The value the FADT tells the guest to write to the reset register (QEMU's
/// ACPI_GED_RESET_VALUE).
pub const RESET_VALUE: u8 = 0x42;

/// SLP_TYP of the soft-off state: the DSDT's `_S5` package names it, the
/// guest writes it back.
pub const SLP_TYP_S5: u8 = 5;
/// Sleep control register fields (ACPI 6.x §4.8.3.7): SLP_TYP in bits 2-4,
/// SLP_EN in bit 5.
const SLP_TYP_SHIFT: u8 = 2;
const SLP_TYP_MASK: u8 = 0x7;
const SLP_EN: u8 = 1 << 5;

/// The registers hold nothing between writes (they read as zero; each write acts at
/// once), so their saved state is empty; it is its own kind so that a state file whose
/// devices are out of order is still caught.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SleepState {}

/// Turns the guest's power-off and reset requests into events for the VMM.
pub struct SleepControlRegisters<T: Trigger = EventFdTrigger> {
    poweroff: T,
    reset: T,
}

impl<T: Trigger> SleepControlRegisters<T> {
    /// `poweroff` fires when the guest enters S5, `reset` when it writes the
    /// reset value (the VMM's reset event, the one the i8042 also fires).
    pub fn new(poweroff: T, reset: T) -> Self {
        SleepControlRegisters { poweroff, reset }
    }
}

impl<T: Trigger + Send> BusDevice for SleepControlRegisters<T>
where
    T::E: std::fmt::Display,
{
    /// Every register reads as zero: the machine never sleeps, so WAK_STS
    /// is never set, and the control and reset registers are write-only.
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        let result = match offset {
            // Only S5 is declared in the DSDT; any other sleep type, or a
            // write without SLP_EN, is ignored as on QEMU.
            SLEEP_CONTROL_REGISTER if value & SLP_EN != 0 && (value >> SLP_TYP_SHIFT) & SLP_TYP_MASK == SLP_TYP_S5 => {
                self.poweroff.trigger().map_err(|e| ("power-off", e))
            }
            RESET_REGISTER if value == RESET_VALUE => self.reset.trigger().map_err(|e| ("reset", e)),
            // SLEEP_STATUS_REGISTER: clearing WAK_STS, which is never set.
            _ => Ok(()),
        };
        if let Err((what, e)) = result {
            log::error!("ACPI sleep registers: cannot signal the {what}: {e}");
        }
    }

    fn save(&mut self) -> Result<DeviceState, StateError> {
        Ok(DeviceState::Sleep(SleepState {}))
    }

    fn restore(&mut self, state: DeviceState) -> Result<(), StateError> {
        match state {
            DeviceState::Sleep(SleepState {}) => Ok(()),
            other => Err(other.mismatch("acpi-sleep")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

    struct Events {
        poweroff: EventFd,
        reset: EventFd,
    }

    fn registers() -> (SleepControlRegisters, Events) {
        let poweroff = EventFd::new(EFD_NONBLOCK).unwrap();
        let reset = EventFd::new(EFD_NONBLOCK).unwrap();
        let dev = SleepControlRegisters::new(
            EventFdTrigger::new(poweroff.try_clone().unwrap()),
            EventFdTrigger::new(reset.try_clone().unwrap()),
        );
        (dev, Events { poweroff, reset })
    }

    const S5_WITH_SLP_EN: u8 = (SLP_TYP_S5 << SLP_TYP_SHIFT) | SLP_EN;

    #[test]
    fn s5_with_slp_en_powers_off() {
        let (mut dev, events) = registers();
        dev.write(SLEEP_CONTROL_REGISTER, &[S5_WITH_SLP_EN]);
        assert_eq!(events.poweroff.read().unwrap(), 1);
        assert!(events.reset.read().is_err());
    }

    #[test]
    fn s5_without_slp_en_or_other_sleep_types_do_nothing() {
        let (mut dev, events) = registers();
        // Linux writes SLP_TYP first, then SLP_TYP|SLP_EN; only the second counts.
        dev.write(SLEEP_CONTROL_REGISTER, &[SLP_TYP_S5 << SLP_TYP_SHIFT]);
        for slp_typ in (0..=SLP_TYP_MASK).filter(|&t| t != SLP_TYP_S5) {
            dev.write(SLEEP_CONTROL_REGISTER, &[(slp_typ << SLP_TYP_SHIFT) | SLP_EN]);
        }
        assert!(events.poweroff.read().is_err());
    }

    #[test]
    fn reset_value_resets_and_other_values_do_not() {
        let (mut dev, events) = registers();
        dev.write(RESET_REGISTER, &[RESET_VALUE - 1]);
        assert!(events.reset.read().is_err());
        dev.write(RESET_REGISTER, &[RESET_VALUE]);
        assert_eq!(events.reset.read().unwrap(), 1);
        assert!(events.poweroff.read().is_err());
    }

    #[test]
    fn s5_written_elsewhere_is_not_a_power_off() {
        let (mut dev, events) = registers();
        dev.write(SLEEP_STATUS_REGISTER, &[S5_WITH_SLP_EN]);
        dev.write(RESET_REGISTER, &[S5_WITH_SLP_EN]);
        dev.write(SLEEP_CONTROL_REGISTER, &[]);
        assert!(events.poweroff.read().is_err());
        assert!(events.reset.read().is_err());
    }

    #[test]
    fn state_round_trips_and_other_kinds_are_refused() {
        let (mut dev, _events) = registers();
        let saved = dev.save().unwrap();
        assert_eq!(saved, DeviceState::Sleep(SleepState {}));
        dev.restore(saved).unwrap();
        assert!(matches!(dev.restore(DeviceState::Stateless), Err(StateError::KindMismatch { .. })));
    }

    #[test]
    fn registers_read_as_zero() {
        let (mut dev, _events) = registers();
        dev.write(SLEEP_CONTROL_REGISTER, &[S5_WITH_SLP_EN]);
        for offset in [SLEEP_CONTROL_REGISTER, SLEEP_STATUS_REGISTER, RESET_REGISTER] {
            let mut data = [0xffu8];
            dev.read(offset, &mut data);
            assert_eq!(data, [0], "offset {offset}");
        }
    }
}
