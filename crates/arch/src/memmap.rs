//! Where guest RAM lives and how the guest is told: the memory map shared by
//! the e820 table (bzImage entry) and the PVH memmap (ELF entry).

use crate::layout::{EBDA_START, HIGH_RAM_START, HIMEM_START, MMIO_GAP_START};
use vm_memory::GuestAddress;

/// e820 / PVH memmap entry types (the PVH spec reuses the e820 values).
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// One entry of the guest's physical memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryMapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// The host mappings that back `mem_size` bytes of guest RAM: one range below
/// the 32-bit MMIO gap and, when RAM does not fit there, one from 4 GiB up.
pub fn guest_ram_ranges(mem_size: u64) -> Vec<(GuestAddress, usize)> {
    let low = mem_size.min(MMIO_GAP_START);
    let mut ranges = vec![(GuestAddress(0), low as usize)];
    if mem_size > low {
        ranges.push((GuestAddress(HIGH_RAM_START), (mem_size - low) as usize));
    }
    ranges
}

/// The memory map the guest is given. The first 640 KiB minus the EBDA are
/// RAM; the EBDA (MP table) up to 1 MiB is reserved, as on a PC; then RAM to
/// the MMIO gap and beyond 4 GiB.
pub fn memory_map(mem_size: u64) -> Vec<MemoryMapEntry> {
    let low_end = mem_size.min(MMIO_GAP_START);
    let mut map = vec![
        MemoryMapEntry { addr: 0, size: EBDA_START, kind: E820_RAM },
        MemoryMapEntry { addr: EBDA_START, size: HIMEM_START - EBDA_START, kind: E820_RESERVED },
    ];
    if low_end > HIMEM_START {
        map.push(MemoryMapEntry { addr: HIMEM_START, size: low_end - HIMEM_START, kind: E820_RAM });
    }
    if mem_size > low_end {
        map.push(MemoryMapEntry { addr: HIGH_RAM_START, size: mem_size - low_end, kind: E820_RAM });
    }
    map
}

/// Highest guest address below 4 GiB that is RAM, plus one: where the initrd
/// is placed below (Linux wants it under 4 GiB and within `initrd_addr_max`).
pub fn low_ram_end(mem_size: u64) -> u64 {
    mem_size.min(MMIO_GAP_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn small_guest_has_one_ram_range() {
        assert_eq!(guest_ram_ranges(256 * MIB), vec![(GuestAddress(0), (256 * MIB) as usize)]);
    }

    #[test]
    fn ram_beyond_the_gap_moves_above_4g() {
        let ranges = guest_ram_ranges(4 * GIB);
        assert_eq!(ranges, vec![(GuestAddress(0), 3 * GIB as usize), (GuestAddress(4 * GIB), GIB as usize)]);
    }

    #[test]
    fn ram_exactly_filling_low_memory_needs_no_high_range() {
        assert_eq!(guest_ram_ranges(MMIO_GAP_START).len(), 1);
    }

    #[test]
    fn memory_map_reserves_ebda_and_bios_area() {
        let map = memory_map(256 * MIB);
        assert_eq!(
            map,
            vec![
                MemoryMapEntry { addr: 0, size: 0x9fc00, kind: E820_RAM },
                MemoryMapEntry { addr: 0x9fc00, size: 0x100000 - 0x9fc00, kind: E820_RESERVED },
                MemoryMapEntry { addr: 0x100000, size: 255 * MIB, kind: E820_RAM },
            ]
        );
    }

    #[test]
    fn memory_map_covers_every_byte_of_ram_exactly_once() {
        for size in [16 * MIB, 512 * MIB, 3 * GIB, 3 * GIB + MIB, 8 * GIB] {
            let ram: u64 = memory_map(size).iter().filter(|e| e.kind == E820_RAM).map(|e| e.size).sum();
            // The reserved EBDA..1MiB hole is backed by RAM but not offered to the guest.
            assert_eq!(ram, size - (HIMEM_START - EBDA_START), "size {size:#x}");
            let high: Vec<_> = memory_map(size).into_iter().filter(|e| e.addr >= 4 * GIB).collect();
            assert_eq!(high.len(), usize::from(size > MMIO_GAP_START));
        }
    }

    #[test]
    fn entries_are_sorted_and_do_not_overlap() {
        let map = memory_map(6 * GIB);
        for pair in map.windows(2) {
            assert!(pair[0].addr + pair[0].size <= pair[1].addr, "{pair:?}");
        }
        assert!(map.iter().all(|e| e.addr + e.size <= MMIO_GAP_START || e.addr >= HIGH_RAM_START));
    }
}
