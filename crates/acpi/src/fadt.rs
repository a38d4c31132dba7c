//! The FADT of a hardware-reduced ACPI platform: no SCI, no PM1/GPE blocks,
//! only the sleep control/status registers and the reset register, at the
//! addresses and with the reset value of QEMU microvm's `acpi_build_microvm`.

use crate::machine::MachineDescription;
use crate::{OEM_ID, OEM_REVISION, OEM_TABLE_ID};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::Aml;
use devices::acpi::{RESET_REGISTER, RESET_VALUE, SLEEP_CONTROL_REGISTER, SLEEP_STATUS_REGISTER};

/// IA-PC boot architecture flag (ACPI 6.x table 5.11): no CMOS RTC. Set when
/// `rtc=off`, so Linux does not register an RTC at ports nobody decodes.
const IAPC_BOOT_ARCH_NO_CMOS_RTC: u16 = 1 << 5;
/// Each register is one byte.
const REGISTER_BITS: u8 = 8;

/// A one-byte MMIO register.
fn byte_register(address: u64) -> GAS {
    GAS::new(AddressSpace::SystemMemory, REGISTER_BITS, 0, AccessSize::ByteAccess, address)
}

pub(crate) fn build(machine: &MachineDescription, dsdt_address: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_address)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup);
    fadt.sleep_control_reg = byte_register(machine.sleep_registers + SLEEP_CONTROL_REGISTER);
    fadt.sleep_status_reg = byte_register(machine.sleep_registers + SLEEP_STATUS_REGISTER);
    fadt.reset_reg = byte_register(machine.sleep_registers + RESET_REGISTER);
    fadt.reset_value = RESET_VALUE;
    if machine.rtc.is_none() {
        fadt.iapc_boot_arch = IAPC_BOOT_ARCH_NO_CMOS_RTC.into();
    }
    let mut bytes = Vec::new();
    fadt.finalize().to_aml_bytes(&mut bytes);
    bytes
}
