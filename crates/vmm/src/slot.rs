//! Where a virtio-mmio device lives in the guest (its window and GSI), and how Linux is
//! told: plain data shared by the device table, the registry and the set-up code.

use arch::layout::{VIRTIO_MMIO_IRQS, VIRTIO_MMIO_SLOT_SIZE, VIRTIO_MMIO_START};

/// Where one device lives in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub addr: u64,
    pub irq: u32,
    /// `packed=on`: the transport offers VIRTIO_F_RING_PACKED.
    pub packed: bool,
}

pub fn slot(index: u32) -> Slot {
    Slot {
        addr: VIRTIO_MMIO_START + u64::from(index) * VIRTIO_MMIO_SLOT_SIZE,
        irq: VIRTIO_MMIO_IRQS[index as usize],
        packed: false,
    }
}

/// The kernel command-line entry describing a slot (Linux's
/// VIRTIO_MMIO_CMDLINE_DEVICES syntax: size@base:irq).
pub fn cmdline_entry(slot: Slot) -> String {
    format!("virtio_mmio.device={}@{:#x}:{}", VIRTIO_MMIO_SLOT_SIZE, slot.addr, slot.irq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_consecutive_windows_with_their_own_irq() {
        assert_eq!(slot(0), Slot { addr: 0xd000_0000, irq: 5, packed: false });
        assert_eq!(slot(3), Slot { addr: 0xd000_0600, irq: 9, packed: false }, "IRQ 8 is the RTC's");
        assert_eq!(slot(7), Slot { addr: 0xd000_0e00, irq: 13, packed: false });
        assert!(slot(arch::layout::VIRTIO_MMIO_SLOTS - 1).irq < arch::layout::IOAPIC_NUM_PINS);
    }

    #[test]
    fn cmdline_entry_uses_linux_syntax() {
        assert_eq!(cmdline_entry(slot(1)), "virtio_mmio.device=512@0xd0000200:6");
    }
}
