//! QEMU-compatible command line → [`Command`].
//!
//! The parser is pure: it touches no files and no KVM, so every decision
//! about the command line is made (and unit-tested) here, and the VMM only
//! sees a validated [`VmConfig`].
//!
//! Every option and property is described once, in `options.rs` and
//! `device_props.rs` (the shape is in `schema.rs`): those descriptions drive
//! the option lookup here, the property lookup and unknown-key errors
//! (`keyval.rs`), `-help` and `-OPTION help` (`help.rs`).
//!
//! QEMU conventions followed:
//! - options start with one dash; the two-dash spelling (`--m`) is accepted too;
//! - an option's value is always the next argument, even if it starts with `-`;
//! - options are processed in order: the first error, `-help` or `-version`
//!   met ends parsing (so `-h` after a bad option reports the bad option, as
//!   QEMU does); so does `-OPTION help` (`-device help`,
//!   `-device virtio-blk-device,help`), which prints the option's properties;
//! - repeated options: the last one wins; repeated `-M`, `-m` and `-name`
//!   merge their properties, later ones overriding earlier ones (QEMU's
//!   merged option lists); the device options (`-device`, `-drive`,
//!   `-netdev`, `-chardev`, `-object`) and the monitors (`-qmp`, `-mon`) add
//!   one item each;
//! - `key=value,...` lists follow QEMU's syntax (see `keyval.rs`).

use sandbox::jail::JailConfig;
use std::path::PathBuf;

use vmm::boot_trace::BootTraceConfig;
use vmm::config::{ChardevConfig, DeviceConfig, KernelConfig, MachineConfig, SerialConfig, VmConfig};

mod backends;
mod control;
mod device_props;
mod devices;
#[path = "help.rs"]
mod help;
mod host;
mod keyval;
mod machine;
mod machine_props;
mod memory;
mod mux;
mod netdev;
mod ninep;
mod options;
mod schema;
mod serial;

pub use help::help_text;
use schema::{Opt, OptDesc, Props};

/// Guest RAM when `-m` is not given (QEMU's default), defined with the config.
pub use vmm::config::DEFAULT_MEM_SIZE;

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
    /// Print each thread kind the VM would run and its seccomp allowlist (`-M
    /// microvm,dump-seccomp`) and exit without running it.
    DumpSeccomp(VmConfig),
    /// Print this text (`-help`, or `-OPTION help`) and exit successfully.
    Help(String),
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
    /// `-run-with chroot=,user=` (`-chroot`, `-runas`): the jail entered after set-up.
    pub jail: Option<JailConfig>,
    /// `-D FILE`: the log goes there instead of stderr.
    pub log_file: Option<PathBuf>,
    /// What the command line asks for that has no effect, one line each, to
    /// be logged once at start (the parser itself prints nothing).
    pub warnings: Vec<String>,
}

/// A command line error. Each `Display` is one line naming the offending
/// option or value; user-supplied text is shown with control characters
/// escaped so it cannot break the line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown option '{}' (see -help)", .0.escape_debug())]
    UnknownOption(String),

    #[error("option '{option}' is not supported: {instead}")]
    RefusedOption { option: &'static str, instead: &'static str },

    #[error("option '{0}' requires an argument")]
    MissingValue(&'static str),

    #[error("unexpected argument '{}': microvm takes no positional arguments (for a disk use -drive id=ID,file=PATH,format=raw,if=none -device virtio-blk-device,drive=ID)", .0.escape_debug())]
    UnexpectedArgument(String),

    #[error("no kernel given: -kernel PATH is required (microvm boots a Linux kernel directly, there is no firmware)")]
    MissingKernel,

    #[error("{0} without -kernel: microvm runs no firmware, so there is nothing to boot; give -kernel PATH")]
    FirmwareWithoutKernel(&'static str),

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

    #[error("vhost-user-fs-device {}: virtiofsd must be able to map guest RAM: add -object memory-backend-memfd,id=mem,size={mib}M,share=on -machine memory-backend=mem", .tag.escape_debug())]
    FsNeedsSharedMemory { tag: String, mib: u64 },

    #[error("-serial {} conflicts with -M isa-serial=off: there is no serial port to connect it to", .0.escape_debug())]
    SerialWithoutPort(String),
}

fn invalid(option: &'static str, value: &str, reason: impl Into<String>) -> ArgsError {
    ArgsError::InvalidValue { option, value: value.to_owned(), reason: reason.into() }
}

/// A property that is described but that its handler does not know: a bug
/// the description tests catch.
fn unhandled(option: &'static str, name: &str) -> ArgsError {
    invalid(option, name, "described but not handled (a microvm bug)")
}

/// The description of `arg` and the spelling used (for messages).
fn lookup(arg: &str) -> Option<(&'static str, &'static OptDesc)> {
    // QEMU accepts `--opt` for every `-opt`.
    let name = match arg.strip_prefix('-') {
        Some(rest) if rest.starts_with('-') && rest.len() > 1 => rest,
        _ => arg,
    };
    options::OPTIONS.iter().find_map(|d| d.spellings().find(|s| *s == name || *s == arg).map(|s| (s, d)))
}

/// Accumulated state while walking the arguments.
#[derive(Default)]
struct Parsed {
    machine: machine::MachineOptions,
    mem_size: Option<u64>,
    /// Memory backends, `-numa`, `-mem-path`, `-mem-prealloc`.
    memory: memory::MemoryOptions,
    vcpus: Option<u8>,
    kernel: Option<String>,
    append: Option<String>,
    initrd: Option<String>,
    /// The `-serial` of COM1, and its value as written.
    serial: Option<(serial::SerialSpec, String)>,
    /// `-serial stdio` was given (a second one is an error).
    serial_stdio: bool,
    nodefaults: bool,
    report_start_time: bool,
    trace_boot: bool,
    trace_boot_json: Option<String>,
    start_paused: bool,
    /// `-incoming file:PATH[,offset=N]`.
    incoming: Option<vmm::snapshot::SnapshotSource>,
    /// `-incoming defer`.
    incoming_defer: bool,
    name: Option<String>,
    debug_threads: bool,
    uuid: Option<String>,
    daemonize: bool,
    pidfile: Option<String>,
    /// `-sandbox on|off`; on when not given.
    sandbox: Option<bool>,
    jail: JailConfig,
    /// `-echr N`.
    echr: Option<u8>,
    /// `-accel` names in order.
    accels: Vec<String>,
    cpu: host::CpuOptions,
    /// `-bios` or `-L`, the first given.
    firmware: Option<&'static str>,
    rtc_localtime: bool,
    mem_lock: bool,
    log_file: Option<String>,
    log_items: host::LogItems,
    /// `-no-shutdown`.
    no_shutdown: bool,
    /// The device options and monitors, resolved in [`finish`].
    devices: devices::Devices,
}

/// Parses the command line, without argv[0].
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, ArgsError> {
    let mut partial = Partial::default();
    match partial.add(args)? {
        Some(done) => Ok(done),
        None => partial.finish(),
    }
}

/// A command line read in parts: the options of each part are taken as if they followed
/// the earlier ones on one command line. The clone server reads the machine's options
/// once, and each clone adds only its request's before [`Partial::finish`].
#[derive(Default)]
pub struct Partial(Parsed);

impl Partial {
    /// Reads `args`; `Some` when one of them ends parsing (`-help`, `-version`, a help query).
    pub fn add<I: IntoIterator<Item = String>>(&mut self, args: I) -> Result<Option<Command>, ArgsError> {
        read_options(&mut self.0, args)
    }

    /// The command the options read so far describe.
    pub fn finish(self) -> Result<Command, ArgsError> {
        finish_command(self.0)
    }
}

fn read_options<I: IntoIterator<Item = String>>(p: &mut Parsed, args: I) -> Result<Option<Command>, ArgsError> {
    let mut args = args.into_iter();

    while let Some(arg) = args.next() {
        if !arg.starts_with('-') {
            return Err(ArgsError::UnexpectedArgument(arg));
        }
        let Some((name, desc)) = lookup(&arg) else {
            return Err(ArgsError::UnknownOption(arg));
        };
        if desc.opt == Opt::Refused {
            return Err(ArgsError::RefusedOption { option: desc.name, instead: desc.note.unwrap_or_default() });
        }
        let value = if desc.takes_value() { args.next().ok_or(ArgsError::MissingValue(name))? } else { String::new() };
        if let Some(text) = help::option_help(desc, &value) {
            return Ok(Some(Command::Help(text)));
        }

        match desc.opt {
            Opt::Help => return Ok(Some(Command::Help(help_text()))),
            Opt::Version => return Ok(Some(Command::Version)),
            Opt::Refused => unreachable!("handled above"),
            Opt::Machine => machine::parse_machine(name, &value, &mut p.machine)?,
            Opt::Mem => p.mem_size = Some(machine::parse_mem(&value)?),
            Opt::MemPath => p.memory.mem_path(non_empty_path(name, value)?),
            Opt::MemPrealloc => p.memory.mem_prealloc(),
            Opt::Numa => p.memory.numa(&value)?,
            Opt::Smp => p.vcpus = Some(machine::parse_smp(&value)?),
            Opt::Kernel => p.kernel = Some(non_empty_path(name, value)?),
            Opt::Initrd => p.initrd = Some(non_empty_path(name, value)?),
            Opt::Append => p.append = Some(value),
            Opt::Serial => {
                // As QEMU: `none` adds no port, the first other -serial is COM1
                // and a second would be COM2, which microvm does not have.
                let spec = serial::parse_serial(&value)?;
                match &p.serial {
                    Some((first, _)) if *first != serial::SerialSpec::None && spec != serial::SerialSpec::None => {
                        return Err(invalid(name, &value, "given more than once; microvm has one serial port (COM1)"));
                    }
                    Some(_) if spec == serial::SerialSpec::None => {}
                    _ => {
                        p.serial_stdio = matches!(spec, serial::SerialSpec::Stdio | serial::SerialSpec::MonStdio);
                        p.serial = Some((spec, value));
                    }
                }
            }
            Opt::Nodefaults => p.nodefaults = true,
            Opt::Accel => p.accels.push(host::parse_accel(&value)?),
            Opt::Cpu => p.cpu = host::parse_cpu(&value)?,
            Opt::Firmware => {
                let _ = non_empty_path(name, value)?;
                p.firmware = p.firmware.or(Some(desc.name));
            }
            Opt::Rtc => p.rtc_localtime = host::parse_rtc(&value)?,
            Opt::Overcommit => p.mem_lock = host::parse_overcommit(&value)?,
            Opt::LogFile => p.log_file = Some(non_empty_path(name, value)?),
            Opt::LogItems => host::parse_log_items(&value, &mut p.log_items)?,
            Opt::Display => machine::parse_display(name, &value)?,
            Opt::Vga => machine::parse_none_only(name, &value, "microvm has no display adapter")?,
            Opt::Parallel => machine::parse_none_only(name, &value, "microvm has no parallel port")?,
            Opt::Net => machine::parse_none_only(
                name,
                &value,
                "for a NIC use -netdev tap,id=ID,... with -device virtio-net-device,netdev=ID",
            )?,
            Opt::Global => machine::parse_global(&value, &mut p.machine)?,
            Opt::ReportStartTime => p.report_start_time = true,
            Opt::TraceBoot => p.trace_boot = true,
            Opt::TraceBootJson => p.trace_boot_json = Some(non_empty_path(name, value)?),
            // Accepted, no effect (the description says why); a value is
            // still checked against the described properties.
            Opt::Ignored => {
                if let Props::List { implied, props } = desc.props {
                    keyval::settings(name, &value, implied, props, name)?;
                }
            }
            Opt::Name => {
                let name = control::parse_name(&value)?;
                p.name = name.guest.or(p.name.take());
                p.debug_threads = name.debug_threads.unwrap_or(p.debug_threads);
            }
            Opt::Uuid => p.uuid = Some(control::parse_uuid(&value)?),
            Opt::StartPaused => p.start_paused = true,
            Opt::Incoming => match control::parse_incoming(&value)? {
                Some(source) => p.incoming = Some(source),
                None => p.incoming_defer = true,
            },
            Opt::Daemonize => p.daemonize = true,
            Opt::Sandbox => p.sandbox = Some(control::parse_sandbox(&value)?),
            Opt::RunWith => control::parse_run_with(&value, &mut p.jail)?,
            Opt::Chroot => p.jail.chroot = Some(non_empty_path(name, value)?.into()),
            Opt::Runas => p.jail.user = Some(control::parse_runas(name, value)?),
            Opt::Pidfile => p.pidfile = Some(non_empty_path(name, value)?),
            Opt::Qmp => p.devices.monitor(control::parse_qmp(name, &value, false)?)?,
            Opt::QmpPretty => p.devices.monitor(control::parse_qmp(name, &value, true)?)?,
            Opt::Mon => p.devices.monitor(control::parse_mon(&value)?)?,
            Opt::Monitor => {
                if let Some(monitor) = control::parse_monitor(&value)? {
                    p.devices.monitor(monitor)?;
                }
            }
            Opt::Echr => p.echr = Some(parse_echr(&value)?),
            Opt::Device => p.devices.device(&value)?,
            Opt::Drive => p.devices.backends.drive(&value)?,
            Opt::Netdev => p.devices.backends.netdev(&value)?,
            Opt::Chardev => p.devices.chardev(&value)?,
            Opt::Object if memory::is_memory_object(&value) => p.memory.object(&value)?,
            Opt::Object => p.devices.backends.object(&value)?,
            Opt::Nic => p.devices.nic(&value)?,
            Opt::Fsdev => p.devices.fsdev(&value)?,
            Opt::Virtfs => p.devices.virtfs(&value)?,
            Opt::NoAcpi => p.machine.acpi = Some(false),
            Opt::NoShutdown => p.no_shutdown = true,
        }
    }
    Ok(None)
}

fn finish_command(p: Parsed) -> Result<Command, ArgsError> {
    let (dump_mtree, dump_seccomp) = (p.machine.dump_mtree, p.machine.dump_seccomp);
    let daemonize = p.daemonize;
    let pidfile = p.pidfile.clone().map(PathBuf::from);
    let jail = (p.jail != JailConfig::default()).then(|| p.jail.clone());
    let log_file = p.log_file.clone().map(PathBuf::from);
    let mut warnings = warnings(&p);
    let mut vm = finish(p)?;
    if let (Some(_), Some(DeviceConfig::NineP(share))) =
        (&jail, vm.devices.iter().find(|d| matches!(d, DeviceConfig::NineP(_))))
    {
        return Err(invalid(
            ninep::FSDEV,
            &share.id,
            "a 9p share cannot be used with -run-with chroot=/user= (-chroot, -runas): the jail's Landlock \
             ruleset allows no file access, so the 9p server could open nothing; share the folder with virtio-fs",
        ));
    }
    if daemonize && detach_stdio(&mut vm) {
        warnings.push(
            "-daemonize: the daemon has no terminal, so stdio chardevs are connected to nothing (QEMU refuses \
             stdio with -daemonize)"
                .into(),
        );
    }
    Ok(if dump_mtree {
        Command::DumpMtree(vm)
    } else if dump_seccomp {
        Command::DumpSeccomp(vm)
    } else {
        Command::Run(Launch { vm, daemonize, pidfile, jail, log_file, warnings })
    })
}

/// With `-daemonize`, stdin and stdout become /dev/null once the VM is set
/// up: every chardev on stdio (serial port, console, mux) is made a null one
/// instead of holding the caller's terminal or pipe open. True if any was.
fn detach_stdio(vm: &mut VmConfig) -> bool {
    use vmm::config::{ChardevBackend, DeviceConfig};
    let mut any = false;
    let mut detach = |backend: &mut ChardevBackend| {
        if *backend == ChardevBackend::Stdio {
            *backend = ChardevBackend::Null;
            any = true;
        }
    };
    match &mut vm.serial {
        Some(SerialConfig::Stdio) => {
            vm.serial = Some(SerialConfig::Null);
            detach(&mut ChardevBackend::Stdio);
        }
        Some(SerialConfig::Chardev(c)) => detach(&mut c.backend),
        _ => {}
    }
    for device in &mut vm.devices {
        match device {
            DeviceConfig::Console(c) => detach(&mut c.chardev.backend),
            DeviceConfig::SerialPorts(s) => s.ports.iter_mut().for_each(|p| detach(&mut p.chardev.backend)),
            _ => {}
        }
    }
    vm.muxes.iter_mut().for_each(|m| detach(&mut m.chardev.backend));
    any
}

/// One line for each thing asked for that has no effect.
fn warnings(p: &Parsed) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(option) = p.firmware {
        out.push(format!("{option}: no firmware runs; the kernel is loaded directly"));
    }
    if p.machine.pcie {
        out.push(
            "-machine pcie=on: microvm has no PCIe host bridge yet, so the guest sees no PCI bus; no PCI device \
             was asked for (none can be), so nothing is missing"
                .into(),
        );
    }
    out.extend(host::cpu_warning(&p.cpu.ignored));
    if !p.log_items.ignored.is_empty() {
        out.push(format!("-d: only guest_errors has an effect; ignored {}", p.log_items.ignored.join(", ")));
    }
    out
}

fn finish(mut p: Parsed) -> Result<VmConfig, ArgsError> {
    let kernel = match (p.kernel, p.firmware) {
        (Some(kernel), _) => kernel,
        (None, Some(option)) => return Err(ArgsError::FirmwareWithoutKernel(option)),
        (None, None) => return Err(ArgsError::MissingKernel),
    };
    if !p.accels.is_empty() {
        host::choose_accel("-accel", &p.accels)?;
    }

    // Legacy mode (the ISA 16550A exists) when asked for with `legacy` /
    // `isa-serial=on`, by -device isa-serial, or implied by any -serial;
    // `isa-serial=off` wins over `-serial none` but contradicts a connected -serial.
    let isa_device = p.devices.isa_serial.clone();
    if let (Some((spec, _)), Some((_, value))) = (&p.serial, &isa_device) {
        if spec.connected() {
            return Err(invalid(
                "-device",
                value,
                "microvm has one serial port (COM1): give -serial or -device isa-serial, not both",
            ));
        }
    }
    let legacy = isa_device.is_some() || p.machine.isa_serial.unwrap_or(p.serial.is_some());
    // A `-chardev` named by -serial chardev:ID or isa-serial,chardev=ID, resolved with the devices.
    let serial_ref = match (&p.serial, &isa_device) {
        (Some((serial::SerialSpec::Chardev(id), value)), _) => {
            devices::SerialRequest::Chardev("-serial", value.clone(), id.clone())
        }
        (Some((serial::SerialSpec::MonStdio, _)), _) => devices::SerialRequest::MonStdio,
        (_, Some((Some(id), value))) => devices::SerialRequest::Chardev("-device", value.clone(), id.clone()),
        _ => devices::SerialRequest::None,
    };
    let serial = match &p.serial {
        _ if !legacy => match &p.serial {
            Some((spec, value)) if spec.connected() => return Err(ArgsError::SerialWithoutPort(value.clone())),
            _ => None,
        },
        Some((serial::SerialSpec::Stdio, _)) => Some(SerialConfig::Stdio),
        Some((serial::SerialSpec::Backend(backend), _)) => {
            Some(SerialConfig::Chardev(ChardevConfig { id: "serial0".into(), backend: backend.clone(), logfile: None }))
        }
        // Filled in below from the chardev; `-serial none|null`; `-device isa-serial` without chardev.
        Some(_) => Some(SerialConfig::Null),
        None if isa_device.is_some() || p.nodefaults || p.devices.stdio_taken() => {
            // `-nodefaults` dropping QEMU's default serial0, or a `-chardev stdio` or
            // `-qmp stdio` owning stdin (the implicit serial yields to it; with an explicit
            // `-serial stdio` it is an error, in `Devices::finish`).
            Some(SerialConfig::Null)
        }
        None => Some(SerialConfig::Stdio),
    };

    let i8042 = p.devices.i8042;
    let debug_exit = p.devices.debug_exit;
    let vmgenid = p.devices.vmgenid.take();
    let escape = p.echr.unwrap_or(mux::DEFAULT_ESCAPE);
    let devices::Resolved { devices, packed_rings, monitors, serial: serial_chardev, muxes } =
        p.devices.finish(p.serial_stdio, serial_ref, escape)?;
    let serial = match serial_chardev {
        Some(chardev) if serial.is_some() => Some(SerialConfig::Chardev(chardev)),
        _ => serial,
    };
    let (mem_size, memory) = p.memory.resolve(p.machine.memory_backend, p.mem_size, DEFAULT_MEM_SIZE)?;
    if let Some(DeviceConfig::Fs(fs)) = devices.iter().find(|d| matches!(d, DeviceConfig::Fs(_))) {
        if !memory.is_shareable() {
            return Err(ArgsError::FsNeedsSharedMemory { tag: fs.tag.clone(), mib: mem_size >> 20 });
        }
    }
    let defaults = MachineConfig::default();
    let acpi = p.machine.acpi.unwrap_or(defaults.acpi);
    // The guest finds the generation ID only through the DSDT; without it the device
    // would change bytes nobody reads, and clones would believe they were safe.
    let vmgenid = match vmgenid {
        Some((_, value)) if !acpi => {
            return Err(invalid("-device", &value, "vmgenid needs -M microvm,acpi=on (the guest finds it in the DSDT)"))
        }
        other => other.map(|(config, _)| config),
    };
    Ok(VmConfig {
        machine: MachineConfig {
            pit: p.machine.pit.unwrap_or(defaults.pit),
            rtc: p.machine.rtc.unwrap_or(defaults.rtc),
            // QEMU's: the DSDT describes the devices, so the entries go only if asked for.
            auto_kernel_cmdline: p.machine.auto_kernel_cmdline.unwrap_or(defaults.auto_kernel_cmdline && !acpi),
            acpi,
            pit_reinject: p.machine.pit_reinject.unwrap_or(defaults.pit_reinject),
            mem_merge: p.machine.mem_merge.unwrap_or(defaults.mem_merge),
        },
        mem_size,
        memory,
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
        sandbox: p.sandbox.unwrap_or(true),
        cpu: p.cpu.features,
        rtc_localtime: p.rtc_localtime,
        mem_lock: p.mem_lock,
        guest_errors: p.log_items.guest_errors,
        debug_exit,
        muxes,
        i8042,
        no_shutdown: p.no_shutdown,
        incoming: p.incoming,
        incoming_defer: p.incoming_defer,
        vmgenid,
        track_dirty_pages: p.machine.track_dirty_pages,
        packed_rings,
    })
}

/// `-echr N`: a character code, decimal or `0x` hex, 0..=255.
fn parse_echr(value: &str) -> Result<u8, ArgsError> {
    let n = match value.strip_prefix("0x") {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    };
    n.ok_or_else(|| invalid("-echr", value, "expected a character code 0..255, e.g. 20 for C-t"))
}

fn non_empty_path(option: &'static str, value: String) -> Result<String, ArgsError> {
    if value.is_empty() {
        return Err(invalid(option, &value, "empty path"));
    }
    Ok(value)
}

#[cfg(test)]
mod error_form_tests;
#[cfg(test)]
mod item5_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
