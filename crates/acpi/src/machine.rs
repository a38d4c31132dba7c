//! What the tables describe: a plain account of the machine the VMM built,
//! with constructors for microvm's fixed addresses and lines.

use arch::layout::{
    ACPI_GED_GSI, ACPI_GED_START, ACPI_SLEEP_REGS_START, I8042_COMMAND_PORT, I8042_DATA_PORT, I8042_IRQ, IOAPIC_START,
    RTC_IRQ, RTC_PORT, SERIAL_COM1_IRQ, SERIAL_COM1_PORT, SERIAL_PORT_LEN, VIRTIO_MMIO_IRQS, VIRTIO_MMIO_SLOT_SIZE,
    VIRTIO_MMIO_START,
};

/// The RTC's `_CRS` claims eight ports from its base, as PC hardware and QEMU
/// do, though the device decodes only the index and data ports.
const RTC_RESERVED_PORTS: u8 = 8;

/// The machine the ACPI tables describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineDescription {
    /// vCPUs 0..vcpu_count, each with the local APIC id of its index.
    pub vcpu_count: u8,
    pub ioapic: IoApic,
    /// A legacy 8259 PIC pair exists (KVM's in-kernel irqchip always has one):
    /// the MADT's PCAT_COMPAT flag.
    pub pic: bool,
    /// The in-kernel PIT exists: its IRQ 0 reaches IOAPIC pin 2, which the
    /// MADT states with an interrupt source override.
    pub pit: bool,
    /// Slots that hold a device, each a `LNRO0005` device in the DSDT.
    pub virtio_slots: Vec<VirtioMmioSlot>,
    /// COM1 in legacy mode (`PNP0501`).
    pub com1: Option<IsaDevice>,
    /// The CMOS clock of `rtc=on` (`PNP0B00`).
    pub rtc: Option<IsaDevice>,
    /// The keyboard controller of `-device i8042` (`PNP0303`).
    pub keyboard: Option<KeyboardController>,
    /// The Generic Event Device (`ACPI0013`) carrying the power button.
    pub ged: GedLocation,
    /// Base of the sleep control, sleep status and reset registers (MMIO).
    pub sleep_registers: u64,
    /// Guest-physical address of the 16-byte VM Generation ID (`-device vmgenid`): a
    /// `VGEN` device whose `ADDR` gives it, notified through the GED.
    pub vmgenid: Option<u64>,
}

impl MachineDescription {
    /// A microvm with `vcpu_count` vCPUs, PIC and PIT, and no optional
    /// device: add slots, COM1 and the RTC to match what the VMM created.
    pub fn microvm(vcpu_count: u8) -> Self {
        MachineDescription {
            vcpu_count,
            ioapic: IoApic::microvm(),
            pic: true,
            pit: true,
            virtio_slots: Vec::new(),
            com1: None,
            rtc: None,
            keyboard: None,
            ged: GedLocation::microvm(),
            sleep_registers: ACPI_SLEEP_REGS_START,
            vmgenid: None,
        }
    }
}

/// The I/O APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u64,
    /// First GSI of its pins.
    pub gsi_base: u32,
}

impl IoApic {
    /// KVM's in-kernel IOAPIC: id 0 (QEMU's ACPI_BUILD_IOAPIC_ID), GSIs from 0.
    pub fn microvm() -> Self {
        IoApic { id: 0, address: IOAPIC_START, gsi_base: 0 }
    }
}

/// One virtio-mmio transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmioSlot {
    /// Slot number: the device's name `VRnn` and `_UID`, as on QEMU.
    pub index: u32,
    pub base: u64,
    pub len: u64,
    pub gsi: u32,
}

impl VirtioMmioSlot {
    /// Slot `index` of microvm's virtio-mmio window, `None` past the last slot.
    pub fn microvm(index: u32) -> Option<Self> {
        let gsi = *VIRTIO_MMIO_IRQS.get(usize::try_from(index).ok()?)?;
        Some(VirtioMmioSlot {
            index,
            base: VIRTIO_MMIO_START + u64::from(index) * VIRTIO_MMIO_SLOT_SIZE,
            len: VIRTIO_MMIO_SLOT_SIZE,
            gsi,
        })
    }
}

/// A legacy ISA device: an I/O port range and an ISA IRQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaDevice {
    pub port: u16,
    pub len: u8,
    pub irq: u32,
}

impl IsaDevice {
    pub fn com1() -> Self {
        IsaDevice { port: SERIAL_COM1_PORT, len: SERIAL_PORT_LEN as u8, irq: SERIAL_COM1_IRQ }
    }

    pub fn rtc() -> Self {
        IsaDevice { port: RTC_PORT, len: RTC_RESERVED_PORTS, irq: RTC_IRQ }
    }
}

/// An i8042 keyboard controller: its data and command ports (one byte each, not
/// adjacent) and its ISA IRQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyboardController {
    pub data_port: u16,
    pub command_port: u16,
    pub irq: u32,
}

impl KeyboardController {
    pub fn microvm() -> Self {
        KeyboardController { data_port: I8042_DATA_PORT, command_port: I8042_COMMAND_PORT, irq: I8042_IRQ }
    }
}

/// Where the Generic Event Device is: its event selector register and its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GedLocation {
    pub base: u64,
    pub gsi: u32,
}

impl GedLocation {
    pub fn microvm() -> Self {
        GedLocation { base: ACPI_GED_START, gsi: ACPI_GED_GSI }
    }
}
