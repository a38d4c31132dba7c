//! The guest's view of the machine: every port range and MMIO region it can
//! reach, who serves it (KVM in the kernel, or the VMM), and the RAM. Printed
//! by `-M microvm,dump-mtree` in the layout of QEMU's `info mtree -f`, so the
//! attack surface can be compared line by line.

use arch::layout::{APIC_START, IOAPIC_START};
use arch::memmap::guest_ram_ranges;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Space {
    Memory,
    Io,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Guest RAM.
    Ram,
    /// Emulated inside the host kernel by KVM.
    Kvm,
    /// Emulated by microvm in user space.
    Vmm,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub space: Space,
    pub start: u64,
    /// Inclusive, as QEMU prints it.
    pub end: u64,
    pub name: String,
    pub owner: Owner,
}

impl Region {
    pub fn new(space: Space, start: u64, len: u64, name: impl Into<String>, owner: Owner) -> Self {
        Region { space, start, end: start + len - 1, name: name.into(), owner }
    }
}

/// Size of KVM's in-kernel IOAPIC MMIO window and of one LAPIC page.
const IOAPIC_LEN: u64 = 0x100;
const APIC_LEN: u64 = 0x1000;

/// What KVM_CREATE_IRQCHIP (and KVM_CREATE_PIT2 with no speaker port)
/// put in front of the guest.
pub fn kvm_regions(pit: bool) -> Vec<Region> {
    let io = |start, len, name| Region::new(Space::Io, start, len, name, Owner::Kvm);
    let mut regions = vec![
        io(0x20, 2, "kvm-pic"),
        io(0xa0, 2, "kvm-pic"),
        io(0x4d0, 2, "kvm-elcr"),
        Region::new(Space::Memory, IOAPIC_START, IOAPIC_LEN, "kvm-ioapic", Owner::Kvm),
        Region::new(Space::Memory, APIC_START, APIC_LEN, "kvm-lapic", Owner::Kvm),
    ];
    if pit {
        regions.push(io(0x40, 4, "kvm-pit"));
    }
    regions
}

pub fn ram_regions(mem_size: u64) -> Vec<Region> {
    guest_ram_ranges(mem_size)
        .into_iter()
        .map(|(addr, len)| Region::new(Space::Memory, addr.0, len as u64, "microvm.ram", Owner::Ram))
        .collect()
}

/// QEMU's `info mtree -f` layout, with the owner appended.
pub fn format_mtree(regions: &[Region]) -> String {
    let mut sorted = regions.to_vec();
    sorted.sort_by_key(|r| (r.space, r.start));
    let mut out = String::new();
    for (space, title) in [(Space::Memory, "memory"), (Space::Io, "I/O")] {
        let _ = writeln!(out, "address-space: {title}");
        for r in sorted.iter().filter(|r| r.space == space) {
            let (kind, owner) = match r.owner {
                Owner::Ram => ("ram", "ram"),
                Owner::Kvm => ("i/o", "kvm"),
                Owner::Vmm => ("i/o", "microvm"),
            };
            let _ = writeln!(out, "  {:016x}-{:016x} (prio 0, {kind}): {} [{owner}]", r.start, r.end, r.name);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_off_removes_only_the_pit_ports() {
        let with: Vec<_> = kvm_regions(true);
        let without = kvm_regions(false);
        assert_eq!(with.len(), without.len() + 1);
        assert!(with.iter().any(|r| r.name == "kvm-pit" && (r.start, r.end) == (0x40, 0x43)));
        assert!(without.iter().all(|r| r.name != "kvm-pit"));
    }

    #[test]
    fn mtree_lists_memory_then_io_sorted_with_owners() {
        let mut regions = kvm_regions(false);
        regions.extend(ram_regions(256 << 20));
        regions.push(Region::new(Space::Io, 0x3f8, 8, "serial", Owner::Vmm));
        let text = format_mtree(&regions);
        let expected = "\
address-space: memory
  0000000000000000-000000000fffffff (prio 0, ram): microvm.ram [ram]
  00000000fec00000-00000000fec000ff (prio 0, i/o): kvm-ioapic [kvm]
  00000000fee00000-00000000fee00fff (prio 0, i/o): kvm-lapic [kvm]

address-space: I/O
  0000000000000020-0000000000000021 (prio 0, i/o): kvm-pic [kvm]
  00000000000000a0-00000000000000a1 (prio 0, i/o): kvm-pic [kvm]
  00000000000003f8-00000000000003ff (prio 0, i/o): serial [microvm]
  00000000000004d0-00000000000004d1 (prio 0, i/o): kvm-elcr [kvm]

";
        assert_eq!(text, expected);
    }
}
