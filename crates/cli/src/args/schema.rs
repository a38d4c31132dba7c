//! The shape of the option descriptions: each option and each property is
//! described once (name, QEMU aliases, value, default, what it does or why
//! it is accepted with no effect), in `options.rs` and `device_props.rs`.
//! Those tables drive the parser's option lookup, the property lookup and
//! unknown-key errors (`keyval.rs`), `-help` and `-OPTION help` (`help.rs`).

/// Every top-level option microvm knows; what the parser does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opt {
    Machine,
    Mem,
    MemPath,
    MemPrealloc,
    Numa,
    Smp,
    Kernel,
    Append,
    Initrd,
    Serial,
    Nodefaults,
    Accel,
    Cpu,
    /// `-bios`, `-L`: firmware, which microvm does not run.
    Firmware,
    Rtc,
    Overcommit,
    /// `-D FILE`.
    LogFile,
    /// `-d ITEMS`.
    LogItems,
    Display,
    Vga,
    Parallel,
    Net,
    Name,
    Uuid,
    StartPaused,
    Incoming,
    Daemonize,
    Pidfile,
    Sandbox,
    RunWith,
    Chroot,
    Runas,
    Qmp,
    QmpPretty,
    Mon,
    /// `-fsdev`, `-virtfs`: 9p shares.
    Fsdev,
    Virtfs,
    /// `-monitor`: a human monitor.
    Monitor,
    /// `-echr N`: the mux escape key.
    Echr,
    Global,
    ReportStartTime,
    TraceBoot,
    TraceBootJson,
    Help,
    Version,
    Device,
    Drive,
    Netdev,
    Chardev,
    Object,
    Nic,
    NoAcpi,
    NoShutdown,
    /// Accepted, no effect (its description says why); a value, if it takes
    /// one, is checked against its properties.
    Ignored,
    /// A QEMU option microvm refuses (its description says what to use).
    Refused,
}

/// Where `-help` lists an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Machine,
    Boot,
    Serial,
    Devices,
    Management,
    Other,
    NoEffect,
    Refused,
}

impl Section {
    pub(super) const ALL: [Section; 8] = [
        Section::Machine,
        Section::Boot,
        Section::Serial,
        Section::Devices,
        Section::Management,
        Section::Other,
        Section::NoEffect,
        Section::Refused,
    ];

    pub(super) fn title(self) -> &'static str {
        match self {
            Section::Machine => "Machine:",
            Section::Boot => "Boot (there is no firmware: microvm loads the kernel itself):",
            Section::Serial => "Serial port (legacy mode only):",
            Section::Devices => "Devices (virtio-mmio, one slot per -device, in command-line order):",
            Section::Management => "Management:",
            Section::Other => "Other:",
            Section::NoEffect => "Accepted for QEMU compatibility, no effect:",
            Section::Refused => "Refused (QEMU options microvm does not have):",
        }
    }
}

/// One top-level option.
pub(super) struct OptDesc {
    /// The canonical spelling, single dash.
    pub(super) name: &'static str,
    /// Other spellings QEMU accepts (`-M` for `-machine`).
    pub(super) aliases: &'static [&'static str],
    pub(super) opt: Opt,
    /// How the value is written in `-help`; `None`: no value.
    pub(super) arg: Option<&'static str>,
    /// What it does. `{NAME}` placeholders are filled in by `help.rs`.
    pub(super) help: &'static str,
    /// `Some(why)`: accepted with no effect ([`Opt::Ignored`]), or, for
    /// [`Opt::Refused`], what to use instead.
    pub(super) note: Option<&'static str>,
    pub(super) props: Props,
    pub(super) section: Section,
}

impl OptDesc {
    /// All spellings, canonical first.
    pub(super) fn spellings(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    pub(super) fn takes_value(&self) -> bool {
        self.arg.is_some()
    }
}

/// The properties in an option's value.
pub(super) enum Props {
    /// The value is not a property list.
    None,
    /// `[implied=]value,key=value,...`
    List { implied: Option<&'static str>, props: &'static [PropDesc] },
    /// `KIND,key=value,...`: the properties depend on the kind named by the
    /// first element (whose key, `driver=`, `backend=`, ..., its handler knows).
    Kinds(&'static [KindDesc]),
}

/// The property descriptions are the device kinds' (`vmm::device_kinds`), so that each
/// `-device` kind's file holds its own; every option here uses the same shape.
pub(super) use vmm::device_kinds::props::{ignored, prop, KindDesc, PropDesc, Value, ID};
