//! QEMU-compatible command line → [`Command`].
//!
//! The parser is pure: it touches no files and no KVM, so every decision
//! about the command line is made (and unit-tested) here, and the VMM only
//! sees a validated [`VmConfig`].
//!
//! QEMU conventions followed:
//! - options start with one dash; the two-dash spelling (`--m`) is accepted too;
//! - an option's value is always the next argument, even if it starts with `-`;
//! - options are processed in order: the first error, `-help` or `-version`
//!   met ends parsing (so `-h` after a bad option reports the bad option, as
//!   QEMU does);
//! - repeated options: the last one wins; repeated `-M` and `-m` merge their
//!   properties, later ones overriding earlier ones (QEMU's merged option lists);
//!   the device options (`-device`, `-drive`, `-netdev`, `-chardev`,
//!   `-object`) add one item each (see `args/devices.rs`);
//! - in `key=value,...` lists, `,,` stands for a literal comma, and the first
//!   element may omit its key (`-M microvm` = `-M type=microvm`,
//!   `-smp 2` = `-smp cpus=2`, `-m 512M` = `-m size=512M`).
//!
//! What each accepted option and machine property does is documented in the
//! `--help` text (`help.rs`) and, for the reasoning, next to its handling below.

use std::path::PathBuf;

use vmm::arch_layout::{MAX_MEM_SIZE, MAX_VCPUS, MIN_MEM_SIZE};
use vmm::boot_trace::BootTraceConfig;
use vmm::config::{KernelConfig, MachineConfig, SerialConfig, VmConfig};

mod control;
mod devices;
#[path = "help.rs"]
mod help;

pub use help::help_text;

/// Guest RAM when `-m` is not given (QEMU's default).
pub const DEFAULT_MEM_SIZE: u64 = 128 << 20;

/// Guest RAM is rounded up to a multiple of this (QEMU rounds to 8 KiB; the
/// VMM needs whole pages).
const MEM_ALIGN: u64 = 4 << 10;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Build and run a VM.
    Run(Launch),
    /// Build the VM, print the regions the guest could reach (`-M
    /// microvm,dump-mtree`) and exit without running it.
    DumpMtree(VmConfig),
    /// Print [`help_text`] and exit successfully.
    Help,
    /// Print the version and exit successfully.
    Version,
}

/// A VM to run and how the process runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub vm: VmConfig,
    /// `-daemonize`: detach from the terminal once the VM is set up (QEMU's
    /// meaning: the parent exits when start-up succeeded).
    pub daemonize: bool,
    /// `-pidfile PATH`: write the process id there.
    pub pidfile: Option<PathBuf>,
}

/// A command line error. Each `Display` is one line naming the offending
/// option or value; user-supplied text is shown with control characters
/// escaped so it cannot break the line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown option '{}' (see -help)", .0.escape_debug())]
    UnknownOption(String),

    #[error("option '{0}' requires an argument")]
    MissingValue(&'static str),

    #[error("unexpected argument '{}': microvm takes no positional arguments (for a disk use -drive id=ID,file=PATH,format=raw,if=none -device virtio-blk-device,drive=ID)", .0.escape_debug())]
    UnexpectedArgument(String),

    #[error("no kernel given: -kernel PATH is required (microvm boots a Linux kernel directly, there is no firmware)")]
    MissingKernel,

    #[error("{option}: machine type '{}' is not supported; only 'microvm' is available", .machine.escape_debug())]
    UnsupportedMachine { option: &'static str, machine: String },

    #[error("{option}: unknown machine property '{}' (see -help for the supported ones)", .property.escape_debug())]
    UnknownMachineProperty { option: &'static str, property: String },

    #[error("{option}: invalid value '{}': {reason}", .value.escape_debug())]
    InvalidValue { option: &'static str, value: String, reason: String },

    #[error("-m: '{}' is too small; microvm needs at least {min_mib} MiB", .value.escape_debug())]
    MemoryTooSmall { value: String, min_mib: u64 },

    #[error("-m: '{}' is too large; the maximum is {max_mib} MiB", .value.escape_debug())]
    MemoryTooLarge { value: String, max_mib: u64 },

    #[error("-smp: vCPU count '{}' is out of range; microvm supports 1 to {max}", .value.escape_debug())]
    VcpusOutOfRange { value: String, max: u8 },

    #[error("-serial stdio conflicts with -M isa-serial=off: there is no serial port to connect it to")]
    SerialWithoutPort,
}

fn invalid(option: &'static str, value: &str, reason: impl Into<String>) -> ArgsError {
    ArgsError::InvalidValue { option, value: value.to_owned(), reason: reason.into() }
}

/// Every option microvm knows. Names are the canonical single-dash spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Machine,
    Mem,
    Smp,
    Kernel,
    Append,
    Initrd,
    Serial,
    Nographic,
    Nodefaults,
    NoUserConfig,
    EnableKvm,
    Accel,
    Cpu,
    NoReboot,
    Display,
    Name,
    Uuid,
    StartPaused,
    Daemonize,
    Pidfile,
    Qmp,
    QmpPretty,
    Mon,
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
}

/// (name, option, takes a value).
const OPTIONS: &[(&str, Opt, bool)] = &[
    ("-M", Opt::Machine, true),
    ("-machine", Opt::Machine, true),
    ("-m", Opt::Mem, true),
    ("-smp", Opt::Smp, true),
    ("-kernel", Opt::Kernel, true),
    ("-append", Opt::Append, true),
    ("-initrd", Opt::Initrd, true),
    ("-serial", Opt::Serial, true),
    ("-nographic", Opt::Nographic, false),
    ("-nodefaults", Opt::Nodefaults, false),
    ("-no-user-config", Opt::NoUserConfig, false),
    ("-enable-kvm", Opt::EnableKvm, false),
    ("-accel", Opt::Accel, true),
    ("-cpu", Opt::Cpu, true),
    ("-no-reboot", Opt::NoReboot, false),
    ("-display", Opt::Display, true),
    ("-name", Opt::Name, true),
    ("-uuid", Opt::Uuid, true),
    ("-S", Opt::StartPaused, false),
    ("-daemonize", Opt::Daemonize, false),
    ("-pidfile", Opt::Pidfile, true),
    ("-qmp", Opt::Qmp, true),
    ("-qmp-pretty", Opt::QmpPretty, true),
    ("-mon", Opt::Mon, true),
    ("-report-start-time", Opt::ReportStartTime, false),
    ("-trace-boot", Opt::TraceBoot, false),
    ("-trace-boot-json", Opt::TraceBootJson, true),
    ("-h", Opt::Help, false),
    ("-help", Opt::Help, false),
    ("-version", Opt::Version, false),
    ("-device", Opt::Device, true),
    ("-drive", Opt::Drive, true),
    ("-netdev", Opt::Netdev, true),
    ("-chardev", Opt::Chardev, true),
    ("-object", Opt::Object, true),
    ("-nic", Opt::Nic, true),
];

fn lookup(arg: &str) -> Option<(&'static str, Opt, bool)> {
    // QEMU accepts `--opt` for every `-opt`.
    let name = match arg.strip_prefix('-') {
        Some(rest) if rest.starts_with('-') && rest.len() > 1 => rest,
        _ => arg,
    };
    OPTIONS.iter().find(|(n, _, _)| *n == name).copied()
}

/// Accumulated state while walking the arguments.
#[derive(Default)]
struct Parsed {
    /// `legacy` / `isa-serial=` from `-M`; `None` when not given.
    isa_serial: Option<bool>,
    pit: Option<bool>,
    rtc: Option<bool>,
    auto_kernel_cmdline: Option<bool>,
    mem_size: Option<u64>,
    vcpus: Option<u8>,
    kernel: Option<String>,
    append: Option<String>,
    initrd: Option<String>,
    /// Some `-serial` was given (`stdio` or `none`).
    serial_given: bool,
    /// `-serial stdio` was given.
    serial_stdio: bool,
    nodefaults: bool,
    report_start_time: bool,
    trace_boot: bool,
    trace_boot_json: Option<String>,
    dump_mtree: bool,
    start_paused: bool,
    name: Option<String>,
    debug_threads: bool,
    uuid: Option<String>,
    daemonize: bool,
    pidfile: Option<String>,
    /// The device options, resolved in [`finish`].
    devices: devices::Devices,
}

/// Parses the command line, without argv[0].
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ArgsError> {
    let mut p = Parsed::default();
    let mut args = args.into_iter();

    while let Some(arg) = args.next() {
        if !arg.starts_with('-') {
            return Err(ArgsError::UnexpectedArgument(arg));
        }
        let Some((name, opt, takes_value)) = lookup(&arg) else {
            return Err(ArgsError::UnknownOption(arg));
        };
        let value = if takes_value { args.next().ok_or(ArgsError::MissingValue(name))? } else { String::new() };

        match opt {
            Opt::Help => return Ok(Command::Help),
            Opt::Version => return Ok(Command::Version),
            Opt::Machine => parse_machine(name, &value, &mut p)?,
            Opt::Mem => p.mem_size = Some(parse_mem(&value)?),
            Opt::Smp => p.vcpus = Some(parse_smp(&value)?),
            Opt::Kernel => p.kernel = Some(non_empty_path(name, value)?),
            Opt::Initrd => p.initrd = Some(non_empty_path(name, value)?),
            Opt::Append => p.append = Some(value),
            Opt::Serial => parse_serial(&value, &mut p)?,
            Opt::Nodefaults => p.nodefaults = true,
            Opt::Accel => parse_accel(&value)?,
            Opt::Cpu => parse_cpu(&value)?,
            Opt::Display => {
                if value != "none" {
                    return Err(invalid(name, &value, "only 'none' is supported (microvm has no display)"));
                }
            }
            Opt::ReportStartTime => p.report_start_time = true,
            Opt::TraceBoot => p.trace_boot = true,
            Opt::TraceBootJson => p.trace_boot_json = Some(non_empty_path("-trace-boot-json", value)?),
            // Accepted for QEMU compatibility, nothing to do:
            // -nographic: there is no graphics; the serial default is already stdio.
            // -no-user-config: there are no config files.
            // -enable-kvm: KVM is always used.
            // -no-reboot: a guest reset always ends the process.
            Opt::Nographic | Opt::NoUserConfig | Opt::EnableKvm | Opt::NoReboot => {}
            Opt::Name => {
                let name = control::parse_name(&value)?;
                p.name = name.guest.or(p.name);
                p.debug_threads = name.debug_threads.unwrap_or(p.debug_threads);
            }
            Opt::Uuid => p.uuid = Some(control::parse_uuid(&value)?),
            Opt::StartPaused => p.start_paused = true,
            Opt::Daemonize => p.daemonize = true,
            Opt::Pidfile => p.pidfile = Some(non_empty_path(name, value)?),
            Opt::Qmp => p.devices.monitor(control::parse_qmp(name, &value, false)?)?,
            Opt::QmpPretty => p.devices.monitor(control::parse_qmp(name, &value, true)?)?,
            Opt::Mon => p.devices.monitor(control::parse_mon(&value)?)?,
            Opt::Device => p.devices.device(&value)?,
            Opt::Drive => p.devices.drive(&value)?,
            Opt::Netdev => p.devices.netdev(&value)?,
            Opt::Chardev => p.devices.chardev(&value)?,
            Opt::Object => p.devices.object(&value)?,
            Opt::Nic => p.devices.nic(&value)?,
        }
    }

    let dump_mtree = p.dump_mtree;
    let daemonize = p.daemonize;
    let pidfile = p.pidfile.clone().map(PathBuf::from);
    let vm = finish(p)?;
    Ok(if dump_mtree { Command::DumpMtree(vm) } else { Command::Run(Launch { vm, daemonize, pidfile }) })
}

fn finish(p: Parsed) -> Result<VmConfig, ArgsError> {
    let kernel = p.kernel.ok_or(ArgsError::MissingKernel)?;

    // Legacy mode (the ISA 16550A exists) when asked for with `legacy` /
    // `isa-serial=on`, or implied by any -serial; `isa-serial=off` wins over
    // `-serial none` but contradicts `-serial stdio`.
    let legacy = p.isa_serial.unwrap_or(p.serial_given);
    let serial = if !legacy {
        if p.serial_stdio {
            return Err(ArgsError::SerialWithoutPort);
        }
        None
    } else if p.serial_stdio {
        Some(SerialConfig::Stdio)
    } else if p.serial_given || p.nodefaults || p.devices.stdio_taken() {
        // `-serial none`, or `-nodefaults` dropping QEMU's default serial0,
        // or a `-chardev stdio` or `-qmp stdio` owning stdin (the implicit serial yields to it;
        // with an explicit `-serial stdio` it is an error, in `Devices::finish`).
        Some(SerialConfig::Null)
    } else {
        Some(SerialConfig::Stdio)
    };

    let (devices, monitors) = p.devices.finish(p.serial_stdio)?;
    let defaults = MachineConfig::default();
    Ok(VmConfig {
        machine: MachineConfig {
            pit: p.pit.unwrap_or(defaults.pit),
            rtc: p.rtc.unwrap_or(defaults.rtc),
            auto_kernel_cmdline: p.auto_kernel_cmdline.unwrap_or(defaults.auto_kernel_cmdline),
        },
        mem_size: p.mem_size.unwrap_or(DEFAULT_MEM_SIZE),
        vcpu_count: p.vcpus.unwrap_or(1),
        kernel: KernelConfig {
            path: PathBuf::from(kernel),
            cmdline: p.append.unwrap_or_default(),
            initrd: p.initrd.map(PathBuf::from),
        },
        serial,
        report_start_time: p.report_start_time,
        devices,
        trace_boot: (p.trace_boot || p.trace_boot_json.is_some())
            .then(|| BootTraceConfig { json: p.trace_boot_json.map(PathBuf::from) }),
        start_paused: p.start_paused,
        name: p.name,
        debug_threads: p.debug_threads,
        uuid: p.uuid,
        monitors,
    })
}

fn non_empty_path(option: &'static str, value: String) -> Result<String, ArgsError> {
    if value.is_empty() {
        return Err(invalid(option, &value, "empty path"));
    }
    Ok(value)
}

/// Splits a QEMU option list at commas; `,,` is a literal comma.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Splits an option list into (key, value) pairs. The first element may omit
/// its key (`implied`); a later element without `=` gets `None` as value.
/// Empty elements (a trailing comma) are skipped, as QEMU does.
fn key_values(s: &str, implied: &'static str) -> Vec<(String, Option<String>)> {
    split_list(s)
        .into_iter()
        .enumerate()
        .filter(|(_, e)| !e.is_empty())
        .map(|(i, e)| match e.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None if i == 0 => (implied.to_owned(), Some(e)),
            None => (e, None),
        })
        .collect()
}

/// QEMU's boolean spellings.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

const BOOL_EXPECTED: &str = "expected on|off (or yes|no, true|false)";

/// `-M`/`-machine microvm[,prop=value...]`.
///
/// Per property:
/// - `type=microvm` (or a leading `microvm`): required to be microvm when given;
///   a command line without `-M` also gets microvm, the only machine.
/// - `legacy` (the proposal's spelling, bare or `=on|off`) and `isa-serial=on|off`
///   (QEMU's released name): the ISA 16550A serial port (legacy mode).
/// - `pit=on|off` → [`MachineConfig::pit`].
/// - `auto-kernel-cmdline=on|off` → [`MachineConfig::auto_kernel_cmdline`].
/// - `acpi=off|auto`: accepted (microvm never has ACPI, so `auto` means off);
///   `acpi=on` is an error.
/// - `rtc=on|off|auto` → [`MachineConfig::rtc`]; `auto` is off, as in QEMU's microvm
///   under KVM.
/// - `pic`, `x-option-roms`, `ioapic2` (booleans): accepted, no effect — KVM's
///   in-kernel irqchip always has the PIC, there are no option ROMs, and there
///   is one IOAPIC.
/// - `accel=kvm` (generic machine property, old spelling of `-accel kvm`) and
///   `kernel-irqchip=on`: accepted, no effect.
fn parse_machine(option: &'static str, value: &str, p: &mut Parsed) -> Result<(), ArgsError> {
    if value.is_empty() {
        return Err(invalid(option, value, "expected microvm[,property=value...]"));
    }
    for (key, val) in key_values(value, "type") {
        let elem = match &val {
            Some(v) => format!("{key}={v}"),
            None => key.clone(),
        };
        // Every property but `legacy` needs a value.
        let need = |val: &Option<String>| -> Result<String, ArgsError> {
            val.clone().ok_or_else(|| invalid(option, &elem, "property needs a value (property=value)"))
        };
        let need_bool = |val: &Option<String>| -> Result<bool, ArgsError> {
            parse_bool(&need(val)?).ok_or_else(|| invalid(option, &elem, BOOL_EXPECTED))
        };
        match key.as_str() {
            "type" => {
                let machine = need(&val)?;
                if machine != "microvm" {
                    return Err(ArgsError::UnsupportedMachine { option, machine });
                }
            }
            "legacy" => {
                let on = match &val {
                    None => true,
                    Some(v) => parse_bool(v).ok_or_else(|| invalid(option, &elem, BOOL_EXPECTED))?,
                };
                p.isa_serial = Some(on);
            }
            "isa-serial" => p.isa_serial = Some(need_bool(&val)?),
            "dump-mtree" => {
                p.dump_mtree = match &val {
                    None => true,
                    Some(v) => parse_bool(v).ok_or_else(|| invalid(option, &elem, BOOL_EXPECTED))?,
                };
            }
            "pit" => p.pit = Some(need_bool(&val)?),
            "auto-kernel-cmdline" => p.auto_kernel_cmdline = Some(need_bool(&val)?),
            "acpi" => match need(&val)?.as_str() {
                "auto" | "off" | "no" | "false" | "n" => {}
                "on" | "yes" | "true" | "y" => {
                    return Err(invalid(option, &elem, "microvm has no ACPI; use acpi=off"));
                }
                _ => return Err(invalid(option, &elem, "expected on|off|auto")),
            },
            "rtc" => {
                p.rtc = Some(match need(&val)?.as_str() {
                    "auto" => false,
                    v => parse_bool(v).ok_or_else(|| invalid(option, &elem, "expected on|off|auto"))?,
                });
            }
            "pic" | "x-option-roms" | "ioapic2" => {
                need_bool(&val)?;
            }
            "accel" => check_accel_list(option, &need(&val)?)?,
            "kernel-irqchip" => {
                let v = need(&val)?;
                if !matches!(v.as_str(), "on" | "yes" | "true" | "y") {
                    return Err(invalid(option, &elem, "only kernel-irqchip=on is supported"));
                }
            }
            _ => return Err(ArgsError::UnknownMachineProperty { option, property: key }),
        }
    }
    Ok(())
}

/// `accel=` list (`kvm`, or QEMU's fallback list such as `kvm:tcg`): fine as
/// long as KVM is in it, since microvm always uses KVM.
fn check_accel_list(option: &'static str, list: &str) -> Result<(), ArgsError> {
    if list.split(':').any(|a| a == "kvm") {
        Ok(())
    } else {
        Err(invalid(option, list, "only the kvm accelerator is supported"))
    }
}

/// `-accel kvm` (or `-accel accel=kvm`); no accelerator properties.
fn parse_accel(value: &str) -> Result<(), ArgsError> {
    for (key, val) in key_values(value, "accel") {
        match (key.as_str(), val) {
            ("accel", Some(v)) if v == "kvm" => {}
            ("accel", Some(v)) => return Err(invalid("-accel", &v, "only kvm is supported")),
            _ => return Err(invalid("-accel", value, "expected kvm (accelerator properties are not supported)")),
        }
    }
    if value.is_empty() {
        return Err(invalid("-accel", value, "expected kvm"));
    }
    Ok(())
}

/// `-cpu host` or `-cpu max`, optionally followed by QEMU feature flags
/// (`host,-arch-capabilities`), which are ignored: the guest always gets the
/// host CPUID as filtered by KVM.
fn parse_cpu(value: &str) -> Result<(), ArgsError> {
    let model = value.split(',').next().unwrap_or_default();
    if model == "host" || model == "max" {
        Ok(())
    } else {
        Err(invalid("-cpu", value, "only 'host' and 'max' are supported (the guest sees the host CPU)"))
    }
}

/// `-serial stdio|none`. See [`finish`] for how it combines with `-M`.
fn parse_serial(value: &str, p: &mut Parsed) -> Result<(), ArgsError> {
    match value {
        "stdio" => {
            if p.serial_stdio {
                // QEMU: "cannot use stdio by multiple character devices".
                return Err(invalid("-serial", value, "given more than once; microvm has one serial port"));
            }
            p.serial_stdio = true;
        }
        "none" => {}
        "mon:stdio" => {
            return Err(invalid("-serial", value, "there is no monitor; use -serial stdio"));
        }
        _ => {
            return Err(invalid("-serial", value, "not supported; use stdio or none"));
        }
    }
    p.serial_given = true;
    Ok(())
}

/// `-m [size=]SIZE[,...]`; returns bytes.
fn parse_mem(value: &str) -> Result<u64, ArgsError> {
    let mut size = None;
    for (key, val) in key_values(value, "size") {
        match (key.as_str(), val) {
            ("size", Some(v)) => size = Some(v),
            ("slots" | "maxmem", _) => {
                return Err(invalid("-m", value, format!("'{key}' is not supported (no memory hotplug)")));
            }
            _ => return Err(invalid("-m", value, "expected [size=]SIZE, e.g. 512M or 1G")),
        }
    }
    let Some(size) = size else {
        return Err(invalid("-m", value, "no size given; expected e.g. 512M or 1G"));
    };
    let bytes = parse_size(&size)
        .ok_or_else(|| invalid("-m", &size, "expected a size such as 512 (MiB), 512M, 1G; suffixes K, M, G, T"))?;
    if bytes == 0 {
        return Err(invalid("-m", &size, "guest RAM cannot be zero"));
    }
    if bytes < MIN_MEM_SIZE {
        return Err(ArgsError::MemoryTooSmall { value: size, min_mib: MIN_MEM_SIZE >> 20 });
    }
    // parse_size saturates, so anything that overflowed is too large here too.
    match bytes.checked_next_multiple_of(MEM_ALIGN) {
        Some(b) if b <= MAX_MEM_SIZE => Ok(b),
        _ => Err(ArgsError::MemoryTooLarge { value: size, max_mib: MAX_MEM_SIZE >> 20 }),
    }
}

/// A QEMU size: decimal digits with an optional fraction and an optional
/// one-letter suffix (B, K, M, G, T, P, E; either case). No suffix means MiB;
/// a fraction needs a suffix other than B (`1.5G`, not `1.5`).
/// Returns `None` on syntax errors; values above `u64::MAX` saturate to it
/// (the caller rejects them as too large).
fn parse_size(s: &str) -> Option<u64> {
    let (number, unit, suffixed) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'B' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                'P' => 50,
                'E' => 60,
                _ => return None,
            };
            (&s[..i], 1u128 << shift, true)
        }
        _ => (s, 1u128 << 20, false),
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut total: u128 = 0;
    for b in int.bytes() {
        total = total.saturating_mul(10).saturating_add(u128::from(b - b'0'));
    }
    total = total.saturating_mul(unit);
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) || !suffixed || unit == 1 {
            return None;
        }
        // Digits past the 18th are below a byte for any unit up to E (2^60 < 10^19).
        let digits = &frac[..frac.len().min(18)];
        let num: u128 = digits.parse().ok()?;
        let den = 10u128.pow(digits.len() as u32);
        total = total.saturating_add(num * unit / den);
    }
    Some(u64::try_from(total).unwrap_or(u64::MAX))
}

/// A plain decimal count (no sign, no suffix).
fn parse_count(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only, so the only failure is overflow.
    Some(s.parse().unwrap_or(u64::MAX))
}

/// `-smp [cpus=]N[,maxcpus=N][,sockets=S][,dies=D][,clusters=C][,cores=C][,threads=T]`.
///
/// Topology keys are validated the way QEMU does (their product must be able
/// to equal maxcpus, missing ones being computed) and then dropped: the guest
/// sees N vCPUs. `maxcpus` must equal N (no CPU hotplug). Without an explicit
/// N, it is maxcpus, else the product of the topology keys (QEMU's rule).
fn parse_smp(value: &str) -> Result<u8, ArgsError> {
    const TOPOLOGY: [&str; 5] = ["sockets", "dies", "clusters", "cores", "threads"];
    let mut cpus = None;
    let mut maxcpus = None;
    let mut topology: [Option<u64>; 5] = [None; 5];

    for (key, val) in key_values(value, "cpus") {
        let Some(val) = val else {
            return Err(invalid("-smp", value, format!("'{}' needs a value (key=N)", key.escape_debug())));
        };
        let topology_index = TOPOLOGY.iter().position(|t| *t == key);
        if topology_index.is_none() && key != "cpus" && key != "maxcpus" {
            return Err(invalid("-smp", value, format!("unknown key '{}'", key.escape_debug())));
        }
        let n = parse_count(&val).ok_or_else(|| invalid("-smp", &val, "expected a decimal number"))?;
        match topology_index {
            Some(_) if n == 0 => return Err(invalid("-smp", value, format!("{key} must be at least 1"))),
            Some(i) => topology[i] = Some(n),
            None if key == "cpus" => cpus = Some((n, val)),
            None => maxcpus = Some((n, val)),
        }
    }
    if cpus.is_none() && maxcpus.is_none() && topology.iter().all(Option::is_none) {
        return Err(invalid("-smp", value, "expected a vCPU count, e.g. 2"));
    }

    let given_product = topology.iter().flatten().fold(1u64, |acc, n| acc.saturating_mul(*n));
    let (n, n_text) = match (cpus, &maxcpus) {
        (Some(c), _) => c,
        (None, Some(m)) => m.clone(),
        (None, None) => (given_product, given_product.to_string()),
    };
    let Some(count) = u8::try_from(n).ok().filter(|c| (1..=MAX_VCPUS).contains(c)) else {
        return Err(ArgsError::VcpusOutOfRange { value: n_text, max: MAX_VCPUS });
    };
    if let Some((m, _)) = maxcpus {
        if m != n {
            return Err(invalid("-smp", value, "maxcpus must equal the vCPU count (no CPU hotplug)"));
        }
    }
    // QEMU computes a missing socket/core/thread count; dies and clusters default to 1.
    let all_given = [0, 3, 4].iter().all(|&i| topology[i].is_some());
    let consistent = if all_given { given_product == n } else { n % given_product == 0 };
    if topology.iter().any(Option::is_some) && !consistent {
        return Err(invalid("-smp", value, format!("the topology does not add up to {n} vCPUs")));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    /// Parses `extra` after a minimal valid command line.
    fn run(extra: &[&str]) -> Result<VmConfig, ArgsError> {
        let mut v = args(&["-kernel", "vmlinux"]);
        v.extend(args(extra));
        match parse(v)? {
            Command::Run(c) => Ok(c.vm),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn err(extra: &[&str]) -> ArgsError {
        run(extra).expect_err("expected an error")
    }

    fn err_full(full: &[&str]) -> ArgsError {
        parse(args(full)).expect_err("expected an error")
    }

    fn assert_invalid(e: ArgsError, want_option: &str, want_in_reason: &str) {
        match &e {
            ArgsError::InvalidValue { option, reason, .. } => {
                assert_eq!(*option, want_option, "{e}");
                assert!(reason.contains(want_in_reason), "{e}");
            }
            _ => panic!("expected InvalidValue, got {e:?}"),
        }
    }

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    // ---- whole command lines ----

    #[test]
    fn proposal_legacy_mode_without_devices() {
        let c = parse(args(&[
            "-M",
            "microvm,legacy",
            "-m",
            "512m",
            "-smp",
            "2",
            "-kernel",
            "vmlinux",
            "-append",
            "console=ttyS0 root=/dev/vda",
            "-nodefaults",
            "-no-user-config",
            "-serial",
            "stdio",
        ]))
        .unwrap();
        let want = VmConfig {
            machine: MachineConfig { pit: true, auto_kernel_cmdline: true, rtc: false },
            mem_size: 512 * MIB,
            vcpu_count: 2,
            kernel: KernelConfig {
                path: PathBuf::from("vmlinux"),
                cmdline: "console=ttyS0 root=/dev/vda".into(),
                initrd: None,
            },
            serial: Some(SerialConfig::Stdio),
            report_start_time: false,
            trace_boot: None,
            start_paused: false,
            name: None,
            debug_threads: false,
            uuid: None,
            monitors: Vec::new(),
            devices: Vec::new(),
        };
        assert_eq!(c, Command::Run(Launch { vm: want, daemonize: false, pidfile: None }));
    }

    #[test]
    fn proposal_normal_mode_without_devices() {
        let c = run(&[
            "-M",
            "microvm",
            "-m",
            "512m",
            "-smp",
            "2",
            "-append",
            "console=hvc0 root=/dev/vda",
            "-nodefaults",
            "-no-user-config",
        ])
        .unwrap();
        assert_eq!(c.serial, None);
        assert_eq!(c.mem_size, 512 * MIB);
        assert_eq!(c.vcpu_count, 2);
        assert_eq!(c.kernel.cmdline, "console=hvc0 root=/dev/vda");
    }

    #[test]
    fn qemu_72_spelling_of_legacy_mode() {
        let c = run(&[
            "-M", "microvm,isa-serial=on,pit=on,pic=off,rtc=off,acpi=off,x-option-roms=off,ioapic2=off,auto-kernel-cmdline=on",
            "-nodefaults", "-serial", "stdio", "-enable-kvm", "-cpu", "host,-arch-capabilities",
            "-nographic", "-no-reboot",
        ])
        .unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Stdio));
        assert_eq!(c.machine, MachineConfig { pit: true, auto_kernel_cmdline: true, rtc: false });
    }

    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.machine, MachineConfig::default());
        assert_eq!(c.mem_size, DEFAULT_MEM_SIZE);
        assert_eq!(c.vcpu_count, 1);
        assert_eq!(c.kernel.path, PathBuf::from("vmlinux"));
        assert_eq!(c.kernel.cmdline, "");
        assert_eq!(c.kernel.initrd, None);
        assert_eq!(c.serial, None);
        assert!(!c.report_start_time);
    }

    #[test]
    fn empty_command_line_needs_a_kernel() {
        assert_eq!(parse(Vec::new()), Err(ArgsError::MissingKernel));
        assert_eq!(err_full(&["-m", "1G", "-append", "x"]), ArgsError::MissingKernel);
    }

    // ---- option spelling and generic errors ----

    #[test]
    fn double_dash_spellings() {
        let c = parse(args(&[
            "--kernel",
            "k",
            "--m",
            "1G",
            "--smp",
            "4",
            "--machine",
            "microvm,legacy",
            "--append",
            "a",
            "--initrd",
            "i",
            "--nodefaults",
            "--report-start-time",
        ]))
        .unwrap();
        let Command::Run(Launch { vm: c, .. }) = c else { panic!() };
        assert_eq!(c.mem_size, GIB);
        assert_eq!(c.vcpu_count, 4);
        assert_eq!(c.serial, Some(SerialConfig::Null));
        assert!(c.report_start_time);
        assert_eq!(c.kernel.initrd, Some(PathBuf::from("i")));
    }

    #[test]
    fn help_and_version() {
        for h in ["-h", "-help", "--help", "--h"] {
            assert_eq!(parse(args(&[h])), Ok(Command::Help), "{h}");
        }
        for v in ["-version", "--version"] {
            assert_eq!(parse(args(&[v])), Ok(Command::Version), "{v}");
        }
        // Wins over a missing -kernel, and ends parsing like in QEMU.
        assert_eq!(parse(args(&["-m", "1G", "-help", "-bogus"])), Ok(Command::Help));
        // An error before it is reported first.
        assert_eq!(err_full(&["-bogus", "-help"]), ArgsError::UnknownOption("-bogus".into()));
        // As an option's value it is just a value.
        assert_eq!(run(&["-append", "-help"]).unwrap().kernel.cmdline, "-help");
    }

    #[test]
    fn unknown_options() {
        for o in ["-foo", "--foo", "-hda", "-", "--", "---m", "-M=microvm", "-m512"] {
            assert_eq!(err(&[o]), ArgsError::UnknownOption(o.into()), "{o}");
        }
        assert_eq!(err(&["-foo"]).to_string(), "unknown option '-foo' (see -help)");
    }

    #[test]
    fn positional_arguments() {
        for a in ["disk.img", "", "microvm", "m"] {
            assert_eq!(err(&[a]), ArgsError::UnexpectedArgument(a.into()), "{a:?}");
        }
    }

    #[test]
    fn missing_values() {
        for (o, name) in [
            ("-M", "-M"),
            ("-machine", "-machine"),
            ("-m", "-m"),
            ("--m", "-m"),
            ("-smp", "-smp"),
            ("-kernel", "-kernel"),
            ("-append", "-append"),
            ("-initrd", "-initrd"),
            ("-serial", "-serial"),
            ("-accel", "-accel"),
            ("-cpu", "-cpu"),
            ("-display", "-display"),
            ("-name", "-name"),
            ("-device", "-device"),
            ("--device", "-device"),
            ("-drive", "-drive"),
            ("-netdev", "-netdev"),
            ("-chardev", "-chardev"),
            ("-object", "-object"),
            ("-nic", "-nic"),
        ] {
            let e = err(&[o]);
            assert_eq!(e, ArgsError::MissingValue(name), "{o}");
            assert_eq!(e.to_string(), format!("option '{name}' requires an argument"));
        }
        // -kernel at the very end, before anything else is known.
        assert_eq!(err_full(&["-kernel"]), ArgsError::MissingValue("-kernel"));
    }

    // ---- -M ----

    #[test]
    fn machine_type() {
        for m in ["microvm", "type=microvm", "microvm,", "type=microvm,legacy", "accel=kvm", "pit=off"] {
            run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}"));
        }
        for m in ["pc", "q35", "help", "?", "Microvm", "type=pc", "microvm,,legacy"] {
            let e = err(&["-M", m]);
            assert!(matches!(e, ArgsError::UnsupportedMachine { option: "-M", .. }), "{m}: {e:?}");
        }
        assert_eq!(
            err(&["-machine", "pc"]).to_string(),
            "-machine: machine type 'pc' is not supported; only 'microvm' is available"
        );
        assert_invalid(err(&["-M", ""]), "-M", "microvm");
    }

    #[test]
    fn machine_legacy_and_isa_serial() {
        for m in ["microvm,legacy", "microvm,legacy=on", "microvm,isa-serial=on", "microvm,isa-serial=yes"] {
            assert_eq!(run(&["-M", m]).unwrap().serial, Some(SerialConfig::Stdio), "{m}");
            assert_eq!(run(&["-M", m, "-nodefaults"]).unwrap().serial, Some(SerialConfig::Null), "{m}");
        }
        for m in ["microvm", "microvm,legacy=off", "microvm,isa-serial=off", "microvm,isa-serial=false"] {
            assert_eq!(run(&["-M", m]).unwrap().serial, None, "{m}");
        }
        // Last one wins, within one -M and across several.
        assert_eq!(run(&["-M", "microvm,legacy,isa-serial=off"]).unwrap().serial, None);
        assert_eq!(run(&["-M", "microvm,legacy", "-M", "isa-serial=off"]).unwrap().serial, None);
        assert_eq!(
            run(&["-M", "microvm,isa-serial=off", "-M", "microvm,legacy"]).unwrap().serial,
            Some(SerialConfig::Stdio)
        );
        assert_invalid(err(&["-M", "microvm,isa-serial"]), "-M", "needs a value");
        assert_invalid(err(&["-M", "microvm,isa-serial=maybe"]), "-M", "on|off");
        assert_invalid(err(&["-M", "microvm,legacy=2"]), "-M", "on|off");
    }

    #[test]
    fn machine_pit_and_auto_kernel_cmdline() {
        let c = run(&["-M", "microvm,pit=off,auto-kernel-cmdline=off"]).unwrap();
        assert_eq!(c.machine, MachineConfig { pit: false, auto_kernel_cmdline: false, rtc: false });
        let c = run(&["-M", "microvm,pit=off", "-M", "microvm,pit=on"]).unwrap();
        assert!(c.machine.pit);
        for b in ["on", "yes", "true", "y"] {
            assert!(run(&["-M", &format!("microvm,pit={b}")]).unwrap().machine.pit);
        }
        for b in ["off", "no", "false", "n"] {
            assert!(!run(&["-M", &format!("microvm,auto-kernel-cmdline={b}")]).unwrap().machine.auto_kernel_cmdline);
        }
        assert_invalid(err(&["-M", "microvm,pit"]), "-M", "needs a value");
        assert_invalid(err(&["-M", "microvm,pit=ON"]), "-M", "on|off");
        assert_invalid(err(&["-M", "microvm,auto-kernel-cmdline=1"]), "-M", "on|off");
    }

    #[test]
    fn machine_acpi_rtc() {
        for m in ["microvm,acpi=off", "microvm,acpi=auto", "microvm,rtc=off", "microvm,rtc=auto", "microvm"] {
            assert!(!run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}")).machine.rtc, "{m}");
        }
        for m in ["microvm,rtc=on", "microvm,rtc=off,rtc=yes", "microvm,rtc=true"] {
            assert!(run(&["-M", m]).unwrap_or_else(|e| panic!("{m}: {e}")).machine.rtc, "{m}");
        }
        let e = err(&["-M", "microvm,acpi=on"]);
        assert_eq!(e.to_string(), "-M: invalid value 'acpi=on': microvm has no ACPI; use acpi=off");
        assert_invalid(err(&["-M", "microvm,acpi=sometimes"]), "-M", "on|off|auto");
        assert_invalid(err(&["-M", "microvm,rtc=bogus"]), "-M", "on|off|auto");
        assert_invalid(err(&["-M", "microvm,rtc"]), "-M", "needs a value");
        assert_invalid(err(&["-M", "microvm,acpi"]), "-M", "needs a value");
    }

    #[test]
    fn machine_accepted_without_effect() {
        let base = run(&[]).unwrap();
        for m in [
            "microvm,pic=on",
            "microvm,pic=off",
            "microvm,x-option-roms=on",
            "microvm,x-option-roms=off",
            "microvm,ioapic2=on",
            "microvm,ioapic2=off",
            "microvm,accel=kvm",
            "microvm,accel=kvm:tcg",
            "microvm,kernel-irqchip=on",
        ] {
            assert_eq!(run(&["-M", m]).unwrap(), base, "{m}");
        }
        assert_invalid(err(&["-M", "microvm,pic=maybe"]), "-M", "on|off");
        assert_invalid(err(&["-M", "microvm,accel=tcg"]), "-M", "kvm");
        assert_invalid(err(&["-M", "microvm,kernel-irqchip=split"]), "-M", "kernel-irqchip=on");
    }

    #[test]
    fn trace_boot_options() {
        assert_eq!(run(&[]).unwrap().trace_boot, None);
        assert_eq!(run(&["-trace-boot"]).unwrap().trace_boot, Some(BootTraceConfig { json: None }));
        let with_json = run(&["-trace-boot-json", "/tmp/t.json"]).unwrap().trace_boot;
        assert_eq!(with_json, Some(BootTraceConfig { json: Some("/tmp/t.json".into()) }));
        assert!(matches!(err(&["-trace-boot-json"]), ArgsError::MissingValue { .. }));
    }

    #[test]
    fn dump_mtree_builds_the_same_config_but_does_not_run() {
        let line = ["-kernel", "vmlinux", "-M", "microvm,legacy,dump-mtree"];
        let args = line.iter().map(|s| s.to_string());
        let Ok(Command::DumpMtree(dump)) = parse(args) else { panic!("not a dump") };
        assert_eq!(dump, run(&["-M", "microvm,legacy"]).unwrap());
        assert!(matches!(
            parse(["-M", "microvm,dump-mtree=off", "-kernel", "k"].map(String::from)),
            Ok(Command::Run(_))
        ));
    }

    #[test]
    fn machine_unknown_property() {
        let e = err(&["-M", "microvm,dump-tree"]);
        assert_eq!(e, ArgsError::UnknownMachineProperty { option: "-M", property: "dump-tree".into() });
        assert_eq!(e.to_string(), "-M: unknown machine property 'dump-tree' (see -help for the supported ones)");
        let e = err(&["-machine", "microvm,smm=off"]);
        assert_eq!(e, ArgsError::UnknownMachineProperty { option: "-machine", property: "smm".into() });
    }

    // ---- -m ----

    #[test]
    fn memory_sizes() {
        for (m, want) in [
            ("512m", 512 * MIB),
            ("512M", 512 * MIB),
            ("512", 512 * MIB),
            ("1G", GIB),
            ("1g", GIB),
            ("4G", 4 * GIB),
            ("size=512M", 512 * MIB),
            ("16", 16 * MIB),
            ("16384k", 16 * MIB),
            ("16384K", 16 * MIB),
            ("1T", 1 << 40),
            ("1t", 1 << 40),
            ("1024G", 1 << 40),
            ("1.5G", 3 * GIB / 2),
            ("0.5g", GIB / 2),
            ("16777216B", 16 * MIB),
            ("16777216b", 16 * MIB),
            ("512M,", 512 * MIB),
            ("0016", 16 * MIB),
            // Rounded up to whole pages.
            ("16385k", 16 * MIB + 4096),
            ("16777217B", 16 * MIB + 4096),
        ] {
            assert_eq!(run(&["-m", m]).unwrap().mem_size, want, "{m}");
        }
        // Last one wins.
        assert_eq!(run(&["-m", "1G", "--m", "2G"]).unwrap().mem_size, 2 * GIB);
    }

    #[test]
    fn memory_errors() {
        for m in [
            "", "abc", "G", "1.5", "1.G", ".5G", "1,5G", "-1G", "+1G", "1GB", "1MiB", "1X", "0x100", " 512", "512 ",
            "１G", "1e3", "size=", "size=abc", "1G,foo=2", "1G,2G", "1.5B",
        ] {
            let e = err(&["-m", m]);
            assert!(matches!(e, ArgsError::InvalidValue { option: "-m", .. }), "{m:?}: {e:?}");
        }
        for m in ["0", "0M", "0G", "size=0"] {
            assert_invalid(err(&["-m", m]), "-m", "zero");
        }
        for m in ["15", "15M", "1K", "1B", "16383K", "0.01G"] {
            let e = err(&["-m", m]);
            assert!(matches!(e, ArgsError::MemoryTooSmall { min_mib: 16, .. }), "{m}: {e:?}");
        }
        for m in [
            "1025G",
            "2T",
            "1P",
            "1E",
            "15E",
            "16E",
            "99999999999999999999999999",
            "18446744073709551615B",
            "1048577",
            "99999999999999999999999999999999999999999999T",
        ] {
            let e = err(&["-m", m]);
            assert!(matches!(e, ArgsError::MemoryTooLarge { max_mib: 1048576, .. }), "{m}: {e:?}");
        }
        assert_eq!(err(&["-m", "8M"]).to_string(), "-m: '8M' is too small; microvm needs at least 16 MiB");
        assert_eq!(err(&["-m", "2T"]).to_string(), "-m: '2T' is too large; the maximum is 1048576 MiB");
        assert_invalid(err(&["-m", "1G,slots=2,maxmem=4G"]), "-m", "hotplug");
        assert_invalid(err(&["-m", "maxmem=4G"]), "-m", "hotplug");
        assert_invalid(err(&["-m", "slots=2"]), "-m", "hotplug");
        assert_eq!(
            err(&["-m", "lots"]).to_string(),
            "-m: invalid value 'lots': expected a size such as 512 (MiB), 512M, 1G; suffixes K, M, G, T"
        );
    }

    // ---- -smp ----

    #[test]
    fn smp_values() {
        for (s, want) in [
            ("1", 1),
            ("2", 2),
            ("32", 32),
            ("cpus=4", 4),
            ("02", 2),
            ("4,sockets=1,cores=2,threads=2", 4),
            ("4,sockets=2,cores=2,threads=1,maxcpus=4", 4),
            ("4,sockets=2", 4),
            ("4,cores=4", 4),
            ("8,sockets=2,dies=1,clusters=1,cores=2,threads=2", 8),
            ("sockets=2,cores=2", 4),
            ("maxcpus=3", 3),
            ("cpus=6,maxcpus=6", 6),
            ("2,", 2),
        ] {
            assert_eq!(run(&["-smp", s]).unwrap().vcpu_count, want, "{s}");
        }
        assert_eq!(run(&["-smp", "2", "-smp", "3"]).unwrap().vcpu_count, 3);
    }

    #[test]
    fn smp_errors() {
        for s in ["0", "33", "cpus=0", "1000", "99999999999999999999999", "sockets=64", "maxcpus=33"] {
            let e = err(&["-smp", s]);
            assert!(matches!(e, ArgsError::VcpusOutOfRange { max: 32, .. }), "{s}: {e:?}");
        }
        assert_eq!(err(&["-smp", "33"]).to_string(), "-smp: vCPU count '33' is out of range; microvm supports 1 to 32");
        for s in [
            "",
            "two",
            "-1",
            "+2",
            "2.0",
            "0x2",
            " 2",
            "cpus=",
            "2,cores",
            "2,foo=1",
            "2,foo=x",
            "2,cores=x",
            "2,3",
            ",",
            ",,",
        ] {
            let e = err(&["-smp", s]);
            assert!(matches!(e, ArgsError::InvalidValue { option: "-smp", .. }), "{s:?}: {e:?}");
        }
        assert_invalid(err(&["-smp", "2,maxcpus=4"]), "-smp", "hotplug");
        assert_invalid(err(&["-smp", "4,sockets=1,cores=2,threads=1"]), "-smp", "does not add up");
        assert_invalid(err(&["-smp", "4,sockets=3"]), "-smp", "does not add up");
        assert_invalid(err(&["-smp", "2,cores=0"]), "-smp", "at least 1");
        assert_invalid(err(&["-smp", "2,foo=x"]), "-smp", "unknown key 'foo'");
        assert_invalid(err(&["-smp", ","]), "-smp", "expected a vCPU count");
    }

    // ---- kernel, append, initrd ----

    #[test]
    fn kernel_append_initrd() {
        let c = parse(args(&[
            "-kernel",
            "/boot/a",
            "-append",
            "console=ttyS0, quiet",
            "-initrd",
            "/boot/i",
            "-kernel",
            "/boot/b",
            "-append",
            "",
        ]))
        .unwrap();
        let Command::Run(Launch { vm: c, .. }) = c else { panic!() };
        assert_eq!(c.kernel.path, PathBuf::from("/boot/b"));
        assert_eq!(c.kernel.cmdline, "");
        assert_eq!(c.kernel.initrd, Some(PathBuf::from("/boot/i")));
        // Commas are not special in paths or the command line.
        let c = run(&["-append", "a,,b,c=d", "-initrd", "x,y"]).unwrap();
        assert_eq!(c.kernel.cmdline, "a,,b,c=d");
        assert_eq!(c.kernel.initrd, Some(PathBuf::from("x,y")));
        // A value may start with a dash.
        assert_eq!(parse(args(&["-kernel", "-m"])).map(|c| matches!(c, Command::Run(_))), Ok(true));
        assert_invalid(err_full(&["-kernel", ""]), "-kernel", "empty path");
        assert_invalid(err(&["-initrd", ""]), "-initrd", "empty path");
    }

    // ---- serial ----

    #[test]
    fn serial_implies_legacy() {
        assert_eq!(run(&["-serial", "stdio"]).unwrap().serial, Some(SerialConfig::Stdio));
        assert_eq!(run(&["-serial", "none"]).unwrap().serial, Some(SerialConfig::Null));
        assert_eq!(run(&["-nodefaults", "-serial", "stdio"]).unwrap().serial, Some(SerialConfig::Stdio));
        assert_eq!(run(&["-serial", "none", "-serial", "stdio"]).unwrap().serial, Some(SerialConfig::Stdio));
        assert_eq!(run(&["-serial", "stdio", "-serial", "none"]).unwrap().serial, Some(SerialConfig::Stdio));
        assert_eq!(run(&["-M", "microvm,legacy", "-serial", "none"]).unwrap().serial, Some(SerialConfig::Null));
    }

    #[test]
    fn serial_and_isa_serial_off() {
        assert_eq!(run(&["-M", "microvm,isa-serial=off", "-serial", "none"]).unwrap().serial, None);
        assert_eq!(err(&["-M", "microvm,isa-serial=off", "-serial", "stdio"]), ArgsError::SerialWithoutPort);
        assert_eq!(err(&["-serial", "stdio", "-M", "microvm,legacy=off"]), ArgsError::SerialWithoutPort);
    }

    #[test]
    fn serial_errors() {
        for s in ["pty", "file:/tmp/x", "tcp::4444,server", "vc", "null", "", "STDIO", "chardev:c0", "unix:/s"] {
            assert_invalid(err(&["-serial", s]), "-serial", "not supported");
        }
        assert_invalid(err(&["-serial", "mon:stdio"]), "-serial", "no monitor");
        assert_invalid(err(&["-serial", "stdio", "-serial", "stdio"]), "-serial", "more than once");
        assert_eq!(
            err(&["-serial", "pty"]).to_string(),
            "-serial: invalid value 'pty': not supported; use stdio or none"
        );
    }

    #[test]
    fn nodefaults_alone_changes_nothing_without_legacy() {
        assert_eq!(run(&["-nodefaults"]).unwrap(), run(&[]).unwrap());
    }

    // ---- accepted no-op options ----

    #[test]
    fn accepted_options_without_effect() {
        let base = run(&[]).unwrap();
        for extra in [
            &["-nographic"][..],
            &["-nodefaults"],
            &["-no-user-config"],
            &["-enable-kvm"],
            &["-no-reboot"],
            &["-accel", "kvm"],
            &["-accel", "accel=kvm"],
            &["-cpu", "host"],
            &["-cpu", "max"],
            &["-cpu", "host,-arch-capabilities"],
            &["-cpu", "host,+x2apic,pmu=off"],
            &["-display", "none"],
            &["-name", ""],
        ] {
            assert_eq!(run(extra).unwrap(), base, "{extra:?}");
        }
    }

    #[test]
    fn accel_cpu_display_errors() {
        for a in ["tcg", "hvf", "kvm:tcg", "", "kvm,kernel-irqchip=on", "accel=tcg", "KVM"] {
            let e = err(&["-accel", a]);
            assert!(matches!(e, ArgsError::InvalidValue { option: "-accel", .. }), "{a:?}: {e:?}");
        }
        for c in ["qemu64", "Skylake-Server", "", "help", ",host", "HOST"] {
            assert_invalid(err(&["-cpu", c]), "-cpu", "host");
        }
        for d in ["gtk", "sdl", "vnc=:0", "curses", "", "none,gl=on"] {
            assert_invalid(err(&["-display", d]), "-display", "none");
        }
    }

    #[test]
    fn report_start_time() {
        assert!(run(&["--report-start-time"]).unwrap().report_start_time);
        assert!(run(&["-report-start-time"]).unwrap().report_start_time);
        assert!(!run(&[]).unwrap().report_start_time);
    }

    // ---- helpers ----

    #[test]
    fn split_list_escapes() {
        assert_eq!(split_list("a,b"), ["a", "b"]);
        assert_eq!(split_list("a,,b"), ["a,b"]);
        assert_eq!(split_list("a,,,b"), ["a,", "b"]);
        assert_eq!(split_list(""), [""]);
        assert_eq!(split_list(","), ["", ""]);
    }

    #[test]
    fn help_text_mentions_every_option_and_limit() {
        let h = help_text();
        for (name, _, _) in OPTIONS {
            assert!(h.contains(name), "help text lacks {name}");
        }
        for prop in [
            "legacy",
            "isa-serial",
            "pit",
            "pic",
            "rtc",
            "acpi",
            "x-option-roms",
            "auto-kernel-cmdline",
            "ioapic2",
            "dump-mtree",
        ] {
            assert!(h.contains(prop), "help text lacks {prop}");
        }
        assert!(h.contains(&format!("1..{MAX_VCPUS}")));
        assert!(h.contains(&format!("{}M", MIN_MEM_SIZE >> 20)));
        assert!(h.contains(&format!("{}T", MAX_MEM_SIZE >> 40)));
        assert!(h.contains(&format!("{}M", DEFAULT_MEM_SIZE >> 20)));
        assert!(h.contains("--report-start-time"));
    }

    #[test]
    fn every_error_is_one_line() {
        let samples = [
            err(&["-foo\nbar"]),
            err(&["bad\targ"]),
            err(&["-m", "1\n2"]),
            err(&["-M", "pc\r\n"]),
            err(&["-M", "microvm,\u{1b}[2J=1"]),
            err(&["-smp", "99\n"]),
            err(&["-smp", "2,\nfoo=1"]),
            err(&["-smp", "2,\rfoo"]),
            err(&["-cpu", "\u{7}"]),
            err(&["-serial", "\n"]),
            err_full(&[]),
            err(&["-m"]),
            err(&["-device", "x"]),
            err(&["-device", "virtio-blk-device,drive=\n"]),
            err(&["-device", "virtio-net-device,netdev=\u{1b}[2J"]),
            err(&["-device", "virtconsole,chardev=c,bus=\r.0"]),
            err(&["-device", "virtio-rng-device,rng=\t"]),
            err(&["-drive", "id=d\n,file=f"]),
            err(&["-netdev", "tap,id=n,ifname=a\nb"]),
            err(&["-chardev", "\n,id=c"]),
            err(&["-object", "rng-random,id=r,filename=\n"]),
            err(&["-nic", "user\n"]),
            err(&["-M", "microvm,isa-serial=off", "-serial", "stdio"]),
            err(&["-m", "1\n"]),
            err(&["-m", "999999T"]),
        ];
        for e in samples {
            let s = e.to_string();
            assert!(!s.contains(char::is_control), "{s:?}");
            assert!(!s.is_empty());
        }
    }

    /// Throws many odd argument vectors at the parser: it must never panic,
    /// and every error must be one line without control characters.
    #[test]
    fn never_panics() {
        const TOKENS: &[&str] = &[
            "-M",
            "-machine",
            "--machine",
            "-m",
            "--m",
            "-smp",
            "-kernel",
            "-append",
            "-initrd",
            "-serial",
            "-nographic",
            "-nodefaults",
            "-no-user-config",
            "-enable-kvm",
            "-accel",
            "-cpu",
            "-no-reboot",
            "-display",
            "-name",
            "--report-start-time",
            "-h",
            "-version",
            "-device",
            "-drive",
            "-netdev",
            "-chardev",
            "-object",
            "-nic",
            "--device",
            "virtio-blk-device,drive=d",
            "virtio-blk-device,drive=",
            "virtio-net-device,netdev=n",
            "virtio-net-device,netdev=n,mac=52:54:00:12:34:56",
            "mac=ff:ff:ff:ff:ff:f",
            "virtio-serial-device",
            "virtio-serial-device,id=s",
            "virtconsole,chardev=c",
            "virtconsole,chardev=c,bus=s.0",
            "virtio-rng-device",
            "virtio-rng-device,rng=r",
            "virtio-blk-pci",
            "virtserialport",
            "id=d,file=f,format=raw,if=none",
            "id=d,file=f,if=none,readonly,cache=none",
            "id=e,file=f",
            "format=qcow2",
            "if=virtio",
            "tap,id=n,script=no,downscript=no",
            "tap,id=n,ifname=tap%d",
            "ifname=",
            "user,id=n",
            "pty,id=c,server",
            "stdio,id=c",
            "stdio,id=c,signal=off",
            "file,id=c,path=/tmp/x",
            "socket,id=c,path=/s,server,nowait",
            "socket,id=c,path=/s,wait",
            "rng-random,id=r,filename=/dev/urandom",
            "rng-builtin,id=r",
            "memory-backend-ram,id=m",
            "id=",
            "id=1",
            "no",
            "noserver",
            "drive=\u{0}",
            "chardev=\n",
            "microvm",
            "microvm,legacy",
            "microvm,isa-serial=off",
            "isa-serial=on",
            "pit=off",
            "acpi=on",
            "512m",
            "1G",
            "0",
            "16",
            "15",
            "1.5G",
            "1T",
            "2T",
            "18446744073709551616",
            "99999999999999999999999999999999999999999E",
            "0.999999999999999999999999E",
            "size=",
            "=",
            ",",
            ",,",
            "=,=",
            "a=b=c",
            "2",
            "33",
            "cpus=2,maxcpus=2",
            "sockets=0",
            "4,sockets=2,cores=2,threads=1",
            "stdio",
            "none",
            "pty",
            "kvm",
            "host",
            "",
            "-",
            "--",
            "---",
            "é",
            "\u{0}",
            "\n",
            "💥",
            "1\u{301}G",
            "vmlinux",
            "1.",
            ".",
            "1..2G",
            "K",
            "kk",
            "1KK",
            "maxcpus=",
            "type=",
            "legacy=",
            "microvm,,",
        ];
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..50_000 {
            let len = (next() % 8) as usize;
            let mut v = Vec::with_capacity(len + 2);
            if next() % 2 == 0 {
                v.extend(args(&["-kernel", "k"]));
            }
            for _ in 0..len {
                let t = TOKENS[(next() % TOKENS.len() as u64) as usize];
                // Sometimes glue two tokens together to make new ones.
                if next() % 5 == 0 {
                    let u = TOKENS[(next() % TOKENS.len() as u64) as usize];
                    v.push(format!("{t}{u}"));
                } else {
                    v.push(t.to_owned());
                }
            }
            if let Err(e) = parse(v.clone()) {
                let s = e.to_string();
                assert!(!s.contains(char::is_control) && !s.is_empty(), "{v:?} → {s:?}");
            }
        }
    }

    #[test]
    fn parse_size_edges() {
        assert_eq!(parse_size("1"), Some(MIB));
        assert_eq!(parse_size("1B"), Some(1));
        assert_eq!(parse_size("1E"), Some(1 << 60));
        assert_eq!(parse_size("16E"), Some(u64::MAX));
        assert_eq!(parse_size("0.000000000000000000001E"), Some(0));
        assert_eq!(parse_size("1.0000000000000000000000000001K"), Some(1024));
        assert_eq!(parse_size("1.B"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("é"), None);
        assert_eq!(parse_size("1é"), None);
    }
}
