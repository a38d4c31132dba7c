//! The devices behind microvm's hardware-reduced ACPI (`-M microvm,acpi=on`):
//! the Generic Event Device that carries the power button, and the sleep
//! control/status and reset registers the FADT points to. Their register
//! layout is QEMU's (`hw/acpi/generic_event_device.c`), so the tables built by
//! the `acpi` crate describe the same interface a QEMU microvm guest sees.

mod ged;
mod sleep;

pub use ged::{GedState, GenericEventDevice, GED_EVENT_POWER_BUTTON, GED_EVENT_VMGENID};
pub use sleep::{
    SleepControlRegisters, SleepState, RESET_REGISTER, RESET_VALUE, SLEEP_CONTROL_REGISTER, SLEEP_STATUS_REGISTER,
    SLP_TYP_S5,
};
