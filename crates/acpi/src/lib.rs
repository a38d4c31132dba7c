//! The hardware-reduced ACPI tables of `-M microvm,acpi=on`, as QEMU's
//! microvm builds them (`hw/i386/acpi-microvm.c`): RSDP, XSDT, FADT, MADT and
//! a DSDT listing the virtio-mmio slots in use, COM1, the RTC and the Generic
//! Event Device with its power button. Built with rust-vmm's `acpi_tables`.
//!
//! The VMM describes the machine it built ([`MachineDescription`]), calls
//! [`build_tables`] once guest memory exists, and passes the returned RSDP
//! address to the kernel (`hvm_start_info.rsdp_paddr` for PVH,
//! `boot_params.acpi_rsdp_addr` for a bzImage). The tables sit at
//! [`ACPI_TABLES_START`]..[`ACPI_TABLES_END`], RSDP first; see docs/acpi.md.

mod dsdt;
mod fadt;
mod machine;
mod madt;
#[cfg(test)]
mod tests;

pub use machine::{GedLocation, IoApic, IsaDevice, KeyboardController, MachineDescription, VirtioMmioSlot};

use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;
use arch::layout::{ACPI_RSDP_START, ACPI_TABLES_END, ACPI_TABLES_START, IOAPIC_NUM_PINS, MAX_VCPUS};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError, Permissions};

/// Who made the tables: OEM id and table id in every header, and the revision.
pub(crate) const OEM_ID: [u8; 6] = *b"MICRVM";
pub(crate) const OEM_TABLE_ID: [u8; 8] = *b"MICROVM ";
pub(crate) const OEM_REVISION: u32 = 1;
/// Size of the standard header that starts every table but the RSDP.
pub(crate) const TABLE_HEADER_LEN: u32 = 36;
/// Every table starts on a 16-byte boundary (the RSDP must; the rest follow suit).
const TABLE_ALIGN: u64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    #[error("ACPI tables need at least one CPU")]
    NoCpus,
    #[error("{0} CPUs requested, at most {max} supported", max = MAX_VCPUS)]
    TooManyCpus(u8),
    #[error("the {what} at {address:#x} does not fit the 32-bit address ACPI gives it")]
    Above4GiB { what: &'static str, address: u64 },
    #[error("GSI {gsi} of the {what} is not an IOAPIC pin")]
    NotAnIoapicPin { what: &'static str, gsi: u32 },
    #[error("IRQ {irq} of {what} is not an ISA IRQ (0-15)")]
    NotAnIsaIrq { what: &'static str, irq: u32 },
    #[error("virtio-mmio slot {0} cannot be named VR00..VR99")]
    VirtioSlotNumber(u32),
    #[error("virtio-mmio slot {0} is described twice")]
    DuplicateVirtioSlot(u32),
    #[error("the ACPI tables take {size} bytes, more than the {max} bytes reserved for them")]
    TooLarge { size: u64, max: u64 },
    #[error("guest memory does not cover the ACPI tables at {start:#x}..{end:#x}")]
    NotEnoughMemory { start: u64, end: u64 },
    #[error("failed to write the ACPI tables to guest memory")]
    WriteFailed(#[source] GuestMemoryError),
}

/// One table, ready to be copied to guest memory.
#[derive(Clone, Debug)]
pub struct AcpiTable {
    /// The signature: "RSD PTR " for the RSDP, else the header's four bytes.
    pub signature: &'static str,
    /// Guest-physical address the table is built for.
    pub address: u64,
    pub bytes: Vec<u8>,
}

/// Every table, each built for its own guest address.
#[derive(Clone, Debug)]
pub struct AcpiTables {
    tables: Vec<AcpiTable>,
}

/// Where the tables were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiLayout {
    /// For `hvm_start_info.rsdp_paddr` (PVH) or `boot_params.acpi_rsdp_addr` (bzImage).
    pub rsdp_address: u64,
    /// First byte after the last table.
    pub end: u64,
}

/// Builds the tables for `machine` and writes them into guest memory.
pub fn build_tables<M: GuestMemory>(machine: &MachineDescription, mem: &M) -> Result<AcpiLayout, AcpiError> {
    AcpiTables::build(machine)?.write_to(mem)
}

impl AcpiTables {
    /// Lays the tables out from [`ACPI_RSDP_START`]: RSDP, DSDT, FADT, MADT, XSDT.
    pub fn build(machine: &MachineDescription) -> Result<Self, AcpiError> {
        validate(machine)?;
        let mut placer = Placer { next: ACPI_RSDP_START + Rsdp::len() as u64 };
        let dsdt = placer.place("DSDT", dsdt::build(machine)?);
        let fadt = placer.place("FACP", fadt::build(machine, dsdt.address));
        let madt = placer.place("APIC", madt::build(machine)?);
        let mut xsdt_table = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
        xsdt_table.add_entry(fadt.address);
        xsdt_table.add_entry(madt.address);
        let xsdt = placer.place("XSDT", aml_bytes(&xsdt_table));
        let rsdp = AcpiTable {
            signature: "RSD PTR ",
            address: ACPI_RSDP_START,
            bytes: aml_bytes(&Rsdp::new(OEM_ID, xsdt.address)),
        };
        if placer.next > ACPI_TABLES_END {
            return Err(AcpiError::TooLarge {
                size: placer.next - ACPI_TABLES_START,
                max: ACPI_TABLES_END - ACPI_TABLES_START,
            });
        }
        Ok(AcpiTables { tables: vec![rsdp, dsdt, fadt, madt, xsdt] })
    }

    /// The tables in address order, RSDP first.
    pub fn tables(&self) -> &[AcpiTable] {
        &self.tables
    }

    /// The RSDP's guest address.
    pub fn rsdp_address(&self) -> u64 {
        ACPI_RSDP_START
    }

    /// First byte after the last table.
    pub fn end(&self) -> u64 {
        self.tables.iter().map(|t| t.address + t.bytes.len() as u64).max().unwrap_or(ACPI_RSDP_START)
    }

    /// Copies every table to its address. The whole range must be backed by
    /// guest memory (it is reserved, not RAM, in the guest's memory map).
    pub fn write_to<M: GuestMemory>(&self, mem: &M) -> Result<AcpiLayout, AcpiError> {
        let (start, end) = (ACPI_RSDP_START, self.end());
        if !mem.check_range(GuestAddress(start), (end - start) as usize, Permissions::Write) {
            return Err(AcpiError::NotEnoughMemory { start, end });
        }
        for table in &self.tables {
            mem.write_slice(&table.bytes, GuestAddress(table.address)).map_err(AcpiError::WriteFailed)?;
        }
        Ok(AcpiLayout { rsdp_address: self.rsdp_address(), end })
    }
}

/// Hands out consecutive, aligned addresses.
struct Placer {
    next: u64,
}

impl Placer {
    fn place(&mut self, signature: &'static str, bytes: Vec<u8>) -> AcpiTable {
        let address = self.next.next_multiple_of(TABLE_ALIGN);
        self.next = address + bytes.len() as u64;
        AcpiTable { signature, address, bytes }
    }
}

fn aml_bytes(table: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    table.to_aml_bytes(&mut bytes);
    bytes
}

/// Refuses what the tables cannot express, or would express wrongly.
fn validate(machine: &MachineDescription) -> Result<(), AcpiError> {
    match machine.vcpu_count {
        0 => return Err(AcpiError::NoCpus),
        n if n > MAX_VCPUS => return Err(AcpiError::TooManyCpus(n)),
        _ => {}
    }
    let ioapic = &machine.ioapic;
    let pins = ioapic.gsi_base..ioapic.gsi_base.saturating_add(IOAPIC_NUM_PINS);
    let check_pin = |what, gsi| if pins.contains(&gsi) { Ok(()) } else { Err(AcpiError::NotAnIoapicPin { what, gsi }) };
    check_pin("Generic Event Device", machine.ged.gsi)?;
    let mut seen = Vec::new();
    for slot in &machine.virtio_slots {
        check_pin("virtio-mmio slot", slot.gsi)?;
        if seen.contains(&slot.index) {
            return Err(AcpiError::DuplicateVirtioSlot(slot.index));
        }
        seen.push(slot.index);
    }
    Ok(())
}
