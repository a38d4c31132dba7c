//! Every guest-physical address microvm uses, in one place.
//!
//! Low memory holds the boot structures the VMM writes before the first
//! KVM_RUN; the kernel is loaded at 1 MiB; RAM that does not fit below the
//! 32-bit MMIO gap continues at 4 GiB.

/// Start of the GDT written for the boot vCPU (PVH and 64-bit entry both use it).
pub const BOOT_GDT_START: u64 = 0x500;
/// Number of 8-byte GDT entries: null, code64, code32, data, tss.
pub const BOOT_GDT_ENTRIES: usize = 5;
/// Empty IDT right after the GDT, so an early fault triple-faults instead of
/// jumping through garbage.
pub const BOOT_IDT_START: u64 = 0x530;

/// PVH `hvm_start_info` structure (pointed to by %ebx at PVH entry).
pub const PVH_INFO_START: u64 = 0x6000;
/// PVH memory map table, right after start_info.
pub const PVH_MEMMAP_START: u64 = 0x6040;
/// Most entries the PVH memmap table may hold before running into PVH_MODLIST_START.
pub const PVH_MEMMAP_MAX_ENTRIES: usize = 64;
/// PVH module list: one entry, the initrd.
pub const PVH_MODLIST_START: u64 = 0x6800;

/// Linux `boot_params` ("zero page") for the 64-bit bzImage entry.
pub const ZERO_PAGE_START: u64 = 0x7000;

/// Identity page tables for the 64-bit entry (first GiB, 2 MiB pages).
pub const PML4_START: u64 = 0x9000;
pub const PDPTE_START: u64 = 0xa000;
pub const PDE_START: u64 = 0xb000;

/// Initial stack pointer for the boot vCPU (grows down below the page tables).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;

/// Kernel command line.
pub const CMDLINE_START: u64 = 0x20000;
/// Longest command line accepted, including the terminating NUL
/// (x86 Linux's COMMAND_LINE_SIZE).
pub const CMDLINE_MAX_SIZE: usize = 2048;

/// Extended BIOS data area: where Linux scans for the MP table. Guest RAM in
/// the e820 map stops here; [EBDA_START, HIMEM_START) is reserved.
pub const EBDA_START: u64 = 0x9fc00;
/// The MP floating pointer and configuration table live at the EBDA start.
pub const MPTABLE_START: u64 = EBDA_START;

/// Kernels are loaded at 1 MiB, as the Linux boot protocol expects.
pub const HIMEM_START: u64 = 0x10_0000;

/// The 32-bit MMIO gap: no RAM between these two addresses.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// RAM beyond MMIO_GAP_START continues here.
pub const HIGH_RAM_START: u64 = MMIO_GAP_END;

/// Window the virtio-mmio device slots are carved from (the proposal's address).
pub const VIRTIO_MMIO_START: u64 = 0xd000_0000;
/// Size of one virtio-mmio slot.
pub const VIRTIO_MMIO_SLOT_SIZE: u64 = 0x200;

/// KVM's in-kernel IOAPIC and the local APIC, at their architectural addresses.
pub const IOAPIC_START: u64 = 0xfec0_0000;
pub const APIC_START: u64 = 0xfee0_0000;

/// Three pages KVM needs for the TSS on Intel (KVM_SET_TSS_ADDR); must sit in
/// the MMIO gap, outside RAM.
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;

/// Smallest guest RAM microvm accepts: the boot structures below 1 MiB and
/// one more MiB from HIMEM_START for the kernel. Unikernels boot in 2 MiB
/// under QEMU; whether a given kernel fits is the kernel loader's check.
pub const MIN_MEM_SIZE: u64 = 2 << 20;

/// Largest guest RAM accepted: 1 TiB keeps every address within 40 bits of
/// guest-physical space, which every KVM host CPU supports.
pub const MAX_MEM_SIZE: u64 = 1 << 40;

/// Interrupt lines (GSIs) on the in-kernel IOAPIC.
pub const IOAPIC_NUM_PINS: u32 = 24;
/// Legacy ISA serial COM1.
pub const SERIAL_COM1_PORT: u16 = 0x3f8;
/// A 16550A decodes eight consecutive ports.
pub const SERIAL_PORT_LEN: u64 = 8;
pub const SERIAL_COM1_IRQ: u32 = 4;
/// i8042 keyboard controller command/status port. Without `-device i8042` only its
/// CPU-reset command is modelled, and the data port is not exposed.
pub const I8042_COMMAND_PORT: u16 = 0x64;
/// i8042 data port and keyboard interrupt (`-device i8042`).
pub const I8042_DATA_PORT: u16 = 0x60;
pub const I8042_IRQ: u32 = 1;
/// CMOS real-time clock (`-M microvm,rtc=on` only): index port, data port after it.
pub const RTC_PORT: u16 = 0x70;
pub const RTC_PORT_LEN: u64 = 2;
/// The PC's RTC interrupt line.
pub const RTC_IRQ: u32 = 8;
/// Number of virtio-mmio slots (QEMU's microvm has 8 too). Only slots that
/// hold a device are mapped.
pub const VIRTIO_MMIO_SLOTS: u32 = 8;
/// GSI of each slot: above COM1's IRQ 4, skipping the RTC's IRQ 8 (Linux's rtc-cmos
/// will not share its line), all below IOAPIC_NUM_PINS.
pub const VIRTIO_MMIO_IRQS: [u32; VIRTIO_MMIO_SLOTS as usize] = [5, 6, 7, 9, 10, 11, 12, 13];

// ---------------------------------------------------------------------------
// ACPI (`-M microvm,acpi=on`): where the tables and the hardware-reduced ACPI
// devices live. See docs/acpi.md.
// ---------------------------------------------------------------------------

/// The ACPI tables are written into the BIOS read-only area (reserved in the
/// memory map, backed by RAM). The RSDP comes first, on a 16-byte boundary as
/// the spec requires, so Linux finds it by scanning 0xE0000..0xFFFFF even
/// when the boot protocol does not pass its address.
pub const ACPI_TABLES_START: u64 = 0xe_0000;
/// Where a real-mode CPU starts (F000:FFF0), and where Linux jumps to reboot through the
/// BIOS (`machine_real_restart`). With ACPI on and no EFI, Linux's reboot goes there
/// after its other methods (it picks EFI first on hardware-reduced ACPI), so microvm puts
/// a stub there that resets through the i8042 (`regs::write_reset_stub`).
pub const RESET_VECTOR: u64 = 0xf_fff0;
/// The 16-byte VM Generation ID of `-device vmgenid` (`acpi=on`): the DSDT's `VGEN.ADDR`
/// points here, and every restore writes a new one. It has the 4 KiB page below the
/// reset vector's to itself, inside the reserved BIOS area (guest RAM the memory map does
/// not offer the guest), so Linux's `vmgenid` driver maps a page nothing else shares.
pub const VMGENID_GUID_START: u64 = 0xf_e000;
pub const VMGENID_GUID_LEN: u64 = 16;
/// End of the tables' area: the RSDP, DSDT, FADT, MADT and XSDT must fit below it (about
/// 1 KiB of 120 KiB).
pub const ACPI_TABLES_END: u64 = VMGENID_GUID_START;
/// The RSDP: what `hvm_start_info.rsdp_paddr` / `boot_params.acpi_rsdp_addr` point to.
pub const ACPI_RSDP_START: u64 = ACPI_TABLES_START;
/// Generic Event Device's event selector register (MMIO, 4 bytes), at QEMU
/// microvm's GED_MMIO_BASE.
pub const ACPI_GED_START: u64 = 0xfea0_0000;
pub const ACPI_GED_LEN: u64 = 4;
/// Sleep control, sleep status and reset registers (MMIO, one byte each), at
/// QEMU microvm's GED_MMIO_BASE_REGS.
pub const ACPI_SLEEP_REGS_START: u64 = 0xfea0_0200;
pub const ACPI_SLEEP_REGS_LEN: u64 = 3;
/// The GED's interrupt. QEMU microvm uses GSI 9, but there its virtio slots
/// move to GSIs 16-23 with ACPI; ours stay on VIRTIO_MMIO_IRQS (9 included),
/// which the command line and MP table already promise. 16 is the first line
/// above the ISA range: shared with nothing, and free of the legacy-PIC
/// routing that GSIs 0-15 carry.
pub const ACPI_GED_GSI: u32 = 16;

/// Highest vCPU count microvm supports (`-smp` range 1..=MAX_VCPUS).
pub const MAX_VCPUS: u8 = 32;

// The command line must end before the MP table, and the boot stack must
// grow down inside the free page between the zero page and the page tables.
const _: () = assert!(CMDLINE_START + CMDLINE_MAX_SIZE as u64 <= EBDA_START);
const _: () = assert!(MIN_MEM_SIZE > HIMEM_START);
const _: () = assert!(VIRTIO_MMIO_IRQS[VIRTIO_MMIO_SLOTS as usize - 1] < IOAPIC_NUM_PINS);
const _: () = assert!(ACPI_TABLES_START > EBDA_START && ACPI_TABLES_START % 16 == 0);
const _: () = assert!(RESET_VECTOR + 16 == HIMEM_START);
// The GUID's page is its own: page-aligned, below the reset stub's page, above the tables.
const _: () = assert!(VMGENID_GUID_START % 0x1000 == 0 && VMGENID_GUID_START + 0x1000 <= RESET_VECTOR & !0xfff);
const _: () = assert!(ACPI_GED_GSI < IOAPIC_NUM_PINS && ACPI_GED_GSI != RTC_IRQ && ACPI_GED_GSI != SERIAL_COM1_IRQ);
// The GED shares its line with no virtio slot.
const _: () = {
    let mut slot = 0;
    while slot < VIRTIO_MMIO_IRQS.len() {
        assert!(VIRTIO_MMIO_IRQS[slot] != ACPI_GED_GSI);
        slot += 1;
    }
};
const _: () = assert!(ACPI_GED_START + ACPI_GED_LEN <= ACPI_SLEEP_REGS_START && ACPI_SLEEP_REGS_START < IOAPIC_START);
const _: () = assert!(BOOT_STACK_POINTER < PML4_START && BOOT_STACK_POINTER > ZERO_PAGE_START + 0x1000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_memory_boot_structures_do_not_overlap() {
        let mut areas = [
            (BOOT_GDT_START, BOOT_GDT_ENTRIES as u64 * 8),
            (BOOT_IDT_START, 8),
            (PVH_INFO_START, PVH_MEMMAP_START - PVH_INFO_START),
            (PVH_MEMMAP_START, PVH_MEMMAP_MAX_ENTRIES as u64 * 24),
            (PVH_MODLIST_START, 32),
            (ZERO_PAGE_START, 0x1000),
            (PML4_START, 0x1000),
            (PDPTE_START, 0x1000),
            (PDE_START, 0x1000),
            (CMDLINE_START, CMDLINE_MAX_SIZE as u64),
        ];
        areas.sort();
        for pair in areas.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{:#x?} overlaps {:#x?}", pair[0], pair[1]);
        }
    }
}
