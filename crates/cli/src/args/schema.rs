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

/// One kind of an option with kinds: a `-device` driver, a `-chardev`
/// backend, a `-netdev` type, an `-object` type.
pub(super) struct KindDesc {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) props: &'static [PropDesc],
}

/// One property of an option's value.
#[derive(Clone, Copy)]
pub(super) struct PropDesc {
    pub(super) name: &'static str,
    pub(super) aliases: &'static [&'static str],
    pub(super) value: Value,
    /// The default, as written in `-help`; `None`: no default (required, or
    /// absent means "not set").
    pub(super) default: Option<&'static str>,
    pub(super) help: &'static str,
    /// `Some(why)`: accepted with no effect; the parser checks the value
    /// and drops it.
    pub(super) no_effect: Option<&'static str>,
}

/// What a property's value is.
#[derive(Clone, Copy)]
pub(super) enum Value {
    /// on|off (and QEMU's other spellings).
    Bool,
    /// A boolean that may also be written bare (`legacy` = `legacy=on`) in
    /// the options that otherwise need `key=value`.
    Flag,
    /// Free text, shown as this placeholder (`PATH`, `ID`, `N`).
    Text(&'static str),
    /// One of these words. With an effect, the handler checks the value
    /// (it knows why a value is refused); with no effect, `keyval` does.
    OneOf(&'static [&'static str]),
}

/// A property with an effect, `help` saying what it does.
pub(super) const fn prop(
    name: &'static str,
    value: Value,
    default: Option<&'static str>,
    help: &'static str,
) -> PropDesc {
    PropDesc { name, aliases: &[], value, default, help, no_effect: None }
}

/// A property accepted with no effect, `why` saying why.
pub(super) const fn ignored(name: &'static str, value: Value, why: &'static str) -> PropDesc {
    PropDesc { name, aliases: &[], value, default: None, help: "", no_effect: Some(why) }
}

/// `id=ID`, which every backend and device has.
pub(super) const ID: PropDesc =
    prop("id", Value::Text("ID"), None, "A letter, then letters, digits, '-', '.', '_'; unique per option.");
