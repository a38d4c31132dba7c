//! The properties of the machine-shaped options (`-M`, `-m`, `-numa`,
//! `-smp`, `-global`): the one place each is described (see `schema.rs`);
//! `machine.rs` decides what each does. Split from `options.rs`, which
//! holds the option table itself.

use super::schema::Value::{Bool, Flag, OneOf, Text};
use super::schema::{ignored, prop, PropDesc};

/// `-M`/`-machine` properties.
pub(super) const MACHINE_PROPS: &[PropDesc] = &[
    prop("type", Text("microvm"), Some("microvm"), "The only machine type (also the default without -M)."),
    prop(
        "legacy",
        Flag,
        Some("off"),
        "Legacy mode: add the ISA 16550A serial port (COM1, 0x3f8, IRQ 4). Same as isa-serial=on.",
    ),
    prop("isa-serial", Bool, Some("on only if -serial is given"), "Legacy mode on or off (QEMU's name)."),
    prop("pit", Bool, Some("on"), "In-kernel i8254 PIT."),
    prop(
        "auto-kernel-cmdline",
        Bool,
        Some("on, off with acpi=on"),
        "Append virtio_mmio.device= entries for the virtio devices to the kernel command line. With acpi=on the \
         DSDT describes the devices instead; auto-kernel-cmdline=on still appends them (for kernels without ACPI).",
    ),
    prop(
        "rtc",
        OneOf(&["on", "off", "auto"]),
        Some("off"),
        "CMOS real-time clock (MC146818) on ports 0x70-0x71, IRQ 8: the guest gets rtc0, and distribution \
         kernels skip a slow probe of absent hardware. auto = off, as in QEMU's microvm under KVM.",
    ),
    prop(
        "acpi",
        OneOf(&["on", "off", "auto"]),
        Some("auto"),
        "Hardware-reduced ACPI (docs/acpi.md): RSDP, XSDT, FADT, MADT and a DSDT listing the devices, a Generic \
         Event Device with the power button (system_powerdown) and the sleep registers (guest poweroff ends \
         microvm). auto = off, so the default machine and its address map do not change. A kernel without ACPI \
         finds no virtio device with acpi=on unless auto-kernel-cmdline=on.",
    ),
    prop("accel", Text("kvm"), Some("kvm"), "Old spelling of -accel: A:B:... tried in order (see -accel)."),
    prop("kernel-irqchip", OneOf(&["on"]), Some("on"), "KVM's in-kernel irqchip; only on."),
    prop(
        "dump-mtree",
        Flag,
        Some("off"),
        "Build the VM, print every I/O port range and MMIO region the guest can reach (QEMU's `info mtree -f` \
         layout, with the owner: kvm or microvm) and exit without running it.",
    ),
    prop(
        "memory-backend",
        Text("ID"),
        None,
        "The -object memory-backend-* guest RAM lives in (default: anonymous memory).",
    ),
    prop(
        "dump-seccomp",
        Flag,
        Some("off"),
        "Print each thread the VM would run (main, vCPUs, virtio) with the system calls its seccomp filter \
         allows and their argument conditions, the host side of the attack surface, and exit without running it.",
    ),
    prop(
        "track-dirty-pages",
        Bool,
        Some("off"),
        "microvm's own (QEMU tracks dirty pages only during a live migration): log the pages the guest and the \
         VMM write from the start, so that a migrate with the x-diff-snapshot capability writes only those since \
         the last snapshot (docs/snapshot.md, Diff snapshots). Off: no cost.",
    ),
    ignored("pic", Bool, "KVM's in-kernel irqchip always has the PIC."),
    ignored("x-option-roms", Bool, "there is no firmware, so no option ROMs."),
    ignored("ioapic2", Bool, "there is one IOAPIC."),
    PropDesc { no_effect: Some("microvm has no USB; usb=on is an error."), ..prop("usb", Bool, Some("off"), "") },
    prop(
        "pcie",
        Bool,
        Some("off"),
        "QEMU's PCIe host bridge for microvm. microvm has no PCI bus yet: off is what it is; on is accepted \
         with a warning (no PCI device can be asked for, so the guest misses nothing).",
    ),
    prop(
        "mem-merge",
        Bool,
        Some("on"),
        "Offer guest RAM to the host's KSM (madvise MADV_MERGEABLE), which merges identical pages when \
         /sys/kernel/mm/ksm/run is 1, as QEMU does. No effect on shared memory backends (KSM skips them).",
    ),
];

/// `-m` keys.
pub(super) const MEM_PROPS: &[PropDesc] = &[
    prop(
        "size",
        Text("SIZE"),
        Some("{DEFAULT_MEM}"),
        "Guest RAM. A plain number is MiB; suffixes B, K, M, G, T (either case), e.g. 512M, 1.5G. \
         Range {MIN_MEM}..{MAX_MEM}; rounded up to whole 4 KiB pages.",
    ),
    prop("slots", Text("N"), None, "Refused: no memory hotplug."),
    prop("maxmem", Text("SIZE"), None, "Refused: no memory hotplug."),
];

/// `-numa` keys.
pub(super) const NUMA_PROPS: &[PropDesc] = &[
    prop("type", OneOf(&["node"]), None, "Only node, given once: microvm has one NUMA node."),
    prop("memdev", Text("ID"), None, "The -object memory-backend-* of the node's (all guest) RAM."),
    prop("nodeid", OneOf(&["0"]), Some("0"), "Only 0."),
    ignored("cpus", Text("LIST"), "every vCPU is on the one node."),
];

/// `-smp` keys.
pub(super) const SMP_PROPS: &[PropDesc] = &[
    prop("cpus", Text("N"), Some("1"), "Number of vCPUs, 1..{MAX_VCPUS}."),
    prop("maxcpus", Text("N"), None, "Must equal cpus (no CPU hotplug)."),
    prop("sockets", Text("N"), None, "Topology: checked for consistency with cpus, otherwise ignored."),
    prop("dies", Text("N"), None, "As sockets."),
    prop("clusters", Text("N"), None, "As sockets."),
    prop("cores", Text("N"), None, "As sockets."),
    prop("threads", Text("N"), None, "As sockets."),
];

/// `-global` settings microvm knows (`DRIVER.PROP=VALUE`).
pub(super) const GLOBAL_PROPS: &[PropDesc] = &[
    prop(
        "kvm-pit.lost_tick_policy",
        OneOf(&["delay", "discard"]),
        Some("delay"),
        "Ticks of the in-kernel PIT the guest missed (a descheduled vCPU): delay delivers them late (KVM's \
         re-injection), discard drops them (KVM_REINJECT_CONTROL). No effect with -M pit=off.",
    ),
    prop(
        "virtio-mmio.force-legacy",
        Bool,
        Some("off"),
        "microvm's virtio-mmio transport is modern only (version 2, virtio 1.x), so off is accepted with no \
         effect and on, QEMU's legacy version 1 transport, is an error.",
    ),
];
