//! The `-device`s that are not virtio slots: ISA ports and ACPI pieces the machine has at
//! fixed places. Only their descriptions are here; the front end turns each into its
//! `VmConfig` field (`i8042`, `debug_exit`, `vmgenid`, the serial port).

use super::props::{prop, Value, DEVICE_ID};
use super::KindDesc;

pub(super) const ISA_SERIAL: KindDesc = KindDesc {
    name: "isa-serial",
    help: "The 16550A (COM1, 0x3f8, IRQ 4; not a virtio device): turns legacy mode on. Without chardev= it is \
           connected to nothing; with -serial as well (other than none), an error: there is one port.",
    props: &[
        prop("chardev", Value::Text("ID"), None, "The -chardev it talks on."),
        prop("index", Value::OneOf(&["0"]), Some("0"), "Only 0 (COM1)."),
        prop("iobase", Value::OneOf(&["0x3f8"]), Some("0x3f8"), "Only COM1's."),
        prop("irq", Value::OneOf(&["4"]), Some("4"), "Only COM1's."),
        DEVICE_ID,
    ],
};

pub(super) const DEBUG_EXIT: KindDesc = KindDesc {
    name: "isa-debug-exit",
    help: "QEMU's test-exit port (not a virtio device): a guest write of V ends microvm with status \
           (V << 1) | 1. The port exists only when asked for.",
    props: &[
        prop("iobase", Value::Text("PORT"), Some("0x501"), "The I/O port (decimal or 0x hex)."),
        prop("iosize", Value::Text("N"), Some("2"), "How many ports from iobase, 1..8."),
        DEVICE_ID,
    ],
};

pub(super) const VMGENID: KindDesc = KindDesc {
    name: "vmgenid",
    help: "The VM Generation ID (needs -M microvm,acpi=on): 16 bytes the guest's vmgenid driver watches; \
           every restore (-incoming) writes a new one and notifies the guest, which reseeds its RNG. \
           query-vm-generation-id reports it. Not a virtio slot; at most one.",
    props: &[
        prop(
            "guid",
            Value::Text("auto|UUID"),
            Some("auto"),
            "auto: random at boot, new at every restore; a UUID: always this one.",
        ),
        DEVICE_ID,
    ],
};

pub(super) const I8042: KindDesc = KindDesc {
    name: "i8042",
    help: "The PS/2 keyboard controller (ports 0x60 and 0x64, IRQ 1) with a keyboard: send-key and \
           input-send-event type on it, and system_powerdown sends Ctrl-Alt-Del to it when acpi=off. Not a \
           virtio slot; at most one. Without it only the controller's reset command (port 0x64) exists.",
    props: &[DEVICE_ID],
};
