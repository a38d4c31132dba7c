//! Tiny guest kernels for microvm's tests and benchmarks, built in Rust with
//! no external assembler.
//!
//! Each guest is a few 32-bit protected-mode instructions wrapped by
//! [`pvh_elf`] into an ELF64 file whose PVH note makes microvm enter it at
//! 1 MiB in 32-bit mode with paging off. They only use what the project's
//! emulated /dev/kvm runs (integer instructions, `in`/`out`, MMIO, `hlt`).
//!
//! Each function returns the bytes of a complete ELF file, ready to be
//! written out and passed to `microvm -kernel`.

pub mod asm;
pub mod elf;
pub mod ninep;
pub mod virtio;
mod virtio_blk;
mod virtio_blk_packed;

pub use asm::{Asm, Cond, Label};
pub use elf::{elf_without_pvh_note, pvh_elf, LOAD_ADDR};
pub use virtio_blk::{
    pattern_byte, virtio_blk_reads_then_reset, virtio_blk_write_read_copy, virtio_blk_write_read_copy_on_queue,
    virtio_blk_write_read_copy_then_halt, COPY_SECTOR, PATTERN_SECTOR, READ_BYTES, VIRTIO_MMIO_SLOT0,
};
pub use virtio_blk_packed::virtio_blk_packed_write_read_copy;

/// Data port of the legacy 16550A UART (COM1).
pub const COM1: u16 = 0x3f8;

/// An I/O port nothing in microvm decodes (between the LPT/COM ranges);
/// reads of it should float to 0xff bytes like an empty ISA bus.
pub const UNHANDLED_PORT: u16 = 0x2e0;

/// A guest-physical address in the virtio-mmio window; unmapped when no
/// virtio device is configured.
pub const UNMAPPED_MMIO: u32 = 0xd000_0000;

/// Writes `msg` to COM1 byte by byte, resets through the i8042, and halts
/// forever should the reset not happen.
pub fn serial_then_reset(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// QEMU's default `isa-debug-exit` port.
pub const DEBUG_EXIT_PORT: u16 = 0x501;

/// Writes `msg` to COM1, then `value` (one byte) to `port` (an
/// `isa-debug-exit`), then resets should the write not end the VM.
pub fn serial_then_debug_exit(msg: &str, port: u16, value: u8) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).mov_dx(port).mov_al(value).out_dx_al();
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// Resets through the i8042 as its first instruction: the shortest possible
/// boot, for start-time benchmarks.
pub fn reset_at_once() -> Vec<u8> {
    let mut a = Asm::new();
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// `jmp $` forever: for tests that stop microvm from outside.
pub fn spin_forever() -> Vec<u8> {
    let mut a = Asm::new();
    a.spin();
    pvh_elf(&a.finish())
}

/// Writes `msg` to COM1, then spins with `jmp $` forever: tests wait for
/// `msg` to know the guest runs, then stop microvm from outside.
pub fn serial_then_spin(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).spin();
    pvh_elf(&a.finish())
}

/// Writes `msg` to COM1, then halts with interrupts off: the vCPU sleeps in
/// the kernel for good, and only a kick from the VMM gets it out of KVM_RUN.
pub fn serial_then_halt(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).cli().halt_forever();
    pvh_elf(&a.finish())
}

/// Halts with interrupts off: the vCPU sleeps in the kernel for good.
pub fn halt_forever() -> Vec<u8> {
    let mut a = Asm::new();
    a.cli().halt_forever();
    pvh_elf(&a.finish())
}

/// Writes `msg` to COM1, then triple-faults: loads an IDT of limit 0, so the
/// `ud2` that follows raises #UD that cannot be delivered, nor the #GP and
/// #DF after it, and the CPU shuts down (KVM_EXIT_SHUTDOWN).
pub fn serial_then_triple_fault(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes());
    triple_fault(&mut a);
    pvh_elf(&a.finish())
}

/// Loads an IDT of limit 0 and executes `ud2`: the #UD, and the #GP and #DF after it,
/// cannot be delivered, so the CPU shuts down (KVM_EXIT_SHUTDOWN).
fn triple_fault(a: &mut Asm) {
    // Skip over a zeroed 6-byte IDT descriptor (limit 0, base 0) kept inline.
    a.jmp_over(6);
    let idtr = a.here();
    a.bytes(&[0; 6]);
    let idtr = a.addr_of(idtr);
    a.lidt(idtr).ud2().halt_forever();
}

/// Writes `msg` to COM1, then executes `int3`, which the project's emulated
/// /dev/kvm cannot emulate in guest ring 0: the vCPU stops with
/// KVM_EXIT_INTERNAL_ERROR (emulation failure).
pub fn serial_then_emulation_failure(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).int3().halt_forever();
    pvh_elf(&a.finish())
}

/// Stores to and loads from `addr` (meant to be unmapped MMIO), then writes
/// `msg` to COM1 and resets: proves the VMM survives accesses nothing handles.
pub fn mmio_then_serial_then_reset(addr: u32, msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.mov_eax(0x1234_5678).store_eax(addr).mov_al(0x5a).store_al(addr + 4);
    a.load_eax(addr).load_al(addr + 4);
    a.out_bytes(COM1, msg.as_bytes()).i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// Busy-wait turns between two lines of [`counter_on_serial`]: about 5 ms on the
/// emulated /dev/kvm of the project's machines (2 instructions a turn, ~2 M/s).
pub const COUNTER_DELAY: u32 = 5_000;

/// Forever: prints an increasing counter on COM1, one line of 10 decimal digits per
/// tick (`0000000001\n`, `0000000002\n`, ...), busy-waiting `delay` turns between
/// lines. Lets a test see whether the vCPU runs (the output grows), stops (it does not)
/// and resumes where it was (the numbers never go back nor skip).
pub fn counter_on_serial(delay: u32) -> Vec<u8> {
    let mut a = Asm::new();
    a.xor_esi_esi();
    let top = a.here();
    a.inc_esi().mov_eax_esi().out_decimal_eax(COM1).mov_al(b'\n').out_dx_al();
    a.delay(delay).jmp_near(top);
    pvh_elf(&a.finish())
}

/// A guest whose memory tells where it is, for diff snapshots. Turn `n` (from 1) stores
/// `n` at the start of page `(n - 1) % pages` of the `pages` pages from `region`, after
/// reading the page it wrote `behind` turns earlier and printing what it found there and
/// `n` on COM1 as `OOOOOOOOOO NNNNNNNNNN\n` (10 digits each); then it waits `delay`. So
/// each turn dirties one known page, and every line must read `n - behind` (0 for the
/// first `behind` turns): anything else is memory the guest did not leave there, as a
/// restore that lost or mixed pages would give. `behind` < `pages`.
pub fn page_writer_on_serial(region: u32, pages: u32, behind: u32, delay: u32) -> Vec<u8> {
    assert!(behind < pages);
    let end = region + pages * 4096;
    let mut a = Asm::new();
    // ebx: the page this turn writes; ebp: the one it reads, `behind` pages back (mod).
    a.xor_esi_esi().mov_ebx(region).mov_ebp(region + (pages - behind) * 4096);
    let top = a.here();
    a.inc_esi().load_eax_at_ebp().out_decimal_eax(COM1).mov_al(b' ').out_dx_al();
    a.mov_eax_esi().out_decimal_eax(COM1).mov_al(b'\n').out_dx_al();
    // Each pointer goes back to the first page past the last (`mov r32, imm32`: 5 bytes).
    a.store_esi_at_ebx().add_ebx(4096).cmp_ebx(end).jcc_over(Cond::NotZero, 5).mov_ebx(region);
    a.add_ebp(4096).cmp_ebp(end).jcc_over(Cond::NotZero, 5).mov_ebp(region);
    a.delay(delay).jmp_near(top);
    pvh_elf(&a.finish())
}

/// Where [`touch_then_count_on_serial`] keeps its working set: from 4 MiB, above the
/// guest's code, page tables and boot data.
pub const WORKING_SET_START: u32 = 0x40_0000;

/// Writes a byte into every 4 KiB page of `mib` MiB from [`WORKING_SET_START`], then
/// counts as [`counter_on_serial`] does, reading one byte of every one of those pages
/// before each line: after a restore, its first line comes only once the whole working
/// set is back in memory, so it times what a snapshot's page faults (or a prefetch of
/// them) cost.
pub fn touch_then_count_on_serial(mib: u32, delay: u32) -> Vec<u8> {
    let end = WORKING_SET_START + (mib << 20);
    let mut a = Asm::new();
    a.mov_al(0x5a).mov_edi(WORKING_SET_START);
    let fill = a.here();
    a.store_al_at_edi().add_edi(4096).cmp_edi(end).jcc(Cond::NotZero, fill);
    a.xor_esi_esi();
    let top = a.here();
    a.mov_edi(WORKING_SET_START);
    let sum = a.here();
    a.add_al_from_edi().add_edi(4096).cmp_edi(end).jcc(Cond::NotZero, sum);
    a.inc_esi().mov_eax_esi().out_decimal_eax(COM1).mov_al(b'\n').out_dx_al();
    a.delay(delay).jmp_near(top);
    pvh_elf(&a.finish())
}

/// Prints `msg` on COM1, waits `delay` turns, then triple-faults like
/// [`serial_then_triple_fault`]: a guest reset that QEMU's microvm (which has no i8042)
/// and microvm both see, late enough for a monitor client to be connected.
pub fn serial_then_delayed_triple_fault(msg: &str, delay: u32) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).delay(delay);
    triple_fault(&mut a);
    pvh_elf(&a.finish())
}

/// The guests `tiny-guest write DIR` writes as `DIR/NAME.elf`, for the Python QMP tests
/// (tests/qmp), which cannot call this crate.
pub fn qmp_test_guests() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("counter", counter_on_serial(COUNTER_DELAY)),
        // ~100 ms of waiting: the client sees the message, then the reset.
        ("late-triple-fault", serial_then_delayed_triple_fault("RESETTING\n", 100_000)),
        ("i8042-reset", serial_then_reset("RESETTING\n")),
        ("halt", serial_then_halt("HALTED\n")),
    ]
}

/// For each `(leaf, subleaf)`: executes CPUID and writes EAX, EBX, ECX and
/// EDX to COM1 as 16 raw bytes (each register least significant byte first),
/// then resets: lets a test see the CPUID the guest sees (`-cpu MODEL`).
pub fn cpuid_on_serial_then_reset(queries: &[(u32, u32)]) -> Vec<u8> {
    let mut a = Asm::new();
    for &(leaf, subleaf) in queries {
        a.mov_eax(leaf).mov_ecx(subleaf).cpuid();
        // DX is needed for the port: keep EBX, ECX, EDX in EBP, ESI, EDI.
        a.mov_ebp_ebx().mov_esi_ecx().mov_edi_edx().mov_dx(COM1);
        a.out_dx_eax_bytes().mov_eax_ebp().out_dx_eax_bytes();
        a.mov_eax_esi().out_dx_eax_bytes().mov_eax_edi().out_dx_eax_bytes();
    }
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// For each MSR: executes RDMSR and writes EAX then EDX (the low then the high half) to
/// COM1 as 8 raw bytes, least significant first, then resets: lets a test see an MSR's
/// value as the guest reads it (a custom CPU template's `msr_modifiers`).
pub fn msrs_on_serial_then_reset(msrs: &[u32]) -> Vec<u8> {
    let mut a = Asm::new();
    for &msr in msrs {
        a.mov_ecx(msr).bytes(&[0x0f, 0x32]); // rdmsr: EDX:EAX
        a.mov_edi_edx().mov_dx(COM1).out_dx_eax_bytes();
        a.mov_eax_edi().out_dx_eax_bytes();
    }
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// Reads I/O port `port` as a byte, a word and a dword, and writes the 7 bytes
/// read to COM1 (least significant first), then a newline, then resets.
/// For a port nothing decodes the output is `[0xff; 7]` then `\n`.
pub fn port_read_echo_then_reset(port: u16) -> Vec<u8> {
    let mut a = Asm::new();
    // Byte.
    a.mov_dx(port).in_al_dx().mov_dx(COM1).out_dx_al();
    // Word.
    a.mov_dx(port).in_ax_dx().mov_dx(COM1).out_dx_al().shr_eax(8).out_dx_al();
    // Dword.
    a.mov_dx(port).in_eax_dx().mov_dx(COM1);
    for i in 0..4 {
        if i > 0 {
            a.shr_eax(8);
        }
        a.out_dx_al();
    }
    a.mov_al(b'\n').out_dx_al();
    // An unhandled write too.
    a.mov_dx(port).mov_al(0x42).out_dx_al();
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// Reads each CMOS register of `regs` (index to port 0x70, data from 0x71) and writes
/// the values to COM1, then a newline, then resets.
pub fn cmos_read_echo_then_reset(regs: &[u8]) -> Vec<u8> {
    let mut a = Asm::new();
    for &reg in regs {
        a.mov_al(reg).out_al(0x70).in_al(0x71).mov_dx(COM1).out_dx_al();
    }
    a.mov_al(b'\n').mov_dx(COM1).out_dx_al();
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// What [`port_read_echo_then_reset`] prints when reads of the port float high.
pub const PORT_READ_ECHO_FLOATING: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\n";

/// Port the boot-time trace listens on, and the codes of the qemu-boot-time
/// method (6: Linux's start_kernel, 7: user space starts).
pub const BOOT_TRACE_PORT: u8 = 0xf4;

/// Reports the given boot-trace `codes` on port 0xf4, then resets: a guest
/// that plays the part of a patched kernel for `-trace-boot` tests.
pub fn boot_trace_then_reset(codes: &[u8]) -> Vec<u8> {
    let mut a = Asm::new();
    for &code in codes {
        a.mov_al(code).out_al(BOOT_TRACE_PORT);
    }
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// `-M microvm,acpi=on`'s sleep control register and the Generic Event Device's event
/// selector (arch::layout's ACPI_SLEEP_REGS_START and ACPI_GED_START).
pub const ACPI_SLEEP_CONTROL: u32 = 0xfea0_0200;
pub const ACPI_GED_SELECTOR: u32 = 0xfea0_0000;
/// SLP_TYP 5 (S5, the DSDT's `_S5`) with SLP_EN: what Linux writes to power off.
pub const S5_SLP_EN: u8 = (5 << 2) | (1 << 5);
/// The GED's power-button event bit.
pub const GED_POWER_BUTTON: u8 = 1 << 1;

/// Writes `msg` to COM1, then powers off as an ACPI guest does (S5 to the sleep
/// control register), and halts should the power-off not end the VM.
pub fn serial_then_acpi_poweroff(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).mov_al(S5_SLP_EN).store_al(ACPI_SLEEP_CONTROL).halt_forever();
    pvh_elf(&a.finish())
}

/// `acpi=on`'s reset register and the value the FADT names for it.
pub const ACPI_RESET_REGISTER: u32 = 0xfea0_0202;
pub const ACPI_RESET_VALUE: u8 = 0x42;

/// Writes `msg` to COM1, then resets through the ACPI reset register, as Linux reboots
/// with ACPI, and halts should the reset not end the VM.
pub fn serial_then_acpi_reset(msg: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, msg.as_bytes()).mov_al(ACPI_RESET_VALUE).store_al(ACPI_RESET_REGISTER).halt_forever();
    pvh_elf(&a.finish())
}

/// Writes `ready` to COM1, polls the GED's event selector until the power button is
/// pressed, writes `pressed` to COM1 and powers off (S5): the guest side of
/// `system_powerdown` with `acpi=on`, polling instead of taking the interrupt.
pub fn wait_power_button_then_poweroff(ready: &str, pressed: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, ready.as_bytes());
    let poll = a.here();
    a.load_al(ACPI_GED_SELECTOR).test_al(GED_POWER_BUTTON).jcc(Cond::Zero, poll);
    a.out_bytes(COM1, pressed.as_bytes()).mov_al(S5_SLP_EN).store_al(ACPI_SLEEP_CONTROL).halt_forever();
    pvh_elf(&a.finish())
}

/// Where `-device vmgenid` keeps the 16-byte VM generation ID (arch::layout's
/// VMGENID_GUID_START, what the DSDT's `VGEN.ADDR` returns), and the GED's event bit
/// for a new one.
pub const VMGENID_GUID: u32 = 0xf_e000;
pub const GED_VMGENID: u8 = 1 << 4;

/// Writes `G:`, the 16 raw bytes of the VM generation ID and a newline to COM1, then
/// polls the GED's event selector until the VMGenID event comes (a restore raises it),
/// writes `N:`, the 16 bytes again and a newline, and spins: what a guest's `vmgenid`
/// driver sees, without the interrupt.
pub fn vmgenid_on_serial_then_wait_for_a_new_one() -> Vec<u8> {
    let mut a = Asm::new();
    let print_guid = |a: &mut Asm, tag: &[u8]| {
        a.out_bytes(COM1, tag);
        for i in 0..16 {
            a.load_al(VMGENID_GUID + i).out_dx_al();
        }
        a.mov_al(b'\n').out_dx_al();
    };
    print_guid(&mut a, b"G:");
    let poll = a.here();
    a.load_al(ACPI_GED_SELECTOR).test_al(GED_VMGENID).jcc(Cond::Zero, poll);
    print_guid(&mut a, b"N:");
    a.spin();
    pvh_elf(&a.finish())
}

/// i8042 ports of `-device i8042`: data, and command/status.
pub const I8042_DATA: u8 = 0x60;
pub const I8042_STATUS: u8 = 0x64;

/// Writes `ready` to COM1, then copies `count` bytes from the i8042's output buffer to
/// COM1 (polling the status port's output-full bit), then resets: shows the scan codes
/// `send-key` typed.
pub fn echo_keyboard_bytes_then_reset(ready: &str, count: u32) -> Vec<u8> {
    let mut a = Asm::new();
    a.out_bytes(COM1, ready.as_bytes()).mov_ecx(count);
    let poll = a.here();
    a.in_al(I8042_STATUS).test_al(1).jcc(Cond::Zero, poll);
    a.in_al(I8042_DATA).mov_dx(COM1).out_dx_al().dec_ecx().jcc(Cond::NotZero, poll);
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(elf: &[u8]) -> &[u8] {
        &elf[elf::CODE_OFFSET..]
    }

    #[test]
    fn serial_guest_writes_each_byte_then_resets() {
        let elf = serial_then_reset("hi");
        assert_eq!(
            code_of(&elf),
            [
                0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
                0xb0, b'h', 0xee, // mov al, 'h'; out dx, al
                0xb0, b'i', 0xee, // mov al, 'i'; out dx, al
                0xb0, 0xfe, 0xe6, 0x64, // mov al, 0xfe; out 0x64, al
                0xf4, 0xeb, 0xfd, // hlt; jmp $-1
            ]
        );
    }

    #[test]
    fn triple_fault_guest_points_lidt_at_its_inline_zero_descriptor() {
        let elf = serial_then_triple_fault("");
        let code = code_of(&elf);
        // mov dx; jmp +6; 6 zero bytes; lidt [LOAD_ADDR + 6]
        assert_eq!(&code[4..6], [0xeb, 6]);
        assert_eq!(&code[6..12], [0; 6]);
        assert_eq!(&code[12..15], [0x0f, 0x01, 0x1d]);
        assert_eq!(u32::from_le_bytes(code[15..19].try_into().unwrap()), LOAD_ADDR as u32 + 6);
        assert_eq!(&code[19..21], [0x0f, 0x0b]);
    }

    #[test]
    fn counter_guest_loops_back_to_its_increment() {
        let elf = counter_on_serial(COUNTER_DELAY);
        let code = code_of(&elf);
        assert_eq!(&code[..3], [0x31, 0xf6, 0x46]); // xor esi, esi; top: inc esi
                                                    // Ends with `jmp near top`, top being offset 2.
        let (body, jmp) = code.split_at(code.len() - 5);
        assert_eq!(jmp[0], 0xe9);
        assert_eq!(i32::from_le_bytes(jmp[1..].try_into().unwrap()), 2 - code.len() as i32);
        // The delay loop, then the newline before it.
        assert!(body.ends_with(&[0xb9, 0x88, 0x13, 0, 0, 0x49, 0x75, 0xfd]));
        assert!(body[..body.len() - 8].ends_with(&[0xb0, b'\n', 0xee]));
    }

    #[test]
    fn every_guest_is_a_pvh_elf() {
        for elf in [
            serial_then_reset("x"),
            reset_at_once(),
            spin_forever(),
            halt_forever(),
            serial_then_spin("x"),
            serial_then_halt("x"),
            serial_then_triple_fault("x"),
            serial_then_emulation_failure("x"),
            mmio_then_serial_then_reset(UNMAPPED_MMIO, "x"),
            port_read_echo_then_reset(UNHANDLED_PORT),
            counter_on_serial(COUNTER_DELAY),
            serial_then_delayed_triple_fault("x", 1),
        ] {
            assert_eq!(&elf[..4], b"\x7fELF");
            assert!(elf.len() > elf::CODE_OFFSET);
        }
    }
}
