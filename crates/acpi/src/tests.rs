//! Table lengths, checksums and placement, the RSDP field by field, what the
//! description may not hold, and the copy into guest memory. The disassembly
//! by a real ACPI tool is in tests/acpica.rs.

use super::*;
use arch::layout::{ACPI_SLEEP_REGS_START, HIMEM_START};
use vm_memory::GuestMemoryMmap;

/// `-smp 2 -M microvm,rtc=on` with COM1 and virtio blk, net, console.
fn reference_machine() -> MachineDescription {
    let mut machine = MachineDescription::microvm(2);
    machine.virtio_slots = (0..3).map(|i| VirtioMmioSlot::microvm(i).unwrap()).collect();
    machine.com1 = Some(IsaDevice::com1());
    machine.rtc = Some(IsaDevice::rtc());
    machine
}

fn table<'a>(tables: &'a AcpiTables, signature: &str) -> &'a [u8] {
    &tables.tables().iter().find(|t| t.signature == signature).unwrap().bytes
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

// Sizes fixed by the ACPI specification (6.5).
const RSDP_LEN: usize = 36;
const RSDP_V1_LEN: usize = 20;
const FADT_LEN: usize = 276;
const MADT_HEADER: usize = TABLE_HEADER_LEN as usize + 8;
const LOCAL_APIC_ENTRY: usize = 8;
const IOAPIC_ENTRY: usize = 12;
const OVERRIDE_ENTRY: usize = 10;
const LOCAL_APIC_NMI_ENTRY: usize = 6;
/// The reference machine's DSDT, pinned: an AML change shows here and in tests/acpica.rs.
const REFERENCE_DSDT_LEN: usize = 486;

#[test]
fn every_table_has_its_length_in_its_header_and_sums_to_zero() {
    let tables = AcpiTables::build(&reference_machine()).unwrap();
    for t in &tables.tables()[1..] {
        assert_eq!(&t.bytes[..4], t.signature.as_bytes());
        assert_eq!(u32_at(&t.bytes, 4) as usize, t.bytes.len(), "{} length", t.signature);
        assert_eq!(sum(&t.bytes), 0, "{} checksum", t.signature);
    }
    assert_eq!(table(&tables, "DSDT").len(), REFERENCE_DSDT_LEN);
    assert_eq!(table(&tables, "FACP").len(), FADT_LEN);
    let madt = MADT_HEADER + 2 * LOCAL_APIC_ENTRY + IOAPIC_ENTRY + OVERRIDE_ENTRY + LOCAL_APIC_NMI_ENTRY;
    assert_eq!(table(&tables, "APIC").len(), madt);
    assert_eq!(table(&tables, "XSDT").len(), TABLE_HEADER_LEN as usize + 2 * 8, "header and two entries");
}

#[test]
fn rsdp_is_revision_2_with_both_checksums_and_points_to_the_xsdt() {
    let tables = AcpiTables::build(&reference_machine()).unwrap();
    let rsdp = table(&tables, "RSD PTR ");
    assert_eq!(rsdp.len(), RSDP_LEN);
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!(sum(&rsdp[..RSDP_V1_LEN]), 0, "ACPI 1.0 checksum");
    assert_eq!(sum(rsdp), 0, "extended checksum");
    assert_eq!(rsdp[15], 2, "revision 2: the XSDT is valid");
    assert_eq!(u32_at(rsdp, 16), 0, "no RSDT");
    assert_eq!(u32_at(rsdp, 20) as usize, RSDP_LEN);
    let xsdt = tables.tables().iter().find(|t| t.signature == "XSDT").unwrap();
    assert_eq!(u64_at(rsdp, 24), xsdt.address);
}

#[test]
fn tables_are_aligned_disjoint_and_inside_their_area() {
    let tables = AcpiTables::build(&reference_machine()).unwrap();
    assert_eq!(tables.tables()[0].address, ACPI_RSDP_START);
    assert_eq!(tables.rsdp_address(), ACPI_RSDP_START);
    for pair in tables.tables().windows(2) {
        assert_eq!(pair[1].address % TABLE_ALIGN, 0, "{}", pair[1].signature);
        assert!(pair[0].address + pair[0].bytes.len() as u64 <= pair[1].address, "{} overlaps", pair[1].signature);
    }
    assert!(tables.end() <= ACPI_TABLES_END);
}

#[test]
fn xsdt_lists_fadt_and_madt_and_the_fadt_points_to_the_dsdt() {
    let tables = AcpiTables::build(&reference_machine()).unwrap();
    let address = |sig: &str| tables.tables().iter().find(|t| t.signature == sig).unwrap().address;
    let xsdt = table(&tables, "XSDT");
    assert_eq!([u64_at(xsdt, 36), u64_at(xsdt, 44)], [address("FACP"), address("APIC")]);
    let fadt = table(&tables, "FACP");
    const X_DSDT: usize = 140;
    assert_eq!(u64_at(fadt, X_DSDT), address("DSDT"));
    assert_eq!(u32_at(fadt, 40), 0, "only the 64-bit DSDT pointer");
}

#[test]
fn fadt_is_hardware_reduced_with_sleep_and_reset_registers() {
    const FLAGS: usize = 112;
    const HW_REDUCED_ACPI: u32 = 1 << 20;
    const RESET_REG_SUP: u32 = 1 << 10;
    const RESET_REG_ADDRESS: usize = 120;
    const SLEEP_CONTROL_ADDRESS: usize = 248;
    const SLEEP_STATUS_ADDRESS: usize = 260;
    const IAPC_BOOT_ARCH: usize = 109;
    let tables = AcpiTables::build(&reference_machine()).unwrap();
    let fadt = table(&tables, "FACP");
    assert_eq!(u32_at(fadt, FLAGS), HW_REDUCED_ACPI | RESET_REG_SUP);
    assert_eq!(u64_at(fadt, SLEEP_CONTROL_ADDRESS), ACPI_SLEEP_REGS_START);
    assert_eq!(u64_at(fadt, SLEEP_STATUS_ADDRESS), ACPI_SLEEP_REGS_START + 1);
    assert_eq!(u64_at(fadt, RESET_REG_ADDRESS), ACPI_SLEEP_REGS_START + 2);
    assert_eq!(fadt[RESET_REG_ADDRESS + 8], devices::acpi::RESET_VALUE);
    assert_eq!(fadt[IAPC_BOOT_ARCH], 0, "rtc=on: the CMOS clock is there");

    let no_rtc = AcpiTables::build(&MachineDescription::microvm(1)).unwrap();
    assert_eq!(table(&no_rtc, "FACP")[IAPC_BOOT_ARCH], 1 << 5, "rtc=off: NO_CMOS_RTC");
}

#[test]
fn madt_follows_the_pic_pit_and_cpu_count() {
    let mut machine = MachineDescription::microvm(MAX_VCPUS);
    let tables = AcpiTables::build(&machine).unwrap();
    let madt = table(&tables, "APIC");
    let entries = usize::from(MAX_VCPUS) * LOCAL_APIC_ENTRY + IOAPIC_ENTRY + OVERRIDE_ENTRY + LOCAL_APIC_NMI_ENTRY;
    assert_eq!(madt.len(), MADT_HEADER + entries);
    assert_eq!(u32_at(madt, 40), 1, "PCAT_COMPAT");

    machine.pic = false;
    machine.pit = false;
    let tables = AcpiTables::build(&machine).unwrap();
    let madt = table(&tables, "APIC");
    assert_eq!(madt.len(), MADT_HEADER + entries - OVERRIDE_ENTRY, "no PIT, no IRQ 0 override");
    assert_eq!(u32_at(madt, 40), 0);
    assert_eq!(sum(madt), 0);
}

#[test]
fn dsdt_grows_by_one_device_per_slot() {
    let mut machine = MachineDescription::microvm(1);
    let bare = table(&AcpiTables::build(&machine).unwrap(), "DSDT").len();
    machine.virtio_slots.push(VirtioMmioSlot::microvm(7).unwrap());
    let one = table(&AcpiTables::build(&machine).unwrap(), "DSDT").len();
    machine.virtio_slots.push(VirtioMmioSlot::microvm(3).unwrap());
    let two = table(&AcpiTables::build(&machine).unwrap(), "DSDT").len();
    assert!(one > bare);
    assert_eq!(two - one, one - bare);
}

#[test]
fn vmgenid_adds_its_device_and_addr_returns_both_halves_of_the_address() {
    let mut machine = MachineDescription::microvm(1);
    let bare = table(&AcpiTables::build(&machine).unwrap(), "DSDT").to_vec();
    machine.vmgenid = Some(arch::layout::VMGENID_GUID_START);
    let dsdt = table(&AcpiTables::build(&machine).unwrap(), "DSDT").to_vec();
    let has = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for name in [&b"VGEN"[..], b"QEMUVGID\0", b"VM_GEN_COUNTER\0", b"ADDR"] {
        assert!(has(&dsdt, name) && !has(&bare, name), "{}", String::from_utf8_lossy(name));
    }
    // Return (Package (2) { DWord 0xFE000, Zero }): ReturnOp, PackageOp, length, count.
    let package = [0xa4, 0x12, 0x08, 0x02, 0x0c, 0x00, 0xe0, 0x0f, 0x00, 0x00];
    assert!(has(&dsdt, &package), "{dsdt:02x?}");
    // _EVT tests bit 4 (And (Local0, 0x10)) only when the device exists.
    let and_bit_4 = [0x7b, 0x60, 0x0a, 0x10, 0x00];
    assert!(has(&dsdt, &and_bit_4) && !has(&bare, &and_bit_4));

    machine.vmgenid = Some(0x1_2345_6000);
    let high = table(&AcpiTables::build(&machine).unwrap(), "DSDT").to_vec();
    // DWord 0x23456000, then One (the high half).
    let package = [0xa4, 0x12, 0x08, 0x02, 0x0c, 0x00, 0x60, 0x45, 0x23, 0x01];
    assert!(has(&high, &package), "{high:02x?}");
}

#[test]
fn microvm_slots_use_the_layout_addresses_and_lines() {
    let slot = VirtioMmioSlot::microvm(3).unwrap();
    assert_eq!((slot.base, slot.len, slot.gsi), (0xd000_0600, 0x200, 9));
    assert!(VirtioMmioSlot::microvm(8).is_none());
}

#[test]
fn descriptions_the_tables_cannot_express_are_refused() {
    let refused = |change: fn(&mut MachineDescription)| {
        let mut machine = reference_machine();
        change(&mut machine);
        AcpiTables::build(&machine).unwrap_err()
    };
    assert!(matches!(refused(|m| m.vcpu_count = 0), AcpiError::NoCpus));
    assert!(matches!(refused(|m| m.vcpu_count = MAX_VCPUS + 1), AcpiError::TooManyCpus(_)));
    assert!(matches!(refused(|m| m.ged.gsi = IOAPIC_NUM_PINS), AcpiError::NotAnIoapicPin { gsi: 24, .. }));
    assert!(matches!(refused(|m| m.virtio_slots[1].gsi = 99), AcpiError::NotAnIoapicPin { gsi: 99, .. }));
    assert!(matches!(refused(|m| m.virtio_slots[2].index = 0), AcpiError::DuplicateVirtioSlot(0)));
    assert!(matches!(refused(|m| m.virtio_slots[0].index = 100), AcpiError::VirtioSlotNumber(100)));
    assert!(matches!(refused(|m| m.virtio_slots[0].base = 1 << 32), AcpiError::Above4GiB { .. }));
    assert!(matches!(refused(|m| m.com1.as_mut().unwrap().irq = 16), AcpiError::NotAnIsaIrq { irq: 16, .. }));
    assert!(matches!(refused(|m| m.ioapic.address = 1 << 32), AcpiError::Above4GiB { what: "IOAPIC", .. }));
}

#[test]
fn tables_land_in_guest_memory_where_a_bios_area_scan_finds_the_rsdp() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
    let layout = build_tables(&reference_machine(), &mem).unwrap();
    assert_eq!(layout.rsdp_address, ACPI_RSDP_START);

    // What Linux's acpi_find_root_pointer does: 16-byte steps over 0xE0000..0xFFFFF.
    let mut bios_area = vec![0u8; (HIMEM_START - 0xe_0000) as usize];
    mem.read_slice(&mut bios_area, GuestAddress(0xe_0000)).unwrap();
    let found = (0..bios_area.len() - RSDP_LEN)
        .step_by(16)
        .find(|&at| &bios_area[at..at + 8] == b"RSD PTR " && sum(&bios_area[at..at + RSDP_V1_LEN]) == 0)
        .map(|at| 0xe_0000 + at as u64);
    assert_eq!(found, Some(layout.rsdp_address));

    let tables = AcpiTables::build(&reference_machine()).unwrap();
    assert_eq!(layout.end, tables.end());
    for t in tables.tables() {
        let mut copy = vec![0u8; t.bytes.len()];
        mem.read_slice(&mut copy, GuestAddress(t.address)).unwrap();
        assert_eq!(copy, t.bytes, "{}", t.signature);
    }
}

#[test]
fn memory_that_stops_short_of_the_tables_is_refused() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0xe_0100)]).unwrap();
    let err = build_tables(&reference_machine(), &mem).unwrap_err();
    assert!(matches!(err, AcpiError::NotEnoughMemory { start: ACPI_RSDP_START, .. }), "{err}");
}
