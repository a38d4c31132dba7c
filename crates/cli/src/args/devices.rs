//! The `-device` option (the virtio-mmio devices), `-nic` (`nic.rs`), and the
//! resolution of devices and monitors to their backends (`backends.rs`).
//!
//! As in QEMU, devices find their backends by id once the whole command line
//! is read, so a `-drive` may come after the `-device` that uses it. The
//! order of the `-device` options is the order of
//! [`VmConfig::devices`](vmm::config::VmConfig::devices), i.e. the
//! virtio-mmio slot order. The number of slots is the VMM's business; it
//! reports a command line with too many devices.
//!
//! Decisions (each also stated in the `-help` text):
//! - Backends must be well formed and ids unique per kind (`-drive`,
//!   `-netdev`, `-chardev`, `-object`, `-device`), and every id follows QEMU's
//!   rule (a letter, then letters, digits, `-`, `.`, `_`). A backend no device
//!   uses is checked and then dropped, as QEMU allows — except a `-drive`
//!   without `if=none`, which QEMU would attach to an IDE bus microvm lacks:
//!   that is an error rather than a silently ignored disk.
//! - A backend used by two devices is an error (QEMU: "it's in use"), except
//!   rng objects, which QEMU lets devices share.
//! - `virtio-serial-device` is one virtio-mmio slot carrying its ports
//!   (`virtconsole`, `virtserialport`): see `devices/ports.rs`. One
//!   virtconsole alone is today's one-port console; more ports, a named
//!   port or `max_ports=` make it QEMU's multiport virtio-serial.
//! - stdin has one owner: two of `-chardev stdio`, `-qmp stdio` and
//!   `-serial stdio` are errors. The *implicit* legacy-mode serial (no
//!   `-serial`) yields to the other two and is connected to nothing instead
//!   (see `finish` in `args.rs`).
//! - A monitor (`-mon`, `-qmp chardev:`) takes its chardev like a device
//!   does: a chardev serves one of them.

use vmm::config::{
    BlockConfig, ChardevBackend, ChardevConfig, DebugExitConfig, DeviceConfig, MonitorConfig, MonitorSocket, MuxConfig,
    NetConfig, NinePConfig,
};
use vmm::device_kinds::props::VHOST_NOT_PACKED;
use vmm::device_kinds::{self, Backend as KindBackend, BackendKind, BackendRef, DeviceArgs, DeviceKind};
use vmm::device_kinds::{Parsed, PlatformConfig, PlatformDevice, PlatformKind, Prop, PropError};
use vmm::vmgenid::VmGenIdConfig;

use super::backends::{Backend, Backends, CHARDEV, DRIVE};
use super::control::{Monitor, MonitorTarget};
use super::device_props::DEVICE_KINDS;
use super::keyval::{kind_name, kind_settings, Setting};
use super::mux::ChardevUsers;

pub(super) mod nic;
mod ports;
use super::{invalid, unhandled, ArgsError};

const DEVICE: &str = "-device";
const NIC: &str = "-nic";

/// User text shown inside an error's reason: control characters escaped.
fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A `-device` waiting for its backend to be looked up.
// Unboxed: a boxed config is one more allocation per device on the start path, for a
// list of at most a few slots.
#[allow(clippy::large_enum_variant)]
enum Device {
    /// A virtio slot its kind parsed; `backend`, if any, is looked up in `finish` and
    /// handed to the kind's `bind`.
    Slot { kind: &'static dyn DeviceKind, config: DeviceConfig, backend: Option<BackendRef>, value: String },
    /// `virtio-serial-device`, with the ports attached to it.
    Serial { id: Option<String>, max_ports: Option<u32>, ports: Vec<ports::Port> },
}

/// Everything the device options declared, in command-line order.
#[derive(Default)]
pub(super) struct Devices {
    pub(super) backends: Backends,
    devices: Vec<Device>,
    /// The indices in `devices` given `packed=on` (`VmConfig::packed_rings`).
    packed_rings: Vec<usize>,
    device_ids: Vec<String>,
    /// `-qmp` and `-mon`, in command-line order.
    monitors: Vec<Monitor>,
    /// The platform `-device`s given so far (each at most once; they take no slot, so
    /// they are not in `devices`: each sets one of the fields below).
    platform_kinds: Vec<&'static str>,
    /// `-device i8042` was given.
    pub(super) i8042: bool,
    /// What owns stdin, if anything (see the module docs).
    stdio_owner: Option<StdioOwner>,
    /// `-device isa-debug-exit` (an ISA port, not a virtio slot).
    pub(super) debug_exit: Option<DebugExitConfig>,
    /// `-device vmgenid` (ACPI, not a virtio slot) and the option value.
    pub(super) vmgenid: Option<(VmGenIdConfig, String)>,
    /// `-device isa-serial`: its `chardev=` id, if any, and the option value.
    pub(super) isa_serial: Option<(Option<String>, String)>,
}

/// The devices, the monitors, the serial port's chardev and the muxes, resolved.
pub(super) struct Resolved {
    pub(super) devices: Vec<DeviceConfig>,
    /// `VmConfig::packed_rings`.
    pub(super) packed_rings: Vec<usize>,
    pub(super) monitors: Vec<MonitorConfig>,
    pub(super) serial: Option<ChardevConfig>,
    pub(super) muxes: Vec<MuxConfig>,
}

/// What the serial port asks of the chardevs.
pub(super) enum SerialRequest {
    None,
    /// `-serial chardev:ID` or `-device isa-serial,chardev=ID`: option, value, id.
    Chardev(&'static str, String, String),
    /// `-serial mon:stdio`: a mux on stdio shared with a human monitor.
    MonStdio,
}

struct StdioOwner {
    option: &'static str,
    value: String,
    /// How the error message names it: `-chardev id=a`, `-qmp stdio`.
    name: String,
}

impl Devices {
    /// `-chardev ...`: a backend, which may own stdin.
    pub(super) fn chardev(&mut self, value: &str) -> Result<(), ArgsError> {
        let chardev = self.backends.chardev(value)?;
        if chardev.backend == Backend::Plain(vmm::config::ChardevBackend::Stdio) {
            let name = format!("-chardev id={}", chardev.id);
            self.claim_stdio(CHARDEV, value, &name)?;
        }
        Ok(())
    }

    /// `-device DRIVER[,prop=value...]`: its kind's descriptor parses it (a virtio kind's,
    /// or a platform device's: `platform`).
    pub(super) fn device(&mut self, value: &str) -> Result<(), ArgsError> {
        let driver = kind_name(DEVICE, value, "driver")?.filter(|d| !d.is_empty());
        let Some(driver) = driver else {
            return Err(invalid(DEVICE, value, "expected a device name, e.g. virtio-blk-device,drive=ID"));
        };
        let Some(desc) = DEVICE_KINDS.iter().find(|k| k.name == driver) else {
            let reason = match (driver.as_str(), mmio_alternative(&driver)) {
                // QEMU's bus-less aliases (virtio-blk) are its PCI devices on x86.
                (_, Some(ours)) => format!("microvm has no PCI bus yet; use {ours}"),
                (d, None) if d.contains("pci") => format!(
                    "microvm has no PCI bus yet, and no virtio-mmio form of this device; it has {}",
                    device_names()
                ),
                (_, None) => format!("unknown device; microvm has {}", device_names()),
            };
            return Err(invalid(DEVICE, value, reason));
        };
        let settings = kind_settings(DEVICE, value, "driver", desc)?;
        let args = DeviceArgs::new(value, settings.into_iter().map(Setting::into_prop).collect());
        if let Some(kind) = device_kinds::platform_kind(desc.name) {
            return self.platform(kind, &args);
        }
        let kind = device_kinds::lookup(desc.name).ok_or_else(|| unhandled(DEVICE, desc.name))?;
        // `packed=` is the transport's, read here for every virtio kind (`props::PACKED`).
        let packed = args.get("packed").filter(|p| p.on);
        if let (Some(p), Some(why)) = (packed, kind.packed_refusal()) {
            return Err(invalid(DEVICE, &p.text, why));
        }
        if packed.is_some() {
            self.packed_rings.push(self.devices.len());
        }
        let parsed = kind.parse(desc.name, &args).map_err(prop_error)?;
        if let Some(name) = args.unread() {
            return Err(unhandled(DEVICE, name));
        }
        match parsed {
            Parsed::Slot { config, id, backend } => {
                if let Some(why) = kind.at_most_one() {
                    if self.devices.iter().any(|d| matches!(d, Device::Slot { kind: k, .. } if same(*k, kind))) {
                        return Err(invalid(DEVICE, value, why));
                    }
                }
                self.check_device_id(id, value)?;
                self.devices.push(Device::Slot { kind, config, backend, value: value.to_owned() });
            }
            Parsed::SerialBus { id, max_ports } => {
                self.check_device_id(id.clone(), value)?;
                self.devices.push(Device::Serial { id, max_ports, ports: Vec::new() });
            }
            Parsed::SerialPort(port) => {
                self.check_device_id(port.id.clone(), value)?;
                let bus = port.bus.clone();
                let (chardev, id, name, console) = (port.chardev, port.id, port.name, port.console);
                return self.attach_port(bus, ports::Port { chardev, id, name, console, value: value.to_owned() });
            }
        }
        Ok(())
    }

    /// A `-device` that is not a virtio slot: its kind (`vmm::device_kinds::platform`)
    /// parses it; this puts its config in its own field of the VM's config.
    fn platform(&mut self, kind: &'static dyn PlatformKind, args: &DeviceArgs) -> Result<(), ArgsError> {
        let PlatformDevice { id, config } = kind.parse(args).map_err(prop_error)?;
        if let Some(name) = args.unread() {
            return Err(unhandled(DEVICE, name));
        }
        let value = args.value.clone();
        if self.platform_kinds.contains(&kind.desc().name) {
            return Err(invalid(DEVICE, &value, kind.at_most_one()));
        }
        self.check_device_id(id, &value)?;
        self.platform_kinds.push(kind.desc().name);
        match config {
            PlatformConfig::IsaSerial { chardev } => self.isa_serial = Some((chardev, value)),
            PlatformConfig::DebugExit(config) => self.debug_exit = Some(config),
            PlatformConfig::VmGenId(config) => self.vmgenid = Some((config, value)),
            PlatformConfig::I8042 => self.i8042 = true,
        }
        Ok(())
    }

    /// `-fsdev local,...`.
    pub(super) fn fsdev(&mut self, value: &str) -> Result<(), ArgsError> {
        let fsdev = super::ninep::fsdev(value)?;
        self.add_fsdev(fsdev, super::ninep::FSDEV, value)
    }

    /// `-virtfs local,...`: an fsdev and its device, in this option's slot.
    pub(super) fn virtfs(&mut self, value: &str) -> Result<(), ArgsError> {
        let (fsdev, tag) = super::ninep::virtfs(value)?;
        let id = fsdev.id.clone();
        self.add_fsdev(fsdev, super::ninep::VIRTFS, value)?;
        // The device the 9p kind makes of -device virtio-9p-device,fsdev=ID,mount_tag=TAG.
        self.implied_device("virtio-9p-device", vec![implied_prop("fsdev", id), implied_prop("mount_tag", tag)], value)
    }

    /// The `-device name` another option implies (`-virtfs`, `-nic`), with these
    /// properties, in that option's slot; `value`, the option's, for messages.
    pub(super) fn implied_device(&mut self, name: &str, props: Vec<Prop>, value: &str) -> Result<(), ArgsError> {
        let args = DeviceArgs::new(value, props);
        let kind = device_kinds::lookup(name).ok_or_else(|| unhandled(DEVICE, name))?;
        let Parsed::Slot { config, backend, .. } = kind.parse(name, &args).map_err(prop_error)? else {
            return Err(unhandled(DEVICE, name));
        };
        if let Some(name) = args.unread() {
            return Err(unhandled(DEVICE, name));
        }
        self.devices.push(Device::Slot { kind, config, backend, value: value.to_owned() });
        Ok(())
    }

    fn add_fsdev(&mut self, fsdev: super::ninep::Fsdev, option: &'static str, value: &str) -> Result<(), ArgsError> {
        if self.backends.fsdevs.iter().any(|f| f.id == fsdev.id) {
            return Err(invalid(option, value, format!("duplicate fsdev id '{}'", esc(&fsdev.id))));
        }
        self.backends.fsdevs.push(fsdev);
        Ok(())
    }

    fn check_device_id(&mut self, id: Option<String>, value: &str) -> Result<(), ArgsError> {
        if let Some(id) = id {
            if self.device_ids.contains(&id) {
                return Err(invalid(DEVICE, value, format!("duplicate id '{id}'")));
            }
            self.device_ids.push(id);
        }
        Ok(())
    }

    /// Records that `option value` (called `name` in messages) reads stdin;
    /// a second owner is an error.
    fn claim_stdio(&mut self, option: &'static str, value: &str, name: &str) -> Result<(), ArgsError> {
        if let Some(other) = &self.stdio_owner {
            return Err(invalid(
                option,
                value,
                format!("stdio is used twice (also by {}); only one can own stdin", other.name),
            ));
        }
        self.stdio_owner = Some(StdioOwner { option, value: value.to_owned(), name: name.to_owned() });
        Ok(())
    }

    /// Something other than the serial port reads stdin (a `-chardev stdio`
    /// or `-qmp stdio`): the implicit serial port yields it.
    pub(super) fn stdio_taken(&self) -> bool {
        self.stdio_owner.is_some()
    }

    /// `-qmp` or `-mon`.
    pub(super) fn monitor(&mut self, monitor: Monitor) -> Result<(), ArgsError> {
        if let MonitorTarget::Socket(MonitorSocket::Stdio) = monitor.target {
            self.claim_stdio(monitor.option, &monitor.value, &format!("{} stdio", monitor.option))?;
        }
        self.monitors.push(monitor);
        Ok(())
    }

    /// Resolves every device's and monitor's backend, and the chardev of the
    /// serial port if one is named (`serial`: option, its value, the chardev
    /// id); `serial_stdio`: `-serial stdio` was given.
    pub(super) fn finish(self, serial_stdio: bool, serial: SerialRequest, escape: u8) -> Result<Resolved, ArgsError> {
        if serial_stdio {
            if let Some(owner) = &self.stdio_owner {
                return Err(invalid(
                    owner.option,
                    &owner.value,
                    "stdio is used twice (also by -serial stdio); only one can own stdin",
                ));
            }
        }
        let Backends { drives, netdevs, chardevs, rng_objects, iothreads, fsdevs, .. } = self.backends;
        let mut fsdevs: Vec<_> = fsdevs.into_iter().map(|f| (f.id.clone(), Some(f))).collect();
        let mut drives: Vec<_> = drives.into_iter().map(|d| (d.id.clone(), Some(d))).collect();
        let mut netdevs: Vec<_> = netdevs.into_iter().map(|n| (n.id.clone(), Some(n))).collect();
        let mut chardevs = ChardevUsers::new(chardevs, escape);
        // The serial port takes its chardev first, as QEMU creates serial0 before the devices.
        let serial_chardev = match serial {
            SerialRequest::Chardev(option, value, id) => Some(chardevs.front_end(&id, option, &value)?),
            SerialRequest::MonStdio => {
                let mux = chardevs.implicit("serial0", ChardevBackend::Stdio, true);
                Some(ChardevConfig { id: "serial0".into(), backend: ChardevBackend::MuxPort(mux), logfile: None })
            }
            SerialRequest::None => None,
        };
        let mut out = Vec::with_capacity(self.devices.len());
        for (index, device) in self.devices.into_iter().enumerate() {
            out.push(match device {
                Device::Slot { kind, mut config, backend: Some(backend), value } => {
                    let resolved = match backend.kind {
                        BackendKind::Drive => {
                            let d = take(&mut drives, &backend.id, &value, "drive")?;
                            let (read_only, cache, limits, engine, image) =
                                (d.read_only, d.cache, d.limits, d.engine, d.image);
                            let drive = BlockConfig::new(d.id, d.path);
                            KindBackend::Drive(BlockConfig { read_only, cache, limits, engine, image, ..drive })
                        }
                        BackendKind::Netdev => {
                            let n = take(&mut netdevs, &backend.id, &value, "netdev")?;
                            if n.vhost && self.packed_rings.contains(&index) {
                                return Err(invalid(DEVICE, &value, VHOST_NOT_PACKED));
                            }
                            let (vhost, queues) = (n.vhost, n.queues);
                            KindBackend::Netdev(NetConfig { vhost, queues, ..NetConfig::new(n.id, n.backend) })
                        }
                        BackendKind::VhostUserChardev => {
                            let chardev = match chardevs.vhost_user(&backend.id, DEVICE, &value)? {
                                Backend::Plain(plain) => Some(plain),
                                _ => None,
                            };
                            KindBackend::Chardev { id: backend.id, backend: chardev }
                        }
                        BackendKind::Fsdev => {
                            let f = take(&mut fsdevs, &backend.id, &value, "fsdev")?;
                            let (path, read_only, id, security_model) = (f.path, f.read_only, f.id, f.security_model);
                            KindBackend::Fsdev(NinePConfig { path, tag: String::new(), read_only, id, security_model })
                        }
                        BackendKind::RngObject if rng_objects.contains(&backend.id) => KindBackend::RngObject,
                        BackendKind::RngObject => return Err(not_defined(&value, "object", &backend.id)),
                    };
                    kind.bind(&mut config, resolved, &value).map_err(prop_error)?;
                    if let DeviceConfig::Block(BlockConfig { iothread: Some(name), .. }) = &config {
                        if !iothreads.contains(name) {
                            // QEMU's words for a link to an object that does not exist.
                            let why = format!("Property 'virtio-blk-device.iothread' can't find value '{name}'");
                            return Err(invalid(DEVICE, &value, why));
                        }
                    }
                    config
                }
                Device::Slot { config, .. } => config,
                Device::Serial { ports, max_ports, .. } => ports::resolve(ports, max_ports, &mut chardevs)?,
            });
        }
        if let Some(d) = drives.iter().filter_map(|(_, d)| d.as_ref()).find(|d| !d.if_none) {
            return Err(invalid(
                DRIVE,
                &d.value,
                "no device uses this drive and microvm has no IDE bus: add if=none and -device virtio-blk-device,drive=ID",
            ));
        }
        let mut monitors = Vec::with_capacity(self.monitors.len());
        for m in self.monitors {
            let socket = match (m.target, m.human) {
                (MonitorTarget::Chardev(id), true) => {
                    chardevs.human_monitor(&id, m.option, &m.value)?;
                    continue;
                }
                (MonitorTarget::Socket(socket), true) => {
                    let n = chardevs.muxes.len();
                    chardevs.implicit(&format!("compat_monitor{n}"), monitor_chardev(socket), true);
                    continue;
                }
                (MonitorTarget::Socket(socket), false) => (socket, None),
                (MonitorTarget::Chardev(id), false) => {
                    let backend = chardevs.qmp(&id, m.option, &m.value)?;
                    let socket = backend.monitor_socket().map_err(|what| {
                        invalid(
                            m.option,
                            &m.value,
                            format!("chardev '{}' is {what}; a QMP monitor needs a socket or stdio chardev", esc(&id)),
                        )
                    })?;
                    (socket, Some(id))
                }
            };
            monitors.push(MonitorConfig { socket: socket.0, pretty: m.pretty, label: socket.1 });
        }
        let packed_rings = self.packed_rings;
        Ok(Resolved { devices: out, packed_rings, monitors, serial: serial_chardev, muxes: chardevs.muxes })
    }
}

/// The chardev of a human monitor given as a socket or stdio (`-monitor`).
fn monitor_chardev(socket: MonitorSocket) -> ChardevBackend {
    match socket {
        MonitorSocket::Stdio => ChardevBackend::Stdio,
        other => super::serial::socket_backend(other),
    }
}

/// A property an option implies, written as `name=value` in messages.
fn implied_prop(name: &'static str, value: String) -> Prop {
    Prop { name, text: format!("{name}={value}"), value, on: false }
}

/// Two descriptors are the same kind.
fn same(a: &dyn DeviceKind, b: &dyn DeviceKind) -> bool {
    a.names() == b.names()
}

/// A kind's complaint about a `-device`, as the command line's error.
fn prop_error(e: PropError) -> ArgsError {
    invalid(DEVICE, &e.text, e.reason)
}

/// Takes the backend named `id` (of `kind`) out of `list` for the device
/// given as `value`, leaving `None` so that a second user is told it is taken.
fn take<T>(list: &mut [(String, Option<T>)], id: &str, value: &str, kind: &str) -> Result<T, ArgsError> {
    match list.iter_mut().find(|(name, _)| name == id) {
        None => Err(not_defined(value, kind, id)),
        Some((_, backend)) => backend
            .take()
            .ok_or_else(|| invalid(DEVICE, value, format!("{kind} '{}' is already used by another device", esc(id)))),
    }
}

fn not_defined(value: &str, kind: &str, id: &str) -> ArgsError {
    invalid(DEVICE, value, format!("{kind} '{}' is not defined (no -{kind} with id={})", esc(id), esc(id)))
}

/// The `-device` microvm has for QEMU's PCI spelling of a device
/// (`virtio-blk-pci`, `virtio-net-pci-non-transitional`) or its bus-less
/// alias (`virtio-blk`): the `-device` kind with the same base name.
fn mmio_alternative(driver: &str) -> Option<&'static str> {
    let base = ["-pci-non-transitional", "-pci-transitional", "-pci"]
        .iter()
        .find_map(|suffix| driver.strip_suffix(suffix))
        .unwrap_or(driver);
    DEVICE_KINDS.iter().map(|k| k.name).find(|ours| ours.strip_suffix("-device") == Some(base))
}

/// Every `-device` microvm has, for the unknown-device errors.
fn device_names() -> String {
    DEVICE_KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod block_queues;
#[cfg(test)]
mod tests;
