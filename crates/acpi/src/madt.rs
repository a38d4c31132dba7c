//! The MADT: one local APIC per vCPU, the IOAPIC, IRQ 0's override when the
//! PIT exists, and LINT1 as NMI, as QEMU's `acpi_build_madt` writes them.
//!
//! acpi_tables' `MADT` type cannot set the table's flags (PCAT_COMPAT), so the
//! table is the crate's generic `Sdt` filled with the crate's local APIC and
//! IOAPIC entries, plus the two entry types it lacks, declared here.

use crate::machine::MachineDescription;
use crate::{AcpiError, OEM_ID, OEM_REVISION, OEM_TABLE_ID, TABLE_HEADER_LEN};
use acpi_tables::madt::{EnabledStatus, IoApic, ProcessorLocalApic};
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;
use arch::layout::APIC_START;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// MADT revision of ACPI 6.0, the one QEMU writes.
const MADT_REVISION: u8 = 3;
/// Header fields after the standard header: local APIC address, then flags.
const LOCAL_APIC_ADDRESS_OFFSET: usize = TABLE_HEADER_LEN as usize;
const FLAGS_OFFSET: usize = LOCAL_APIC_ADDRESS_OFFSET + 4;
/// Length of the MADT header: standard header, local APIC address, flags.
const MADT_HEADER_LEN: u32 = TABLE_HEADER_LEN + 8;
/// MADT flag: the system also has dual 8259s.
const PCAT_COMPAT: u32 = 1 << 0;

/// Entry types (ACPI 6.x table 5.44).
const ENTRY_INTERRUPT_SOURCE_OVERRIDE: u8 = 2;
const ENTRY_LOCAL_APIC_NMI: u8 = 4;
/// Source bus of an interrupt source override: ISA.
const BUS_ISA: u8 = 0;
/// MPS INTI flags "conforms to the bus" (ISA: edge, active high).
const INTI_CONFORMING: u16 = 0;
/// The PIT's ISA IRQ and the IOAPIC pin KVM routes it to.
const PIT_IRQ: u8 = 0;
const PIT_GSI: u32 = 2;
/// Processor UID meaning "every processor".
const ALL_PROCESSORS: u8 = 0xff;
/// Local APIC input wired to NMI, as the MP table and KVM's LAPIC set-up have it.
const NMI_LINT: u8 = 1;

/// Interrupt Source Override (ACPI 6.x §5.2.12.5).
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, FromBytes, Immutable)]
struct InterruptSourceOverride {
    entry_type: u8,
    length: u8,
    bus: u8,
    source: u8,
    gsi: U32,
    flags: U16,
}

/// Local APIC NMI (ACPI 6.x §5.2.12.7).
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, FromBytes, Immutable)]
struct LocalApicNmi {
    entry_type: u8,
    length: u8,
    processor_uid: u8,
    flags: U16,
    lint: u8,
}

pub(crate) fn build(machine: &MachineDescription) -> Result<Vec<u8>, AcpiError> {
    let local_apic =
        u32::try_from(APIC_START).map_err(|_| AcpiError::Above4GiB { what: "local APIC", address: APIC_START })?;
    let ioapic = &machine.ioapic;
    let ioapic_address =
        u32::try_from(ioapic.address).map_err(|_| AcpiError::Above4GiB { what: "IOAPIC", address: ioapic.address })?;

    let mut madt = Sdt::new(*b"APIC", MADT_HEADER_LEN, MADT_REVISION, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    madt.write_u32(LOCAL_APIC_ADDRESS_OFFSET, local_apic);
    madt.write_u32(FLAGS_OFFSET, if machine.pic { PCAT_COMPAT } else { 0 });
    for cpu in 0..machine.vcpu_count {
        // ACPI processor UID and APIC id both the vCPU index, as the MP table has it.
        ProcessorLocalApic::new(cpu, cpu, EnabledStatus::Enabled).to_aml_bytes(&mut madt);
    }
    IoApic::new(ioapic.id, ioapic_address, ioapic.gsi_base).to_aml_bytes(&mut madt);
    if machine.pit {
        madt.append(InterruptSourceOverride {
            entry_type: ENTRY_INTERRUPT_SOURCE_OVERRIDE,
            length: size_of::<InterruptSourceOverride>() as u8,
            bus: BUS_ISA,
            source: PIT_IRQ,
            gsi: PIT_GSI.into(),
            flags: INTI_CONFORMING.into(),
        });
    }
    madt.append(LocalApicNmi {
        entry_type: ENTRY_LOCAL_APIC_NMI,
        length: size_of::<LocalApicNmi>() as u8,
        processor_uid: ALL_PROCESSORS,
        flags: INTI_CONFORMING.into(),
        lint: NMI_LINT,
    });
    Ok(madt.as_slice().to_vec())
}
