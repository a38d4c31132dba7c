//! Generic Event Device (ACPI 6.x §5.6.9, `ACPI0013`): one interrupt line and
//! an event selector register. The DSDT's `_EVT` method reads the selector
//! when the line fires and notifies the ACPI device each set bit stands for.

use crate::bus::BusDevice;
use crate::state::{DeviceState, StateError};
use crate::EventFdTrigger;
use serde::{Deserialize, Serialize};
use vm_superio::Trigger;

/// Selector bit of the power button event (QEMU's ACPI_GED_PWR_DOWN_EVT): `_EVT`
/// notifies the `PNP0C0C` device, and the guest's ACPI button driver shuts down.
pub const GED_EVENT_POWER_BUTTON: u32 = 1 << 1;
/// Selector bit of a new VM Generation ID (`-device vmgenid`, raised on every restore):
/// `_EVT` notifies the `VGEN` device, and Linux's `vmgenid` driver reseeds the kernel's
/// RNG. QEMU has no GED bit for it (its PC machines use a GPE); bits 0, 2 and 3 are its
/// memory hotplug, NVDIMM and CPU hotplug events, so this one takes bit 4.
pub const GED_EVENT_VMGENID: u32 = 1 << 4;

/// What a snapshot keeps of the GED: the events the guest has not read yet. An
/// interrupt raised for them was already delivered to the irqchip, whose state the VMM
/// saves; nothing else is pending here.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct GedState {
    pub selector: u32,
}

/// The event selector register and the interrupt that announces it.
pub struct GenericEventDevice<T: Trigger = EventFdTrigger> {
    /// Events raised since the guest last read the selector.
    selector: u32,
    interrupt: T,
}

impl<T: Trigger> GenericEventDevice<T> {
    /// `interrupt` raises the GED's GSI (an irqfd in the VMM).
    pub fn new(interrupt: T) -> Self {
        GenericEventDevice { selector: 0, interrupt }
    }

    /// Presses the power button (`system_powerdown`): latches the event and
    /// raises the interrupt. A press before the guest has read an earlier
    /// one is one event, as on QEMU.
    pub fn press_power_button(&mut self) -> Result<(), T::E> {
        self.raise(GED_EVENT_POWER_BUTTON)
    }

    /// Announces a new VM Generation ID (a restore wrote one). Called after the GED's
    /// saved state is restored, so the saved selector cannot overwrite the event; the
    /// interrupt waits in the restored irqchip until a vCPU runs.
    pub fn announce_new_generation(&mut self) -> Result<(), T::E> {
        self.raise(GED_EVENT_VMGENID)
    }

    fn raise(&mut self, event: u32) -> Result<(), T::E> {
        self.selector |= event;
        self.interrupt.trigger()
    }
}

impl<T: Trigger + Send> BusDevice for GenericEventDevice<T> {
    /// Reading the selector hands its events to the guest and clears them, as
    /// QEMU's does: `_EVT` reads it once per interrupt (a 32-bit `DWordAcc` field).
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let bytes = self.selector.to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = usize::try_from(offset).ok().and_then(|o| bytes.get(o + i)).copied().unwrap_or(0);
        }
        if offset == 0 {
            self.selector = 0;
        }
    }

    /// The selector is read-only.
    fn write(&mut self, _offset: u64, _data: &[u8]) {}

    fn save(&mut self) -> Result<DeviceState, StateError> {
        Ok(DeviceState::Ged(GedState { selector: self.selector }))
    }

    fn restore(&mut self, state: DeviceState) -> Result<(), StateError> {
        match state {
            DeviceState::Ged(GedState { selector }) => {
                self.selector = selector;
                Ok(())
            }
            other => Err(other.mismatch("acpi-ged")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

    fn ged() -> (GenericEventDevice, EventFd) {
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        (GenericEventDevice::new(EventFdTrigger::new(irq.try_clone().unwrap())), irq)
    }

    fn read_selector(dev: &mut GenericEventDevice) -> u32 {
        let mut data = [0u8; 4];
        dev.read(0, &mut data);
        u32::from_le_bytes(data)
    }

    #[test]
    fn selector_is_empty_and_quiet_until_the_button_is_pressed() {
        let (mut dev, irq) = ged();
        assert_eq!(read_selector(&mut dev), 0);
        assert!(irq.read().is_err(), "no interrupt without an event");
    }

    #[test]
    fn power_button_sets_its_bit_and_raises_the_interrupt() {
        let (mut dev, irq) = ged();
        dev.press_power_button().unwrap();
        assert_eq!(irq.read().unwrap(), 1);
        assert_eq!(read_selector(&mut dev), GED_EVENT_POWER_BUTTON);
    }

    #[test]
    fn reading_the_selector_clears_it() {
        let (mut dev, _irq) = ged();
        dev.press_power_button().unwrap();
        dev.press_power_button().unwrap();
        assert_eq!(read_selector(&mut dev), GED_EVENT_POWER_BUTTON, "two presses, one latched event");
        assert_eq!(read_selector(&mut dev), 0);
    }

    #[test]
    fn guest_writes_do_not_change_the_selector() {
        let (mut dev, _irq) = ged();
        dev.write(0, &[0xff; 4]);
        assert_eq!(read_selector(&mut dev), 0);
        dev.press_power_button().unwrap();
        dev.write(0, &[0; 4]);
        assert_eq!(read_selector(&mut dev), GED_EVENT_POWER_BUTTON);
    }

    #[test]
    fn a_pending_press_survives_save_and_restore() {
        let (mut dev, _irq) = ged();
        dev.press_power_button().unwrap();
        let saved = dev.save().unwrap();
        let (mut fresh, irq) = ged();
        assert_eq!(
            fresh.restore(DeviceState::Stateless).unwrap_err().to_string(),
            "the saved state is of kind stateless, but this device is of kind acpi-ged"
        );
        fresh.restore(saved).unwrap();
        assert!(irq.read().is_err(), "restoring raises nothing: the irqchip has the interrupt");
        assert_eq!(read_selector(&mut fresh), GED_EVENT_POWER_BUTTON);
        assert_eq!(read_selector(&mut fresh), 0);
    }

    #[test]
    fn a_new_generation_adds_its_bit_to_a_restored_selector() {
        let (mut dev, _irq) = ged();
        dev.press_power_button().unwrap();
        let saved = dev.save().unwrap();
        let (mut fresh, irq) = ged();
        fresh.restore(saved).unwrap();
        fresh.announce_new_generation().unwrap();
        assert_eq!(irq.read().unwrap(), 1);
        assert_eq!(read_selector(&mut fresh), GED_EVENT_POWER_BUTTON | GED_EVENT_VMGENID);
        assert_eq!(read_selector(&mut fresh), 0);
    }

    #[test]
    fn narrow_reads_see_the_bytes_at_their_offset() {
        let (mut dev, _irq) = ged();
        dev.press_power_button().unwrap();
        let mut byte = [0xaau8; 1];
        dev.read(1, &mut byte);
        assert_eq!(byte, [0], "bit 1 lives in byte 0");
        dev.read(0, &mut byte);
        assert_eq!(byte, [GED_EVENT_POWER_BUTTON as u8]);
    }
}
