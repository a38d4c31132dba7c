//! The DSDT: the devices in `\_SB` and the `_S5` sleep state, following
//! QEMU's `build_dsdt_microvm` (`hw/i386/acpi-microvm.c`).

use crate::machine::{GedLocation, IsaDevice, KeyboardController, MachineDescription, VirtioMmioSlot};
use crate::{AcpiError, OEM_ID, OEM_REVISION, OEM_TABLE_ID, TABLE_HEADER_LEN};
use acpi_tables::aml::{
    And, Device, EISAName, Equal, Field, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule, If, Interrupt,
    Local, Memory32Fixed, Method, Name, Notify, OpRegion, OpRegionSpace, Package, Path, ResourceTemplate, Return,
    Scope, Store, IO, ZERO,
};
use acpi_tables::sdt::Sdt;
use acpi_tables::{Aml, AmlSink};
use devices::acpi::{GED_EVENT_POWER_BUTTON, GED_EVENT_VMGENID, SLP_TYP_S5};

/// DSDT revision 2: AML integers are 64-bit (QEMU's choice too).
const DSDT_REVISION: u8 = 2;
/// `Notify` value for a button press (ACPI 6.x §5.6.6, "Device Object Notification Values"),
/// and the one Microsoft's VM Generation ID specification gives for a new generation.
const NOTIFY_STATUS_CHANGE: u8 = 0x80;
/// `_STA` of COM1 and the keyboard: present, enabled, shown in the UI, functioning (QEMU's).
const STA_PRESENT_AND_WORKING: u8 = 0x0f;
/// The event selector is one 32-bit register.
const GED_SELECTOR_BITS: usize = 32;

/// IRQNoFlags() descriptor (ACPI 6.x §6.4.2.1, small resource item 0x04 of
/// length 2): acpi_tables has only the extended Interrupt() descriptor, and
/// QEMU describes ISA lines with this one.
struct IrqNoFlags(u32);

impl Aml for IrqNoFlags {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        const IRQ_FORMAT_DESCRIPTOR_LEN2: u8 = 0x22;
        sink.byte(IRQ_FORMAT_DESCRIPTOR_LEN2);
        sink.word(1 << self.0);
    }
}

pub(crate) fn build(machine: &MachineDescription) -> Result<Vec<u8>, AcpiError> {
    let mut sb = Vec::new();
    if let Some(com1) = &machine.com1 {
        check_isa_irq("COM1", com1.irq)?;
        com1_aml(com1, &mut sb);
    }
    if let Some(rtc) = &machine.rtc {
        check_isa_irq("RTC", rtc.irq)?;
        rtc_aml(rtc, &mut sb);
    }
    if let Some(keyboard) = &machine.keyboard {
        check_isa_irq("i8042", keyboard.irq)?;
        keyboard_aml(keyboard, &mut sb);
    }
    ged_aml(&machine.ged, machine.vmgenid.is_some(), &mut sb);
    power_button_aml(&mut sb);
    if let Some(address) = machine.vmgenid {
        vmgenid_aml(address, &mut sb);
    }
    for slot in &machine.virtio_slots {
        virtio_aml(slot, &mut sb)?;
    }

    let mut dsdt = Sdt::new(*b"DSDT", TABLE_HEADER_LEN, DSDT_REVISION, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    dsdt.append_slice(&Scope::raw(Path::new("_SB_"), sb));
    // ACPI 6.x §7.4.2: the SLP_TYP values of the soft-off state; the other
    // three elements are ignored or reserved.
    let s5 = Package::new(vec![&SLP_TYP_S5, &0u8, &0u8, &0u8]);
    Name::new(Path::new("_S5_"), &s5).to_aml_bytes(&mut dsdt);
    Ok(dsdt.as_slice().to_vec())
}

/// IRQNoFlags() holds a 16-bit mask of ISA IRQs.
fn check_isa_irq(what: &'static str, irq: u32) -> Result<(), AcpiError> {
    match irq {
        0..16 => Ok(()),
        irq => Err(AcpiError::NotAnIsaIrq { what, irq }),
    }
}

fn com1_aml(com1: &IsaDevice, sink: &mut Vec<u8>) {
    // Alignment 0 for a fixed range, as QEMU's isa-serial writes it.
    let io = IO::new(com1.port, com1.port, 0, com1.len);
    let irq = IrqNoFlags(com1.irq);
    let crs = ResourceTemplate::new(vec![&io, &irq]);
    let hid = EISAName::new("PNP0501");
    Device::new(
        Path::new("COM1"),
        vec![
            &Name::new(Path::new("_HID"), &hid),
            &Name::new(Path::new("_UID"), &1u8),
            &Name::new(Path::new("_STA"), &STA_PRESENT_AND_WORKING),
            &Name::new(Path::new("_CRS"), &crs),
        ],
    )
    .to_aml_bytes(sink);
}

fn rtc_aml(rtc: &IsaDevice, sink: &mut Vec<u8>) {
    let io = IO::new(rtc.port, rtc.port, 1, rtc.len);
    let irq = IrqNoFlags(rtc.irq);
    let crs = ResourceTemplate::new(vec![&io, &irq]);
    let hid = EISAName::new("PNP0B00");
    Device::new(Path::new("RTC_"), vec![&Name::new(Path::new("_HID"), &hid), &Name::new(Path::new("_CRS"), &crs)])
        .to_aml_bytes(sink);
}

/// The keyboard half of the i8042 (QEMU's `i8042_build_aml` also lists a PS/2 mouse on
/// IRQ 12; microvm's controller has no mouse, and without it Linux leaves the AUX port
/// alone). Linux's i8042 driver finds the controller through this entry when ACPI is on.
fn keyboard_aml(keyboard: &KeyboardController, sink: &mut Vec<u8>) {
    let data = IO::new(keyboard.data_port, keyboard.data_port, 1, 1);
    let command = IO::new(keyboard.command_port, keyboard.command_port, 1, 1);
    let irq = IrqNoFlags(keyboard.irq);
    let crs = ResourceTemplate::new(vec![&data, &command, &irq]);
    let hid = EISAName::new("PNP0303");
    Device::new(
        Path::new("KBD_"),
        vec![
            &Name::new(Path::new("_HID"), &hid),
            &Name::new(Path::new("_STA"), &STA_PRESENT_AND_WORKING),
            &Name::new(Path::new("_CRS"), &crs),
        ],
    )
    .to_aml_bytes(sink);
}

/// The GED and its `_EVT` handler: on the GED's interrupt OSPM runs `_EVT`,
/// which reads (and so clears) the event selector and notifies the power
/// button, and with `vmgenid` the VM Generation ID device, when its bit is set.
fn ged_aml(ged: &GedLocation, vmgenid: bool, sink: &mut Vec<u8>) {
    // Edge-triggered, active-high, exclusive: the device pulses its line.
    let interrupt = Interrupt::new(true, true, false, false, ged.gsi);
    let crs = ResourceTemplate::new(vec![&interrupt]);
    let selector_len = (GED_SELECTOR_BITS / 8) as u8;
    let region = OpRegion::new(Path::new("EREG"), OpRegionSpace::SystemMemory, &ged.base, &selector_len);
    let field = Field::new(
        Path::new("EREG"),
        FieldAccessType::DWord,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Named(*b"ESEL", GED_SELECTOR_BITS)],
    );
    let events = Local(0);
    let selector = Path::new("ESEL");
    let read_selector = Store::new(&events, &selector);
    let power_button_bit = And::new(&ZERO, &events, &GED_EVENT_POWER_BUTTON);
    let power_button_pressed = Equal::new(&power_button_bit, &GED_EVENT_POWER_BUTTON);
    let power_button = Path::new("PWRB");
    let notify = Notify::new(&power_button, &NOTIFY_STATUS_CHANGE);
    let on_power_button = If::new(&power_button_pressed, vec![&notify]);
    let generation_bit = And::new(&ZERO, &events, &GED_EVENT_VMGENID);
    let new_generation = Equal::new(&generation_bit, &GED_EVENT_VMGENID);
    let generation_device = Path::new("VGEN");
    let notify_generation = Notify::new(&generation_device, &NOTIFY_STATUS_CHANGE);
    let on_new_generation = If::new(&new_generation, vec![&notify_generation]);
    let mut body: Vec<&dyn Aml> = vec![&read_selector, &on_power_button];
    if vmgenid {
        body.push(&on_new_generation);
    }
    let evt = Method::new(Path::new("_EVT"), 1, true, body);
    Device::new(
        Path::new("GED_"),
        vec![
            &Name::new(Path::new("_HID"), &"ACPI0013"),
            &Name::new(Path::new("_UID"), &"GED"),
            &Name::new(Path::new("_CRS"), &crs),
            &region,
            &field,
            &evt,
        ],
    )
    .to_aml_bytes(sink);
}

/// The ACPI power button (`PNP0C0C`) the GED notifies.
fn power_button_aml(sink: &mut Vec<u8>) {
    Device::new(
        Path::new("PWRB"),
        vec![&Name::new(Path::new("_HID"), &"PNP0C0C"), &Name::new(Path::new("_UID"), &0u8)],
    )
    .to_aml_bytes(sink);
}

/// The VM Generation ID device, as QEMU's `vmgenid_build_acpi` names it: Linux's
/// `vmgenid` driver matches the `_CID` "VM_GEN_COUNTER" (or a `_HID` "VMGENCTR"),
/// evaluates `ADDR` once at probe, maps the 16 bytes there, and on `Notify (VGEN, 0x80)`
/// reads them again and reseeds the kernel's RNG if they changed. QEMU's `ADDR` adds an
/// offset to an address its firmware patches in; ours is fixed, so the package is constant.
fn vmgenid_aml(address: u64, sink: &mut Vec<u8>) {
    // Microsoft's specification: the low 32 bits of the address first, then the high.
    let (low, high) = (address as u32, (address >> 32) as u32);
    let address = Package::new(vec![&low, &high]);
    let return_address = Return::new(&address);
    let addr = Method::new(Path::new("ADDR"), 0, false, vec![&return_address]);
    Device::new(
        Path::new("VGEN"),
        vec![
            &Name::new(Path::new("_HID"), &"QEMUVGID"),
            &Name::new(Path::new("_CID"), &"VM_GEN_COUNTER"),
            &Name::new(Path::new("_DDN"), &"VM_GEN_COUNTER"),
            &addr,
        ],
    )
    .to_aml_bytes(sink);
}

fn virtio_aml(slot: &VirtioMmioSlot, sink: &mut Vec<u8>) -> Result<(), AcpiError> {
    let out_of_range = || AcpiError::Above4GiB { what: "virtio-mmio slot", address: slot.base };
    let base = u32::try_from(slot.base).map_err(|_| out_of_range())?;
    let len = u32::try_from(slot.len).map_err(|_| out_of_range())?;
    base.checked_add(len).ok_or_else(out_of_range)?;
    if slot.index > 99 {
        return Err(AcpiError::VirtioSlotNumber(slot.index));
    }
    let memory = Memory32Fixed::new(true, base, len);
    // Edge-triggered where QEMU says level: the VMM signals through an irqfd,
    // a pulse, and a pulse on a level-triggered IOAPIC pin whose previous
    // interrupt is not yet EOIed is lost.
    let interrupt = Interrupt::new(true, true, false, false, slot.gsi);
    let crs = ResourceTemplate::new(vec![&memory, &interrupt]);
    Device::new(
        Path::new(&format!("VR{:02}", slot.index)),
        vec![
            &Name::new(Path::new("_HID"), &"LNRO0005"),
            &Name::new(Path::new("_UID"), &slot.index),
            // Cache-coherent DMA: the device is the VMM, reading guest RAM.
            &Name::new(Path::new("_CCA"), &1u8),
            &Name::new(Path::new("_CRS"), &crs),
        ],
    )
    .to_aml_bytes(sink);
    Ok(())
}
