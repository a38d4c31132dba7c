//! The top-level options and the properties of the non-device ones: the
//! one place each is described (see `schema.rs`). `{NAME}` placeholders in
//! help texts are the limits `help.rs` fills in from their constants.

use super::device_props::{CHARDEV_KINDS, DEVICE_KINDS, DRIVE_PROPS, NETDEV_KINDS, OBJECT_KINDS};
use super::host::{CPU_PROPS, OVERCOMMIT_PROPS, RTC_PROPS};
use super::machine_props::{GLOBAL_PROPS, MACHINE_PROPS, MEM_PROPS, NUMA_PROPS, SMP_PROPS};
use super::schema::Value::{Bool, OneOf, Text};
use super::schema::{ignored, prop, KindDesc, Opt, OptDesc, PropDesc, Props, Section};

const fn opt(
    name: &'static str,
    aliases: &'static [&'static str],
    opt: Opt,
    arg: Option<&'static str>,
    section: Section,
    help: &'static str,
) -> OptDesc {
    OptDesc { name, aliases, opt, arg, help, note: None, props: Props::None, section }
}

const fn with_props(d: OptDesc, implied: Option<&'static str>, props: &'static [PropDesc]) -> OptDesc {
    OptDesc { props: Props::List { implied, props }, ..d }
}

const fn with_kinds(d: OptDesc, kinds: &'static [KindDesc]) -> OptDesc {
    OptDesc { props: Props::Kinds(kinds), ..d }
}

/// Accepted, no effect, `why`.
const fn no_effect(name: &'static str, arg: Option<&'static str>, why: &'static str) -> OptDesc {
    OptDesc { note: Some(why), ..opt(name, &[], Opt::Ignored, arg, Section::NoEffect, "") }
}

/// Refused; `instead` says what to use.
const fn refused(name: &'static str, instead: &'static str) -> OptDesc {
    OptDesc { note: Some(instead), ..opt(name, &[], Opt::Refused, None, Section::Refused, "") }
}

/// `-name` properties.
pub(super) const NAME_PROPS: &[PropDesc] = &[
    prop("guest", Text("NAME"), None, "The VM's name (query-name)."),
    prop("debug-threads", Bool, Some("off"), "Name the vCPU threads as QEMU does (CPU 0/KVM)."),
    ignored("process", Text("NAME"), "QEMU renames its own process; microvm keeps its name."),
];

/// `-sandbox` properties. QEMU's categories open holes in its denylist; microvm's filters
/// are allowlists that never hold those calls, so asking for them changes nothing.
pub(super) const SANDBOX_PROPS: &[PropDesc] = &[
    prop(
        "enable",
        Bool,
        Some("on"),
        "Each thread (main, vCPU, virtio) runs under its own seccomp allowlist from the end of set-up; a call \
         outside it ends microvm with SIGSYS and one line naming it. off: no filter (for debugging; warns).",
    ),
    ignored("obsolete", OneOf(&["allow", "deny"]), "microvm's allowlists never include obsolete calls."),
    ignored(
        "elevateprivileges",
        OneOf(&["allow", "deny", "children"]),
        "microvm's allowlists never include setuid and the like.",
    ),
    ignored("spawn", OneOf(&["allow", "deny"]), "microvm's allowlists never include fork or exec."),
    ignored(
        "resourcecontrol",
        OneOf(&["allow", "deny"]),
        "microvm's allowlists never include scheduler or rlimit calls.",
    ),
];

/// `-run-with` properties.
pub(super) const RUN_WITH_PROPS: &[PropDesc] = &[
    prop(
        "chroot",
        Text("DIR"),
        None,
        "After set-up, enter a new mount namespace with DIR as its root (pivot_root; chroot where that \
         cannot work), with no capabilities, no_new_privs, a descriptor limit, no core dumps, every inherited \
         descriptor closed and an empty Landlock ruleset. Needs root.",
    ),
    prop(
        "user",
        Text("USER[:GROUP]"),
        None,
        "After set-up, run as USER (a name, or UID:GID) and its group (or GROUP), with no capabilities. Needs root.",
    ),
    ignored("async-teardown", Bool, "microvm's memory goes with the process; there is no teardown process."),
];

/// `-mon` properties.
pub(super) const MON_PROPS: &[PropDesc] = &[
    prop("chardev", Text("ID"), None, "The -chardev (stdio or socket) the monitor talks on; no device may use it."),
    prop(
        "mode",
        OneOf(&["readline", "control"]),
        Some("readline"),
        "readline: the human monitor (help, info status|cpus|mtree|version|chardev|block|qtree, stop, cont, \
         quit, system_reset); control: QMP.",
    ),
    prop("pretty", Bool, Some("off"), "Indented JSON replies."),
];

/// `-qmp unix:` properties.
pub(super) const QMP_UNIX_PROPS: &[PropDesc] = &[
    prop("path", Text("PATH"), None, "The socket (the first element, unix:PATH, is the path)."),
    prop("server", Bool, Some("off"), "Listen on the socket instead of connecting to it."),
    prop("wait", Bool, Some("on"), "A server waits for its first client before the VM starts (server=on only)."),
];

/// `-qmp tcp:HOST:PORT` properties.
pub(super) const QMP_TCP_PROPS: &[PropDesc] = &[
    prop("server", Bool, Some("off"), "Listen on HOST:PORT (empty HOST: every address) instead of connecting."),
    prop("wait", Bool, Some("on"), "A server waits for its first client before the VM starts (server=on only)."),
];

/// The `-qmp` forms (QEMU's legacy chardev syntax), for `-help`; the parser
/// (`control.rs`) uses the property tables directly.
const QMP_KINDS: &[KindDesc] = &[
    KindDesc { name: "unix:PATH", help: "A Unix socket.", props: QMP_UNIX_PROPS },
    KindDesc { name: "tcp:[HOST]:PORT", help: "A TCP socket.", props: QMP_TCP_PROPS },
    KindDesc { name: "stdio", help: "stdin/stdout (which then no other option may use).", props: &[] },
    KindDesc { name: "chardev:ID", help: "The -chardev with that id (as -mon chardev=ID,mode=control).", props: &[] },
];

/// `-msg` properties.
const MSG_PROPS: &[PropDesc] = &[
    ignored("timestamp", Bool, "microvm's messages are single lines without timestamps."),
    ignored("guest-name", Bool, "microvm's messages are single lines without the guest name."),
];

/// `-compat` properties.
const COMPAT_PROPS: &[PropDesc] = &[
    ignored("deprecated-input", OneOf(&["accept", "reject", "crash"]), "microvm's QMP has no deprecated commands."),
    ignored("deprecated-output", OneOf(&["accept", "hide"]), "microvm's QMP has no deprecated output."),
    ignored("unstable-input", OneOf(&["accept", "reject", "crash"]), "microvm's QMP has no unstable commands."),
    ignored("unstable-output", OneOf(&["accept", "hide"]), "microvm's QMP has no unstable output."),
];

/// What the refused disk options' users want instead.
const USE_DRIVE: &str = "use -drive id=ID,file=PATH,format=raw,if=none -device virtio-blk-device,drive=ID";
const NO_FIRMWARE: &str = "there is no firmware; microvm boots -kernel directly";

/// Every top-level option: the parser looks options up here, `-help` lists them.
pub(super) const OPTIONS: &[OptDesc] = &[
    with_props(
        opt(
            "-machine",
            &["-M"],
            Opt::Machine,
            Some("[type=]microvm[,prop=value...]"),
            Section::Machine,
            "The machine; repeated -M options merge their properties. Booleans: on|off, yes|no, true|false.",
        ),
        Some("type"),
        MACHINE_PROPS,
    ),
    with_props(
        opt("-m", &[], Opt::Mem, Some("[size=]SIZE"), Section::Machine, "Guest RAM (see size=)."),
        Some("size"),
        MEM_PROPS,
    ),
    opt(
        "-mem-path",
        &[],
        Opt::MemPath,
        Some("PATH"),
        Section::Machine,
        "Guest RAM in a file in PATH (a directory such as a hugetlbfs mount) or in PATH itself; as \
         -object memory-backend-file,mem-path=PATH.",
    ),
    opt("-mem-prealloc", &[], Opt::MemPrealloc, None, Section::Machine, "Allocate all guest RAM before it runs."),
    with_props(
        opt(
            "-numa",
            &[],
            Opt::Numa,
            Some("node,memdev=ID"),
            Section::Machine,
            "The one NUMA node, with its RAM in a memory backend (as -machine memory-backend=ID).",
        ),
        Some("type"),
        NUMA_PROPS,
    ),
    with_props(
        opt(
            "-smp",
            &[],
            Opt::Smp,
            Some("[cpus=]N[,maxcpus=N][,sockets=S][,dies=D][,clusters=C][,cores=C][,threads=T]"),
            Section::Machine,
            "vCPUs. Without cpus=, it is maxcpus, else the product of the topology keys (QEMU's rule).",
        ),
        Some("cpus"),
        SMP_PROPS,
    ),
    with_props(
        opt(
            "-cpu",
            &[],
            Opt::Cpu,
            Some("host|max|MODEL[,+FLAG|-FLAG|FLAG=on|off][,enforce][,pmu=on|off][,migratable=on|off]"),
            Section::Machine,
            "The guest's CPU: host (the default) is the host CPU as KVM exposes it; MODEL is one of QEMU's named \
             models (qemu64, kvm64, Haswell, Skylake-Client, Skylake-Server, Cascadelake-Server, Icelake-Server, \
             EPYC, EPYC-Rome, EPYC-Milan, with QEMU's -vN versions and -noTSX/-IBRS aliases; -cpu help lists \
             them). +FLAG/-FLAG turn QEMU's feature flags on or off. A feature the host lacks is left off with \
             QEMU's warning (host doesn't support requested feature: ...), an error with enforce. Unlike QEMU, \
             cache and topology leaves stay KVM's and microvm's, and nested VMX capabilities are not modelled. \
             Other properties are accepted and named in one warning.",
        ),
        Some("model"),
        CPU_PROPS,
    ),
    opt(
        "-accel",
        &[],
        Opt::Accel,
        Some("kvm"),
        Section::Machine,
        "Accelerators are tried in the order given (repeat -accel, or -M accel=kvm:tcg) and the first usable \
         one wins, as in QEMU. Only kvm is usable: a list without it is an error (tcg never is).",
    ),
    OptDesc { note: Some("KVM is always used."), ..opt("-enable-kvm", &[], Opt::Ignored, None, Section::NoEffect, "") },
    opt(
        "-kernel",
        &[],
        Opt::Kernel,
        Some("PATH"),
        Section::Boot,
        "Required. ELF vmlinux with a PVH note, or a bzImage.",
    ),
    opt("-append", &[], Opt::Append, Some("STRING"), Section::Boot, "Kernel command line."),
    opt(
        "-bios",
        &[],
        Opt::Firmware,
        Some("FILE"),
        Section::Boot,
        "Accepted with -kernel, which is loaded directly: no firmware runs (one warning says so). Without \
         -kernel, an error.",
    ),
    opt("-L", &[], Opt::Firmware, Some("DIR"), Section::Boot, "The firmware directory: as -bios."),
    opt("-initrd", &[], Opt::Initrd, Some("PATH"), Section::Boot, "Initial ramdisk."),
    opt(
        "-serial",
        &[],
        Opt::Serial,
        Some("stdio|null|none|pty|file:PATH|unix:PATH[,server,nowait]|tcp:[HOST]:PORT[,server,nowait]|chardev:ID"),
        Section::Serial,
        "Connect the 16550A (COM1) to a chardev; any -serial implies legacy mode unless isa-serial=off, which \
         contradicts a connected one. As in QEMU, none adds no port (so the next -serial is COM1) and a \
         second connected -serial is an error (there is no COM2). Without -serial, a legacy-mode port goes to \
         stdio, or to nothing with -nodefaults (QEMU drops its default serial) or when -chardev stdio or -qmp \
         stdio owns stdin. Every backend goes through the chardev layer (stdio in raw mode).",
    ),
    opt("-nodefaults", &[], Opt::Nodefaults, None, Section::Serial, "No default serial port (see -serial)."),
    opt(
        "-display",
        &[],
        Opt::Display,
        Some("none"),
        Section::Serial,
        "Accepted: microvm has no display device. Other displays (vnc=..., gtk, sdl, curses) are errors, as is \
         -vnc: QEMU would show a framebuffer the guest does not have here.",
    ),
    OptDesc {
        note: Some("there is no graphics; the serial default is already stdio."),
        ..opt("-nographic", &[], Opt::Ignored, None, Section::NoEffect, "")
    },
    opt("-vga", &[], Opt::Vga, Some("none"), Section::NoEffect, "Accepted, no effect: there is no display adapter."),
    opt(
        "-parallel",
        &[],
        Opt::Parallel,
        Some("none"),
        Section::NoEffect,
        "Accepted, no effect: there is no parallel port.",
    ),
    opt("-net", &[], Opt::Net, Some("none"), Section::NoEffect, "Accepted, no effect: there is no default NIC."),
    with_kinds(
        opt(
            "-device",
            &[],
            Opt::Device,
            Some("DRIVER[,prop=value...]"),
            Section::Devices,
            "A virtio-mmio device, or the i8042. Devices find their backends by id, defined before or after them; each backend \
             serves one device (rng objects may be shared); a backend no device uses is checked and ignored. \
             QEMU's PCI devices (any *-pci*, and bus-less names such as virtio-net) are refused in one line: \
             microvm has no PCI bus yet; the line names the virtio-mmio device to use where there is one \
             (virtio-blk-pci: virtio-blk-device). Short-form \
             booleans work here and in -drive, -netdev, -chardev, -object: readonly = readonly=on, \
             nowait = wait=off.",
        ),
        DEVICE_KINDS,
    ),
    with_props(
        opt(
            "-drive",
            &[],
            Opt::Drive,
            Some("id=ID,file=PATH[,format=raw][,if=none][,readonly=on|off][,cache=MODE]"),
            Section::Devices,
            "A raw disk image for virtio-blk-device; a drive without if=none must be used by a device.",
        ),
        None,
        DRIVE_PROPS,
    ),
    with_kinds(
        opt("-netdev", &[], Opt::Netdev, Some("TYPE,id=ID[,prop=value...]"), Section::Devices, "A network backend."),
        NETDEV_KINDS,
    ),
    with_kinds(
        opt(
            "-chardev",
            &[],
            Opt::Chardev,
            Some("BACKEND,id=ID[,prop=value...]"),
            Section::Devices,
            "A character backend for -serial chardev:ID, virtconsole, virtserialport or -mon; with mux=on \
             several of them share it.",
        ),
        CHARDEV_KINDS,
    ),
    with_kinds(
        opt("-object", &[], Opt::Object, Some("TYPE,id=ID[,prop=value...]"), Section::Devices, "A backend object."),
        OBJECT_KINDS,
    ),
    with_props(
        opt(
            "-nic",
            &[],
            Opt::Nic,
            Some("TYPE[,prop=value...][,model=virtio-net-device][,mac=MAC] | none"),
            Section::Devices,
            "A -netdev TYPE (user, tap, stream, dgram; its properties, see -netdev help) and the \
             virtio-net-device that uses it, in one option, as QEMU's -nic. id= names the netdev (default \
             __org.qemu.nicN). none: no NIC.",
        ),
        None,
        super::devices::nic::NIC_PROPS,
    ),
    with_kinds(
        opt(
            "-qmp",
            &[],
            Opt::Qmp,
            Some("unix:PATH[,...] | tcp:[HOST]:PORT[,...] | stdio | chardev:ID"),
            Section::Management,
            "A QMP monitor (may be given several times). As in QEMU, a socket connects unless server=on, and a \
         server waits for its first client unless wait=off. unix:path=PATH works too. Other backends are errors.",
        ),
        QMP_KINDS,
    ),
    opt(
        "-monitor",
        &[],
        Opt::Monitor,
        Some("stdio|unix:PATH[,...]|tcp:[HOST]:PORT[,...]|chardev:ID|none"),
        Section::Management,
        "A human monitor (readline, QEMU's (qemu) prompt): on stdio, a socket, or a -chardev (a mux=on one is \
         shared with the guest's consoles: C-a c switches). -serial mon:stdio puts one on stdio with the serial \
         port.",
    ),
    opt(
        "-echr",
        &[],
        Opt::Echr,
        Some("N"),
        Section::Management,
        "The escape key of mux chardevs, as a character code (decimal or 0x hex): default 1, C-a. C-a h lists \
         the keys: C-a c switches front end, C-a x quits, C-a C-a sends C-a.",
    ),
    opt("-qmp-pretty", &[], Opt::QmpPretty, Some("SPEC"), Section::Management, "As -qmp, with indented JSON replies."),
    with_props(
        opt(
            "-mon",
            &[],
            Opt::Mon,
            Some("[chardev=]ID[,mode=readline|control][,pretty=on|off]"),
            Section::Management,
            "A monitor on a -chardev: human (readline, the default) or QMP (mode=control).",
        ),
        Some("chardev"),
        MON_PROPS,
    ),
    opt("-S", &[], Opt::StartPaused, None, Section::Management, "Set up, then wait with the vCPUs stopped until cont."),
    opt(
        "-incoming",
        &[],
        Opt::Incoming,
        Some("file:PATH[,offset=N][,clock=continue|realtime] | defer"),
        Section::Management,
        "Restore the snapshot a QMP migrate to file:PATH wrote, instead of booting; the command line must \
         describe the same machine. The VM runs at once (waits paused with -S). Only file: URIs: there is no \
         live migration. defer: build and wait (inmigrate) for QMP migrate-incoming. clock=realtime (microvm's) moves the guest's clock forward by the time since the \
         snapshot (Firecracker's clock_realtime); the default continues from the saved instant, as QEMU.",
    ),
    with_props(
        opt(
            "-name",
            &[],
            Opt::Name,
            Some("[guest=]NAME[,debug-threads=on|off]"),
            Section::Management,
            "The VM's name.",
        ),
        Some("guest"),
        NAME_PROPS,
    ),
    opt(
        "-uuid",
        &[],
        Opt::Uuid,
        Some("UUID"),
        Section::Management,
        "The VM's UUID (query-uuid): 8-4-4-4-12 hex digits.",
    ),
    opt(
        "-daemonize",
        &[],
        Opt::Daemonize,
        None,
        Section::Management,
        "Detach from the terminal once the VM is set up.",
    ),
    with_props(
        opt(
            "-sandbox",
            &[],
            Opt::Sandbox,
            Some("on|off[,obsolete=...][,elevateprivileges=...][,spawn=...][,resourcecontrol=...]"),
            Section::Management,
            "Per-thread seccomp filters: on by default.",
        ),
        Some("enable"),
        SANDBOX_PROPS,
    ),
    with_props(
        opt(
            "-run-with",
            &[],
            Opt::RunWith,
            Some("[chroot=DIR][,user=USER[:GROUP]]"),
            Section::Management,
            "The jail: see its properties.",
        ),
        None,
        RUN_WITH_PROPS,
    ),
    opt("-chroot", &[], Opt::Chroot, Some("DIR"), Section::Management, "Old spelling of -run-with chroot=DIR."),
    opt("-runas", &[], Opt::Runas, Some("USER[:GROUP]"), Section::Management, "Old spelling of -run-with user=USER."),
    opt("-pidfile", &[], Opt::Pidfile, Some("PATH"), Section::Management, "Write the process id to PATH."),
    opt(
        "-report-start-time",
        &["--report-start-time"],
        Opt::ReportStartTime,
        None,
        Section::Other,
        "Print the time from process start to the first KVM_RUN on stderr (also with \
         MICROVM_REPORT_START_TIME=1).",
    ),
    opt(
        "-trace-boot",
        &[],
        Opt::TraceBoot,
        None,
        Section::Other,
        "Boot-time breakdown on stderr when the VM ends: VMM init end (first KVM_RUN), linux_start_kernel and \
         linux_start_user (the guest writes 6 and 7 to port 0xf4, which exists only with this option), guest \
         exit; ms since process start.",
    ),
    opt("-trace-boot-json", &[], Opt::TraceBootJson, Some("FILE"), Section::Other, "As -trace-boot, and JSON in FILE."),
    opt(
        "-help",
        &["-h"],
        Opt::Help,
        None,
        Section::Other,
        "Print this help and exit; -OPTION help lists its properties.",
    ),
    opt("-version", &[], Opt::Version, None, Section::Other, "Print the version and exit."),
    opt(
        "-D",
        &[],
        Opt::LogFile,
        Some("FILE"),
        Section::Other,
        "Write microvm's log (warnings, -d output) to FILE instead of stderr; the one-line error that ends \
         microvm still goes to stderr.",
    ),
    opt(
        "-d",
        &[],
        Opt::LogItems,
        Some("ITEM[,ITEM...]"),
        Section::Other,
        "guest_errors: log guest accesses to ports and addresses no device claims (at most 10 lines a second). \
         QEMU's other items ({LOG_ITEMS}) are accepted and named in one warning.",
    ),
    with_props(
        opt(
            "-rtc",
            &[],
            Opt::Rtc,
            Some("[base=utc|localtime][,clock=host][,driftfix=slew]"),
            Section::Machine,
            "The CMOS clock's time base.",
        ),
        None,
        RTC_PROPS,
    ),
    with_props(
        opt(
            "-overcommit",
            &[],
            Opt::Overcommit,
            Some("[mem-lock=on|off][,cpu-pm=off]"),
            Section::Machine,
            "Host memory and CPU use.",
        ),
        None,
        OVERCOMMIT_PROPS,
    ),
    opt("-no-acpi", &[], Opt::NoAcpi, None, Section::Machine, "Same as -M microvm,acpi=off."),
    opt(
        "-no-shutdown",
        &[],
        Opt::NoShutdown,
        None,
        Section::Management,
        "When the guest powers off, stop its vCPUs and stay (QMP status shutdown, events SHUTDOWN then STOP) \
         instead of exiting, as QEMU does; quit or a signal ends microvm.",
    ),
    no_effect("-no-user-config", None, "there are no config files."),
    no_effect("-no-reboot", None, "a guest reset always ends microvm."),
    no_effect("-no-hpet", None, "microvm has no HPET."),
    no_effect(
        "-id",
        Some("N"),
        "Proxmox's QEMU build takes the VM's number (vmid) for its own tools; microvm has no use for it.",
    ),
    OptDesc {
        props: Props::List { implied: None, props: MSG_PROPS },
        ..no_effect("-msg", Some("timestamp=on|off"), "see its properties.")
    },
    OptDesc {
        props: Props::List { implied: None, props: COMPAT_PROPS },
        ..no_effect("-compat", Some("[deprecated-input=...][,...]"), "see its properties.")
    },
    with_props(
        opt(
            "-global",
            &[],
            Opt::Global,
            Some("DRIVER.PROP=VALUE"),
            Section::Machine,
            "A default property of a built-in device; only the ones below (others are errors that name them).",
        ),
        None,
        GLOBAL_PROPS,
    ),
    with_kinds(
        opt(
            "-fsdev",
            &[],
            Opt::Fsdev,
            Some("local,id=ID,path=DIR,security_model=none|passthrough|mapped-xattr[,readonly=on]"),
            Section::Devices,
            "A host directory for -device virtio-9p-device,fsdev=ID.",
        ),
        super::ninep::FSDEV_KINDS,
    ),
    with_kinds(
        opt(
            "-virtfs",
            &[],
            Opt::Virtfs,
            Some("local,path=DIR,mount_tag=TAG,security_model=none|passthrough|mapped-xattr[,readonly=on][,id=ID]"),
            Section::Devices,
            "A 9p share: -fsdev local and -device virtio-9p-device in one option.",
        ),
        super::ninep::VIRTFS_KINDS,
    ),
    refused("-hda", USE_DRIVE),
    refused("-hdb", USE_DRIVE),
    refused("-cdrom", "microvm has no CD-ROM; use a raw image with -drive and virtio-blk-device"),
    refused("-boot", NO_FIRMWARE),
    refused("-vnc", "microvm has no display device, so a VNC server would have nothing to show; use -display none"),
    refused("-usb", "microvm has no USB"),
    refused("-snapshot", "use a copy of the image"),
    refused("-loadvm", "microvm has no internal (qcow2) snapshots: save with QMP migrate file:PATH, restore with -incoming file:PATH"),
];
