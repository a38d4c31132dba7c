//! Register state of the boot vCPU for the two entry points microvm supports:
//! PVH (32-bit protected mode, paging off) and the Linux 64-bit boot protocol
//! (long mode on identity-mapped page tables). Also the FPU, MSR and LAPIC
//! state every vCPU starts with, and the stub at the real-mode reset vector.

use crate::layout::{
    BOOT_GDT_ENTRIES, BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER, PDE_START, PDPTE_START, PML4_START,
    PVH_INFO_START, RESET_VECTOR, ZERO_PAGE_START,
};
use kvm_bindings::{kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs};
use vm_memory::{Bytes, GuestAddress, GuestMemory};

#[derive(Debug, thiserror::Error)]
pub enum RegsError {
    #[error("cannot write the boot GDT/IDT into guest memory")]
    WriteGdt,
    #[error("cannot write the boot page tables into guest memory")]
    WritePageTables,
    #[error("cannot write the reset stub into guest memory")]
    WriteResetStub,
}

/// How the boot vCPU enters the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootEntry {
    /// ELF vmlinux: PVH entry point, %ebx = start_info.
    Pvh { entry: u64 },
    /// bzImage: 64-bit entry point, %rsi = boot_params.
    Linux64 { entry: u64 },
}

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_ET: u64 = 0x10;
const X86_CR0_PG: u64 = 0x8000_0000;
const X86_CR4_PAE: u64 = 0x20;
const EFER_LME: u64 = 0x100;
const EFER_LMA: u64 = 0x400;
/// Bit 1 of RFLAGS is reserved and reads as one.
const RFLAGS_RESERVED: u64 = 0x2;

// GDT slots; the selector of slot n is n * 8.
const GDT_CODE64: usize = 1;
const GDT_CODE32: usize = 2;
const GDT_DATA: usize = 3;
const GDT_TSS: usize = 4;

/// Packs a segment descriptor (flags are the access byte plus the
/// granularity nibble, as in the Intel SDM layout).
const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

/// Flat 4 GiB segments: 64-bit code, 32-bit code, data, and a TSS.
const BOOT_GDT: [u64; BOOT_GDT_ENTRIES] = [
    0,
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x808b, 0, 0xfffff),
];

/// The hidden segment-register state KVM needs for GDT slot `index`.
fn segment(index: usize) -> kvm_segment {
    let e = BOOT_GDT[index];
    let granular = (e >> 55) & 1 == 1;
    let raw_limit = (((e >> 48) & 0xf) << 16 | (e & 0xffff)) as u32;
    kvm_segment {
        base: ((e >> 16) & 0xff_ffff) | (((e >> 56) & 0xff) << 24),
        limit: if granular { (raw_limit << 12) | 0xfff } else { raw_limit },
        selector: (index * 8) as u16,
        type_: ((e >> 40) & 0xf) as u8,
        present: ((e >> 47) & 1) as u8,
        dpl: ((e >> 45) & 3) as u8,
        db: ((e >> 54) & 1) as u8,
        s: ((e >> 44) & 1) as u8,
        l: ((e >> 53) & 1) as u8,
        g: granular as u8,
        avl: ((e >> 52) & 1) as u8,
        unusable: u8::from((e >> 47) & 1 == 0),
        padding: 0,
    }
}

/// Writes the GDT and an empty IDT used by the entry state.
pub fn write_boot_gdt<M: GuestMemory>(mem: &M) -> Result<(), RegsError> {
    for (i, entry) in BOOT_GDT.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(BOOT_GDT_START + (i * 8) as u64)).map_err(|_| RegsError::WriteGdt)?;
    }
    mem.write_obj(0u64, GuestAddress(BOOT_IDT_START)).map_err(|_| RegsError::WriteGdt)
}

/// Real-mode code at the reset vector: `mov al, 0xfe; out 0x64, al` (the i8042's reset
/// pulse, which every microvm machine decodes), then `cli; hlt` in a loop. A guest that
/// jumps there to reboot ends the VM as a guest reset instead of running zeroes forever.
const RESET_STUB: [u8; 8] = [0xb0, 0xfe, 0xe6, 0x64, 0xfa, 0xf4, 0xeb, 0xfd];

/// Writes [`RESET_STUB`] at the reset vector (reserved in the memory map).
pub fn write_reset_stub<M: GuestMemory>(mem: &M) -> Result<(), RegsError> {
    mem.write_slice(&RESET_STUB, GuestAddress(RESET_VECTOR)).map_err(|_| RegsError::WriteResetStub)
}

/// Identity-maps the first GiB with 2 MiB pages: enough for the 64-bit
/// entry, whose kernel builds its own tables right away.
pub fn write_identity_page_tables<M: GuestMemory>(mem: &M) -> Result<(), RegsError> {
    let err = |_| RegsError::WritePageTables;
    mem.write_obj(PDPTE_START | 0x03, GuestAddress(PML4_START)).map_err(err)?;
    mem.write_obj(PDE_START | 0x03, GuestAddress(PDPTE_START)).map_err(err)?;
    for i in 0..512u64 {
        // present | writable | page size (2 MiB)
        mem.write_obj((i << 21) | 0x83, GuestAddress(PDE_START + i * 8)).map_err(err)?;
    }
    Ok(())
}

/// Special registers for `entry`, starting from what KVM reports.
pub fn boot_sregs(mut sregs: kvm_sregs, entry: BootEntry) -> kvm_sregs {
    let (code, cr0, cr3, cr4, efer) = match entry {
        BootEntry::Pvh { .. } => (GDT_CODE32, X86_CR0_PE | X86_CR0_ET, 0, 0, 0),
        BootEntry::Linux64 { .. } => {
            (GDT_CODE64, X86_CR0_PE | X86_CR0_ET | X86_CR0_PG, PML4_START, X86_CR4_PAE, EFER_LME | EFER_LMA)
        }
    };
    sregs.gdt.base = BOOT_GDT_START;
    sregs.gdt.limit = (BOOT_GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = BOOT_IDT_START;
    sregs.idt.limit = 7;
    sregs.cs = segment(code);
    let data = segment(GDT_DATA);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = segment(GDT_TSS);
    sregs.cr0 = cr0;
    sregs.cr3 = cr3;
    sregs.cr4 = cr4;
    sregs.efer = efer;
    sregs
}

/// General registers for `entry`.
pub fn boot_regs(entry: BootEntry) -> kvm_regs {
    match entry {
        BootEntry::Pvh { entry } => {
            kvm_regs { rflags: RFLAGS_RESERVED, rip: entry, rbx: PVH_INFO_START, ..Default::default() }
        }
        BootEntry::Linux64 { entry } => kvm_regs {
            rflags: RFLAGS_RESERVED,
            rip: entry,
            rsp: BOOT_STACK_POINTER,
            rbp: BOOT_STACK_POINTER,
            rsi: ZERO_PAGE_START,
            ..Default::default()
        },
    }
}

/// x87 control word and MXCSR at their power-on defaults.
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() }
}

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// MTRRs enabled, default type write-back: without it Linux maps all RAM uncached.
const MTRR_ENABLE_WRITEBACK: u64 = (1 << 11) | 6;

/// MSR values every vCPU starts with.
pub fn boot_msrs() -> Vec<kvm_msr_entry> {
    [
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK),
    ]
    .into_iter()
    .map(|(index, data)| kvm_msr_entry { index, data, ..Default::default() })
    .collect()
}

const APIC_LVT_LINT0: usize = 0x350;
const APIC_LVT_LINT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

fn lapic_reg(state: &kvm_lapic_state, offset: usize) -> u32 {
    let b = &state.regs[offset..offset + 4];
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

fn set_lapic_reg(state: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (dst, src) in state.regs[offset..offset + 4].iter_mut().zip(value.to_le_bytes()) {
        *dst = src as _;
    }
}

/// LINT0 receives the PIC (ExtINT) and LINT1 NMIs, as on a PC: Linux
/// expects the firmware to have done this.
pub fn configure_lapic(state: &mut kvm_lapic_state) {
    let with_mode = |reg: u32, mode: u32| (reg & !0x700) | (mode << 8);
    let lint0 = lapic_reg(state, APIC_LVT_LINT0);
    set_lapic_reg(state, APIC_LVT_LINT0, with_mode(lint0, APIC_MODE_EXTINT));
    let lint1 = lapic_reg(state, APIC_LVT_LINT1);
    set_lapic_reg(state, APIC_LVT_LINT1, with_mode(lint1, APIC_MODE_NMI));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> vm_memory::GuestMemoryMmap {
        vm_memory::GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    #[test]
    fn gdt_entries_decode_to_flat_segments() {
        let code64 = segment(GDT_CODE64);
        assert_eq!((code64.base, code64.limit, code64.l, code64.db), (0, 0xffff_ffff, 1, 0));
        assert_eq!((code64.type_, code64.s, code64.present, code64.selector), (0xb, 1, 1, 0x8));
        let code32 = segment(GDT_CODE32);
        assert_eq!((code32.l, code32.db, code32.selector), (0, 1, 0x10));
        let data = segment(GDT_DATA);
        assert_eq!((data.type_, data.db, data.limit, data.selector), (0x3, 1, 0xffff_ffff, 0x18));
        let tss = segment(GDT_TSS);
        assert_eq!((tss.type_, tss.s, tss.selector), (0xb, 0, 0x20));
    }

    #[test]
    fn gdt_is_written_where_sregs_point() {
        let m = mem();
        write_boot_gdt(&m).unwrap();
        let s = boot_sregs(kvm_sregs::default(), BootEntry::Pvh { entry: 0x100000 });
        for (i, entry) in BOOT_GDT.iter().enumerate() {
            let at = GuestAddress(s.gdt.base + (i * 8) as u64);
            assert_eq!(m.read_obj::<u64>(at).unwrap(), *entry);
        }
        assert_eq!(usize::from(s.gdt.limit) + 1, BOOT_GDT.len() * 8);
    }

    #[test]
    fn pvh_entry_is_32bit_protected_mode_without_paging() {
        let s = boot_sregs(kvm_sregs::default(), BootEntry::Pvh { entry: 0x1000000 });
        assert_eq!(s.cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE);
        assert_eq!((s.efer, s.cs.db, s.cs.l), (0, 1, 0));
        let r = boot_regs(BootEntry::Pvh { entry: 0x1000000 });
        assert_eq!((r.rip, r.rbx, r.rflags), (0x1000000, PVH_INFO_START, 2));
    }

    #[test]
    fn linux64_entry_is_long_mode_on_identity_tables() {
        let m = mem();
        write_identity_page_tables(&m).unwrap();
        let s = boot_sregs(kvm_sregs::default(), BootEntry::Linux64 { entry: 0x100200 });
        assert_eq!(s.cr3, PML4_START);
        assert_ne!(s.cr0 & X86_CR0_PG, 0);
        assert_eq!(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!((s.cs.l, s.cs.db), (1, 0));
        // Walk the tables for a few addresses: each maps to itself.
        for addr in [0u64, 0x100200, 0x3fff_ffff] {
            let pml4e: u64 = m.read_obj(GuestAddress(PML4_START + ((addr >> 39) & 511) * 8)).unwrap();
            let pdpte: u64 = m.read_obj(GuestAddress((pml4e & !0xfff) + ((addr >> 30) & 511) * 8)).unwrap();
            let pde: u64 = m.read_obj(GuestAddress((pdpte & !0xfff) + ((addr >> 21) & 511) * 8)).unwrap();
            assert_eq!(pde & 0x83, 0x83);
            assert_eq!((pde & !0x1f_ffff & !0x83) | (addr & 0x1f_ffff), addr);
        }
        let r = boot_regs(BootEntry::Linux64 { entry: 0x100200 });
        assert_eq!((r.rip, r.rsi), (0x100200, ZERO_PAGE_START));
    }

    #[test]
    fn lapic_lint_pins_get_extint_and_nmi() {
        let mut st = kvm_lapic_state::default();
        set_lapic_reg(&mut st, APIC_LVT_LINT0, 0x0001_0000); // masked, fixed
        configure_lapic(&mut st);
        assert_eq!(lapic_reg(&st, APIC_LVT_LINT0), 0x0001_0700);
        assert_eq!(lapic_reg(&st, APIC_LVT_LINT1), 0x0000_0400);
    }

    #[test]
    fn msrs_enable_writeback_mtrr_and_fast_strings() {
        let msrs = boot_msrs();
        let get = |i| msrs.iter().find(|m| m.index == i).unwrap().data;
        assert_eq!(get(MSR_MTRR_DEF_TYPE), 0x806);
        assert_eq!(get(MSR_IA32_MISC_ENABLE), 1);
    }
}
