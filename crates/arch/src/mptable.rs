//! Intel MultiProcessor Specification 1.4 table.
//!
//! microvm has no ACPI, so a Linux guest (`CONFIG_X86_MPPARSE`) learns about
//! its CPUs, the IOAPIC and the legacy interrupt routing from an MP table.
//!
//! Layout in guest memory, starting at [`MPTABLE_START`] (0x9fc00, the last
//! KiB of base memory, one of the places Linux scans for the floating
//! pointer):
//!
//! ```text
//! MPTABLE_START + 0    MP floating pointer structure ("_MP_", 16 bytes)
//! MPTABLE_START + 16   configuration table header ("PCMP", 44 bytes)
//! MPTABLE_START + 60   one processor entry per vCPU (20 bytes each)
//!                      one ISA bus entry (8 bytes)
//!                      one IOAPIC entry (8 bytes)
//!                      one I/O interrupt entry per IOAPIC pin (8 bytes each)
//!                      two local interrupt entries: ExtINT->LINT0, NMI->LINT1
//! ```
//!
//! That is `284 + 20 * num_cpus` bytes: 304 for one vCPU and 924 for
//! [`MAX_VCPUS`] (32), so the whole table always fits in the 1 KiB between
//! `MPTABLE_START` and 0xa0000 (checked at compile time below). The range
//! `[MPTABLE_START, MPTABLE_START + mptable_size(n))` must be backed by guest
//! memory and must not be reported as RAM in the e820 map.
//!
//! Every structure is serialized field by field, little-endian, into a byte
//! buffer which is then written to guest memory in one `write_slice`.

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError, Permissions};

use crate::layout::{APIC_START, IOAPIC_NUM_PINS, IOAPIC_START, MAX_VCPUS, MPTABLE_START};

/// Errors from [`setup_mptable`].
#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    /// An MP table must describe at least the boot processor.
    #[error("an MP table needs at least one CPU")]
    NoCpus,
    /// More vCPUs than microvm supports.
    #[error("{0} CPUs requested, at most {max} supported", max = MAX_VCPUS)]
    TooManyCpus(u8),
    /// Guest memory does not cover the range the table is written to.
    #[error(
        "guest memory does not cover the MP table at {start:#x}..{:#x}",
        start + *size as u64
    )]
    NotEnoughMemory {
        /// Guest-physical start of the table.
        start: u64,
        /// Bytes the table occupies.
        size: usize,
    },
    /// Writing the table into guest memory failed.
    #[error("failed to write the MP table to guest memory: {0}")]
    WriteFailed(#[source] GuestMemoryError),
}

// ---------------------------------------------------------------------------
// Constants from the MP specification 1.4 (chapter 4) and what Linux checks.
// ---------------------------------------------------------------------------

/// Linux scans 639 KiB..640 KiB ("the last KiB of base memory") for the
/// floating pointer; the table must end at or before the VGA hole at 0xa0000.
const BASE_MEMORY_END: u64 = 0xa_0000;

const MPF_SIGNATURE: [u8; 4] = *b"_MP_";
const MPC_SIGNATURE: [u8; 4] = *b"PCMP";
/// Specification revision 1.4.
const SPEC_REV_1_4: u8 = 4;
const OEM_ID: [u8; 8] = *b"MICROVM ";
const PRODUCT_ID: [u8; 12] = *b"MICROVM     ";
const BUS_TYPE_ISA: [u8; 6] = *b"ISA   ";
/// The only bus, and the source bus of every interrupt entry.
const ISA_BUS_ID: u8 = 0;

// Structure sizes (MP spec 1.4, tables 4-1 .. 4-12).
const MPF_SIZE: usize = 16;
const HEADER_SIZE: usize = 44;
const PROCESSOR_ENTRY_SIZE: usize = 20;
/// Bus, IOAPIC, I/O interrupt and local interrupt entries are all 8 bytes.
const SMALL_ENTRY_SIZE: usize = 8;
/// Local interrupt entries: ExtINT -> LINT0 and NMI -> LINT1.
const NUM_LINT_ENTRIES: usize = 2;

// Entry types.
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;

// Processor entry.
/// Version register of an integrated xAPIC, what KVM's local APIC reports.
const LAPIC_VERSION: u8 = 0x14;
const CPU_FLAG_ENABLED: u8 = 1 << 0;
const CPU_FLAG_BSP: u8 = 1 << 1;
/// CPUID(1).EAX-style signature: family 6, model 0, stepping 0. Linux only
/// prints it; the real CPUID comes from KVM_SET_CPUID2.
const CPU_SIGNATURE: u32 = 0x600;
/// CPUID(1).EDX-style feature flags: FPU (bit 0) and on-chip APIC (bit 9).
const CPU_FEATURES: u32 = (1 << 0) | (1 << 9);

// IOAPIC entry.
/// Version register of KVM's in-kernel IOAPIC (82093AA-compatible).
const IOAPIC_VERSION: u8 = 0x11;
const IOAPIC_FLAG_ENABLED: u8 = 1 << 0;

// Interrupt types (I/O and local interrupt entries).
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
/// Polarity and trigger mode both "conforms to the bus" (ISA: active high,
/// edge triggered).
const INT_FLAGS_CONFORMING: u16 = 0;
/// Destination local APIC id meaning "all local APICs".
const ALL_LOCAL_APICS: u8 = 0xff;

/// Converts a layout address to the 32-bit field the MP table stores.
/// Evaluated in const context only, so an out-of-range value fails the build.
const fn addr32(addr: u64) -> u32 {
    assert!(addr <= u32::MAX as u64, "MP table addresses are 32-bit");
    addr as u32
}

const LAPIC_ADDRESS: u32 = addr32(APIC_START);
const IOAPIC_ADDRESS: u32 = addr32(IOAPIC_START);
/// The configuration table header directly follows the floating pointer.
const CONFIG_TABLE_ADDRESS: u32 = addr32(MPTABLE_START + MPF_SIZE as u64);

/// IOAPIC pins, as the one-byte pin/IRQ numbers the entries carry.
const NUM_PINS: u8 = {
    assert!(IOAPIC_NUM_PINS <= u8::MAX as u32);
    IOAPIC_NUM_PINS as u8
};

// The IOAPIC takes APIC id `num_cpus`, and 0xff means "all local APICs".
const _: () = assert!(MAX_VCPUS < ALL_LOCAL_APICS);
// The floating pointer must be 16-byte aligned inside the KiB Linux scans.
const _: () = assert!(MPTABLE_START & 0xf == 0);
const _: () = assert!(MPTABLE_START >= BASE_MEMORY_END - 0x400);
// The table for the largest supported VM fits below the VGA hole (and so
// its length fits the 16-bit length field).
const _: () = assert!(MPTABLE_START + mptable_size(MAX_VCPUS) as u64 <= BASE_MEMORY_END);

/// Bytes the whole MP table (floating pointer + configuration table)
/// occupies for `num_cpus` vCPUs: `284 + 20 * num_cpus`.
pub const fn mptable_size(num_cpus: u8) -> usize {
    MPF_SIZE + config_table_size(num_cpus)
}

/// Bytes of the configuration table (header + entries): its "base table length".
const fn config_table_size(num_cpus: u8) -> usize {
    HEADER_SIZE + PROCESSOR_ENTRY_SIZE * num_cpus as usize + SMALL_ENTRY_SIZE * entry_count_small()
}

/// Number of 8-byte entries: bus, IOAPIC, one per pin, two local interrupts.
const fn entry_count_small() -> usize {
    1 + 1 + NUM_PINS as usize + NUM_LINT_ENTRIES
}

/// Value that makes the bytes of `data` plus the returned byte sum to 0 mod 256.
fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |sum, b| sum.wrapping_sub(*b))
}

/// MP floating pointer structure (MP spec 4.1).
struct FloatingPointer {
    /// Guest-physical address of the configuration table header.
    config_table: u32,
}

impl FloatingPointer {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&MPF_SIGNATURE);
        out.extend_from_slice(&self.config_table.to_le_bytes());
        out.push(1); // length in 16-byte paragraphs
        out.push(SPEC_REV_1_4);
        out.push(0); // checksum, patched below
        out.push(0); // feature 1: 0 = a configuration table is present
        out.push(0); // feature 2: bit 7 clear = virtual wire mode, no IMCR
        out.extend_from_slice(&[0; 3]); // features 3..5, reserved
        out[start + 10] = checksum(&out[start..]);
    }
}

/// MP configuration table header (MP spec 4.2). Its checksum covers the
/// header and all base-table entries, so it is patched in by the caller.
struct ConfigTableHeader {
    base_table_length: u16,
    entry_count: u16,
}

impl ConfigTableHeader {
    /// Offset of the checksum byte inside the header.
    const CHECKSUM_OFFSET: usize = 7;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MPC_SIGNATURE);
        out.extend_from_slice(&self.base_table_length.to_le_bytes());
        out.push(SPEC_REV_1_4);
        out.push(0); // checksum, patched once the entries are written
        out.extend_from_slice(&OEM_ID);
        out.extend_from_slice(&PRODUCT_ID);
        out.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer: none
        out.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&LAPIC_ADDRESS.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extended table length
        out.push(0); // extended table checksum
        out.push(0); // reserved
    }
}

/// One base-table entry (MP spec 4.3).
enum Entry {
    Processor { apic_id: u8, bsp: bool },
    Bus { id: u8, bus_type: [u8; 6] },
    IoApic { id: u8, address: u32 },
    IoInterrupt { int_type: u8, src_bus_irq: u8, dst_ioapic: u8, dst_pin: u8 },
    LocalInterrupt { int_type: u8, dst_lapic: u8, dst_lint: u8 },
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Entry::Processor { apic_id, bsp } => {
                out.push(ENTRY_PROCESSOR);
                out.push(apic_id);
                out.push(LAPIC_VERSION);
                out.push(CPU_FLAG_ENABLED | if bsp { CPU_FLAG_BSP } else { 0 });
                out.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
                out.extend_from_slice(&CPU_FEATURES.to_le_bytes());
                out.extend_from_slice(&[0; 8]); // reserved
            }
            Entry::Bus { id, bus_type } => {
                out.push(ENTRY_BUS);
                out.push(id);
                out.extend_from_slice(&bus_type);
            }
            Entry::IoApic { id, address } => {
                out.push(ENTRY_IOAPIC);
                out.push(id);
                out.push(IOAPIC_VERSION);
                out.push(IOAPIC_FLAG_ENABLED);
                out.extend_from_slice(&address.to_le_bytes());
            }
            Entry::IoInterrupt { int_type, src_bus_irq, dst_ioapic, dst_pin } => {
                out.push(ENTRY_IO_INTERRUPT);
                out.push(int_type);
                out.extend_from_slice(&INT_FLAGS_CONFORMING.to_le_bytes());
                out.push(ISA_BUS_ID);
                out.push(src_bus_irq);
                out.push(dst_ioapic);
                out.push(dst_pin);
            }
            Entry::LocalInterrupt { int_type, dst_lapic, dst_lint } => {
                out.push(ENTRY_LOCAL_INTERRUPT);
                out.push(int_type);
                out.extend_from_slice(&INT_FLAGS_CONFORMING.to_le_bytes());
                out.push(ISA_BUS_ID);
                out.push(0); // source bus IRQ
                out.push(dst_lapic);
                out.push(dst_lint);
            }
        }
    }
}

/// The base-table entries for `num_cpus` vCPUs, in the order of the spec's
/// recommendation (processors, buses, IOAPICs, I/O then local interrupts).
fn entries(num_cpus: u8) -> Vec<Entry> {
    // APIC ids 0..num_cpus belong to the local APICs; the IOAPIC comes next.
    let ioapic_id = num_cpus;
    let mut entries = Vec::with_capacity(usize::from(num_cpus) + entry_count_small());
    entries.extend((0..num_cpus).map(|cpu| Entry::Processor { apic_id: cpu, bsp: cpu == 0 }));
    entries.push(Entry::Bus { id: ISA_BUS_ID, bus_type: BUS_TYPE_ISA });
    entries.push(Entry::IoApic { id: ioapic_id, address: IOAPIC_ADDRESS });
    // Identity routing, matching KVM's default GSI routing: bus IRQ n -> pin n.
    entries.extend((0..NUM_PINS).map(|pin| Entry::IoInterrupt {
        int_type: INT_TYPE_INT,
        src_bus_irq: pin,
        dst_ioapic: ioapic_id,
        dst_pin: pin,
    }));
    entries.push(Entry::LocalInterrupt { int_type: INT_TYPE_EXTINT, dst_lapic: ALL_LOCAL_APICS, dst_lint: 0 });
    entries.push(Entry::LocalInterrupt { int_type: INT_TYPE_NMI, dst_lapic: ALL_LOCAL_APICS, dst_lint: 1 });
    entries
}

/// Serializes the whole table as it must appear at `MPTABLE_START`.
/// `num_cpus` must already be validated (1..=MAX_VCPUS).
fn build_table(num_cpus: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(mptable_size(num_cpus));

    FloatingPointer { config_table: CONFIG_TABLE_ADDRESS }.encode(&mut out);

    let entries = entries(num_cpus);
    let header_start = out.len();
    ConfigTableHeader {
        // Both fit in u16: the const assertion above bounds the table by 1 KiB.
        base_table_length: config_table_size(num_cpus) as u16,
        entry_count: entries.len() as u16,
    }
    .encode(&mut out);
    for entry in &entries {
        entry.encode(&mut out);
    }
    out[header_start + ConfigTableHeader::CHECKSUM_OFFSET] = checksum(&out[header_start..]);

    out
}

/// Writes the MP table for `num_cpus` vCPUs (1..=[`MAX_VCPUS`]) at
/// [`MPTABLE_START`]. vCPU `i` gets local APIC id `i` (vCPU 0 is the boot
/// processor); the IOAPIC gets id `num_cpus`.
pub fn setup_mptable<M: GuestMemory>(mem: &M, num_cpus: u8) -> Result<(), MptableError> {
    if num_cpus == 0 {
        return Err(MptableError::NoCpus);
    }
    if num_cpus > MAX_VCPUS {
        return Err(MptableError::TooManyCpus(num_cpus));
    }

    let start = GuestAddress(MPTABLE_START);
    let size = mptable_size(num_cpus);
    if !mem.check_range(start, size, Permissions::Write) {
        return Err(MptableError::NotEnoughMemory { start: MPTABLE_START, size });
    }

    mem.write_slice(&build_table(num_cpus), start).map_err(MptableError::WriteFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    type Mem = GuestMemoryMmap<()>;

    fn mem_1mib() -> Mem {
        Mem::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap()
    }

    fn read(mem: &Mem, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes([b[off], b[off + 1]])
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    fn byte_sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |s, x| s.wrapping_add(*x))
    }

    #[derive(Debug, Default)]
    struct Parsed {
        cpus: Vec<(u8, u8, u8)>, // (apic id, apic version, flags)
        buses: Vec<(u8, [u8; 6])>,
        ioapics: Vec<(u8, u8, u8, u32)>, // (id, version, flags, address)
        intsrc: Vec<[u8; 8]>,
        lintsrc: Vec<[u8; 8]>,
    }

    /// Checks everything a guest checks before parsing, then decodes the
    /// entries the way Linux's smp_read_mpc walks them.
    fn parse(mem: &Mem) -> Parsed {
        // Floating pointer, as Linux's smp_scan_config() accepts it.
        let mpf = read(mem, MPTABLE_START, MPF_SIZE);
        assert_eq!(&mpf[0..4], b"_MP_");
        assert_eq!(mpf[8], 1, "length in paragraphs");
        assert_eq!(mpf[9], 4, "spec revision 1.4");
        assert_eq!(byte_sum(&mpf), 0, "floating pointer checksum");
        assert_eq!(mpf[11], 0, "feature 1: table present, no default config");
        assert_eq!(&mpf[12..16], &[0; 4]);
        let physptr = u64::from(u32_at(&mpf, 4));
        assert_eq!(physptr, MPTABLE_START + 16);

        // Configuration table header, as smp_check_mpc() accepts it.
        let header = read(mem, physptr, HEADER_SIZE);
        assert_eq!(&header[0..4], b"PCMP");
        assert_eq!(header[6], 4, "spec revision 1.4");
        assert_eq!(&header[8..16], b"MICROVM ");
        assert_eq!(u32_at(&header, 36), 0xfee0_0000, "LAPIC address");
        assert_eq!(u64::from(u32_at(&header, 36)), APIC_START);
        assert_eq!(u16_at(&header, 40), 0, "no extended table");
        let length = usize::from(u16_at(&header, 4));
        let entry_count = usize::from(u16_at(&header, 34));

        let table = read(mem, physptr, length);
        assert_eq!(byte_sum(&table), 0, "configuration table checksum");
        assert!(physptr + length as u64 <= BASE_MEMORY_END);

        let mut parsed = Parsed::default();
        let mut off = HEADER_SIZE;
        let mut seen = 0;
        while off < length {
            let size = if table[off] == ENTRY_PROCESSOR { 20 } else { 8 };
            assert!(off + size <= length, "entry overruns the table");
            let e = &table[off..off + size];
            match e[0] {
                0 => parsed.cpus.push((e[1], e[2], e[3])),
                1 => parsed.buses.push((e[1], e[2..8].try_into().unwrap())),
                2 => parsed.ioapics.push((e[1], e[2], e[3], u32_at(e, 4))),
                3 => parsed.intsrc.push(e.try_into().unwrap()),
                4 => parsed.lintsrc.push(e.try_into().unwrap()),
                t => panic!("unknown entry type {t}"),
            }
            off += size;
            seen += 1;
        }
        assert_eq!(off, length, "entries end exactly at the base table length");
        assert_eq!(seen, entry_count, "header entry count");
        parsed
    }

    fn check_table(num_cpus: u8) {
        let mem = mem_1mib();
        setup_mptable(&mem, num_cpus).unwrap();

        // Length field and entry count.
        let header = read(&mem, MPTABLE_START + 16, HEADER_SIZE);
        assert_eq!(usize::from(u16_at(&header, 4)), mptable_size(num_cpus) - 16, "base table length");
        assert_eq!(usize::from(u16_at(&header, 34)), usize::from(num_cpus) + 1 + 1 + 24 + 2);

        let p = parse(&mem);
        let n = usize::from(num_cpus);

        assert_eq!(p.cpus.len(), n);
        for (i, &(apic_id, version, flags)) in p.cpus.iter().enumerate() {
            assert_eq!(usize::from(apic_id), i);
            assert_eq!(version, 0x14);
            assert_ne!(flags & CPU_FLAG_ENABLED, 0, "cpu {i} enabled");
            assert_eq!(flags & CPU_FLAG_BSP != 0, i == 0, "BSP flag only on cpu 0");
        }

        assert_eq!(p.buses, vec![(0, *b"ISA   ")]);

        assert_eq!(p.ioapics.len(), 1);
        let (ioapic_id, version, flags, address) = p.ioapics[0];
        assert_eq!(ioapic_id, num_cpus);
        assert_eq!(version, 0x11);
        assert_eq!(flags & 1, 1, "IOAPIC usable");
        assert_eq!(u64::from(address), IOAPIC_START);

        assert_eq!(p.intsrc.len(), 24);
        let mut routed = [false; 24];
        for e in &p.intsrc {
            assert_eq!(e[1], INT_TYPE_INT);
            assert_eq!(u16_at(e, 2), 0, "conforming polarity/trigger");
            assert_eq!(e[4], 0, "source bus is the ISA bus");
            assert_eq!(e[6], ioapic_id, "destination is our IOAPIC");
            assert_eq!(e[5], e[7], "bus IRQ n goes to pin n");
            let pin = usize::from(e[7]);
            assert!(pin < 24);
            assert!(!routed[pin], "pin {pin} routed twice");
            routed[pin] = true;
        }
        assert!(routed.iter().all(|r| *r), "every pin routed");

        assert_eq!(p.lintsrc.len(), 2);
        // (type, dest apic, dest lint)
        let lints: Vec<(u8, u8, u8)> = p.lintsrc.iter().map(|e| (e[1], e[6], e[7])).collect();
        assert_eq!(lints, vec![(INT_TYPE_EXTINT, 0xff, 0), (INT_TYPE_NMI, 0xff, 1)]);
        for e in &p.lintsrc {
            assert_eq!(u16_at(e, 2), 0);
            assert_eq!(e[4], 0);
        }
    }

    #[test]
    fn sizes_and_placement() {
        assert_eq!(mptable_size(1), 304);
        assert_eq!(mptable_size(2), 324);
        assert_eq!(mptable_size(32), 924);
        assert_eq!(mptable_size(MAX_VCPUS), 284 + 20 * usize::from(MAX_VCPUS));
        // Everything lies in the last KiB of base memory, which Linux scans
        // and which the e820 map reserves.
        assert_eq!(MPTABLE_START, 0x9fc00);
        assert!(MPTABLE_START + mptable_size(MAX_VCPUS) as u64 <= 0xa0000);
        assert_eq!(build_table(1).len(), mptable_size(1));
        assert_eq!(build_table(MAX_VCPUS).len(), mptable_size(MAX_VCPUS));
    }

    #[test]
    fn one_cpu() {
        check_table(1);
    }

    #[test]
    fn two_cpus() {
        check_table(2);
    }

    #[test]
    fn max_cpus() {
        assert_eq!(MAX_VCPUS, 32);
        check_table(32);
    }

    #[test]
    fn every_cpu_count() {
        for n in 1..=MAX_VCPUS {
            check_table(n);
        }
    }

    #[test]
    fn rewrite_with_fewer_cpus() {
        // A smaller table written over a larger one is still self-consistent.
        let mem = mem_1mib();
        setup_mptable(&mem, 32).unwrap();
        setup_mptable(&mem, 3).unwrap();
        assert_eq!(parse(&mem).cpus.len(), 3);
    }

    #[test]
    fn zero_cpus_rejected() {
        let mem = mem_1mib();
        assert!(matches!(setup_mptable(&mem, 0), Err(MptableError::NoCpus)));
        assert_eq!(read(&mem, MPTABLE_START, 4), vec![0; 4], "nothing written");
    }

    #[test]
    fn too_many_cpus_rejected() {
        let mem = mem_1mib();
        assert!(matches!(setup_mptable(&mem, 33), Err(MptableError::TooManyCpus(33))));
        assert!(matches!(setup_mptable(&mem, u8::MAX), Err(MptableError::TooManyCpus(255))));
        assert_eq!(read(&mem, MPTABLE_START, 4), vec![0; 4], "nothing written");
    }

    #[test]
    fn memory_ending_below_table() {
        let mem = Mem::from_ranges(&[(GuestAddress(0), MPTABLE_START as usize)]).unwrap();
        let err = setup_mptable(&mem, 1).unwrap_err();
        assert!(matches!(err, MptableError::NotEnoughMemory { start: MPTABLE_START, size: 304 }));
        assert!(err.to_string().contains("0x9fc00..0x9fd30"), "{err}");
    }

    #[test]
    fn memory_ending_inside_table() {
        let size = mptable_size(32);
        let mem = Mem::from_ranges(&[(GuestAddress(0), MPTABLE_START as usize + size - 1)]).unwrap();
        assert!(matches!(setup_mptable(&mem, 32), Err(MptableError::NotEnoughMemory { .. })));
        // The same memory is enough for fewer CPUs.
        setup_mptable(&mem, 31).unwrap();
        assert_eq!(parse(&mem).cpus.len(), 31);
    }

    #[test]
    fn memory_exactly_covering_table() {
        let size = mptable_size(32);
        let mem = Mem::from_ranges(&[(GuestAddress(MPTABLE_START), size)]).unwrap();
        setup_mptable(&mem, 32).unwrap();
        assert_eq!(parse(&mem).cpus.len(), 32);
    }

    #[test]
    fn no_memory_at_table() {
        let mem = Mem::from_ranges(&[(GuestAddress(0x10_0000), 1 << 20)]).unwrap();
        assert!(matches!(setup_mptable(&mem, 1), Err(MptableError::NotEnoughMemory { .. })));
    }

    #[test]
    fn checksum_helper() {
        assert_eq!(checksum(&[]), 0);
        let data = [0x12, 0xff, 0x80, 0x01];
        let mut all = data.to_vec();
        all.push(checksum(&data));
        assert_eq!(byte_sum(&all), 0);
    }
}
