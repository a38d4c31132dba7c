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

use std::path::PathBuf;
use vmm::config::{
    BalloonConfig, BalloonOptions, BlockConfig, ChardevBackend, ChardevConfig, DebugExitConfig, DeviceConfig,
    MonitorConfig, MonitorSocket, MuxConfig, NetConfig,
};
use vmm::config::{FsConfig, HybridVsockConfig, NinePConfig, VsockConfig};
use vmm::vmgenid::VmGenIdConfig;

use super::backends::{Backend, Backends, CHARDEV, DRIVE};
use super::device_props::{DEVICE_KINDS, VHOST_NOT_PACKED};
use super::keyval::{kind_name, kind_settings};
use super::mux::ChardevUsers;

mod nic;
pub(super) use nic::NIC_PROPS;
mod ports;
mod values;
use super::{invalid, unhandled, ArgsError};
use values::{parse_fs_tag, parse_guest_cid, parse_guid, parse_mac, parse_number, parse_queue_size};

const DEVICE: &str = "-device";
const NIC: &str = "-nic";

/// User text shown inside an error's reason: control characters escaped.
fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A `-device` waiting for its backend to be looked up.
enum Device {
    Block {
        drive: String,
        serial: Option<String>,
        value: String,
    },
    Net {
        netdev: String,
        mac: Option<[u8; 6]>,
        value: String,
    },
    /// `virtio-serial-device`, with the ports attached to it.
    Serial {
        id: Option<String>,
        value: String,
        max_ports: Option<u32>,
        ports: Vec<ports::Port>,
    },
    Rng {
        rng: Option<String>,
        value: String,
    },
    /// `virtio-keyboard-device`.
    Keyboard {
        value: String,
    },
    Balloon {
        id: Option<String>,
        options: BalloonOptions,
        value: String,
    },
    /// `vhost-user-fs-device,chardev=ID,tag=TAG`.
    Fs {
        chardev: String,
        tag: String,
        queue_size: u16,
        id: Option<String>,
        value: String,
    },
    /// `hybrid-vsock-device,guest-cid=N,uds-path=PATH`.
    HybridVsock {
        cid: u64,
        uds_path: PathBuf,
        id: Option<String>,
        value: String,
    },
    /// `virtio-9p-device,fsdev=ID,mount_tag=TAG` (or a `-virtfs`).
    NineP {
        fsdev: String,
        tag: String,
        value: String,
    },
    /// `vhost-vsock-device,guest-cid=N`.
    Vsock {
        cid: u64,
        id: Option<String>,
        value: String,
    },
}

/// Everything the device options declared, in command-line order.
#[derive(Default)]
pub(super) struct Devices {
    pub(super) backends: Backends,
    devices: Vec<Device>,
    /// The indices in `devices` given `packed=on`.
    packed_rings: Vec<usize>,
    device_ids: Vec<String>,
    /// `-qmp` and `-mon`, in command-line order.
    monitors: Vec<Monitor>,
    /// `-device i8042` was given (it takes no slot, so it is not in `devices`).
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

/// A QMP monitor whose chardev (if it names one) is looked up in `finish`.
pub(super) struct Monitor {
    /// `-qmp`, `-mon` or `-monitor`, and its value, for messages.
    pub(super) option: &'static str,
    pub(super) value: String,
    pub(super) target: MonitorTarget,
    pub(super) pretty: bool,
    /// The human monitor (readline HMP) rather than QMP.
    pub(super) human: bool,
}

pub(super) enum MonitorTarget {
    /// `-qmp unix:...`, `tcp:...`, `stdio`.
    Socket(MonitorSocket),
    /// `-mon chardev=ID` or `-qmp chardev:ID`.
    Chardev(String),
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

    /// `-device DRIVER[,prop=value...]`.
    pub(super) fn device(&mut self, value: &str) -> Result<(), ArgsError> {
        let driver = kind_name(DEVICE, value, "driver")?.filter(|d| !d.is_empty());
        let Some(driver) = driver else {
            return Err(invalid(DEVICE, value, "expected a device name, e.g. virtio-blk-device,drive=ID"));
        };
        let Some(kind) = DEVICE_KINDS.iter().find(|k| k.name == driver) else {
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
        let (mut id, mut drive, mut netdev, mut mac, mut chardev, mut bus, mut rng) =
            (None, None, None, None, None, None, None);
        let (mut serial, mut iobase, mut iosize) = (None, None, None);
        let (mut max_ports, mut port_name) = (None, None);
        let mut balloon = BalloonOptions::default();
        let (mut guest_cid, mut tag, mut queue_size, mut uds_path) = (None, None, None, None);
        let mut guid = None;
        let (mut fsdev, mut mount_tag) = (None, None);
        let mut packed = false;
        for s in kind_settings(DEVICE, value, "driver", kind)? {
            match s.name() {
                "id" => id = Some(s.id(DEVICE)?),
                "drive" => drive = Some(s.reference(DEVICE)?),
                "serial" => serial = Some(s.value.clone()),
                "packed" if s.on && matches!(kind.name, "vhost-vsock-device" | "vhost-user-fs-device") => {
                    return Err(invalid(DEVICE, &s.text, VHOST_NOT_PACKED));
                }
                "packed" => packed = s.on,
                "mq" if !s.on => {}
                "mq" => return Err(invalid(DEVICE, &s.text, "multiqueue is not supported; use mq=off")),
                // COM1's: index 0, port 0x3f8, IRQ 4.
                "iobase" if kind.name == "isa-serial" && parse_number(&s, 0xffff)? == 0x3f8 => {}
                "irq" if kind.name == "isa-serial" && parse_number(&s, 0xffff)? == 4 => {}
                "index" if kind.name == "isa-serial" && parse_number(&s, 0xffff)? == 0 => {}
                "iobase" | "irq" | "index" if kind.name == "isa-serial" => {
                    return Err(invalid(
                        DEVICE,
                        &s.text,
                        "microvm's one serial port is COM1: index=0,iobase=0x3f8,irq=4",
                    ))
                }
                "iobase" => iobase = Some(parse_number(&s, 0xffff)?),
                "max_ports" => max_ports = Some(ports::parse_max_ports(&s)?),
                "name" => port_name = Some(s.value.clone()),
                "iosize" => iosize = Some(parse_number(&s, 8)?),
                "netdev" => netdev = Some(s.reference(DEVICE)?),
                "mac" => mac = Some(parse_mac(&s)?),
                "chardev" => chardev = Some(s.reference(DEVICE)?),
                "bus" => bus = Some(s.reference(DEVICE)?),
                "rng" => rng = Some(s.reference(DEVICE)?),
                "deflate-on-oom" => balloon.deflate_on_oom = s.on,
                "free-page-reporting" => balloon.free_page_reporting = s.on,
                "guest-cid" => guest_cid = Some(parse_guest_cid(&s)?),
                "uds-path" => uds_path = Some(PathBuf::from(&s.value)).filter(|p| !p.as_os_str().is_empty()),
                "tag" => tag = Some(parse_fs_tag(&s)?),
                "queue-size" => queue_size = Some(parse_queue_size(&s)?),
                "guid" if s.value == "auto" => guid = None,
                "guid" => guid = Some(parse_guid(&s)?),
                "fsdev" => fsdev = Some(s.reference(DEVICE)?),
                "mount_tag" => mount_tag = Some(super::ninep::parse_mount_tag(DEVICE, &s)?),
                name => return Err(unhandled(DEVICE, name)),
            }
        }
        let value = value.to_owned();
        let device = match kind.name {
            "virtio-blk-device" => {
                let Some(drive) = drive else {
                    return Err(invalid(DEVICE, &value, "drive=ID is required (the id of a -drive)"));
                };
                Device::Block { drive, serial, value }
            }
            "virtio-net-device" => {
                let Some(netdev) = netdev else {
                    return Err(invalid(DEVICE, &value, "netdev=ID is required (the id of a -netdev)"));
                };
                Device::Net { netdev, mac, value }
            }
            "virtio-serial-device" => Device::Serial { id: id.clone(), value, max_ports, ports: Vec::new() },
            "virtconsole" | "virtserialport" => {
                let Some(chardev) = chardev else {
                    return Err(invalid(DEVICE, &value, "chardev=ID is required (the id of a -chardev)"));
                };
                self.check_device_id(id.clone(), &value)?;
                let console = kind.name == "virtconsole";
                return self.attach_port(bus, ports::Port { chardev, id, name: port_name, console, value });
            }
            "virtio-rng-device" => Device::Rng { rng, value },
            "virtio-keyboard-device" => Device::Keyboard { value },
            "vhost-user-fs-device" => {
                let (Some(chardev), Some(tag)) = (chardev, tag) else {
                    return Err(invalid(DEVICE, &value, "chardev=ID and tag=TAG are required"));
                };
                Device::Fs { chardev, tag, queue_size: queue_size.unwrap_or(FS_QUEUE_SIZE), id: id.clone(), value }
            }
            "virtio-9p-device" => {
                let (Some(fsdev), Some(tag)) = (fsdev, mount_tag) else {
                    return Err(invalid(DEVICE, &value, "fsdev=ID and mount_tag=TAG are required"));
                };
                Device::NineP { fsdev, tag, value }
            }
            "vhost-vsock-device" => {
                let Some(cid) = guest_cid else {
                    return Err(invalid(
                        DEVICE,
                        &value,
                        "guest-cid=N is required (the guest's vsock address, 3 or more)",
                    ));
                };
                Device::Vsock { cid, id: id.clone(), value }
            }
            "hybrid-vsock-device" => {
                let (Some(cid), Some(uds_path)) = (guest_cid, uds_path) else {
                    return Err(invalid(DEVICE, &value, "guest-cid=N and uds-path=PATH are required"));
                };
                Device::HybridVsock { cid, uds_path, id: id.clone(), value }
            }
            "isa-serial" => {
                if self.isa_serial.is_some() {
                    return Err(invalid(DEVICE, &value, "microvm has one serial port (COM1)"));
                }
                self.check_device_id(id, &value)?;
                self.isa_serial = Some((chardev, value));
                return Ok(());
            }
            "isa-debug-exit" => {
                let defaults = DebugExitConfig::default();
                let iosize = iosize.unwrap_or(u64::from(defaults.iosize));
                if iosize == 0 {
                    return Err(invalid(DEVICE, &value, "iosize must be 1 to 8"));
                }
                if self.debug_exit.is_some() {
                    return Err(invalid(DEVICE, &value, "only one isa-debug-exit"));
                }
                self.check_device_id(id, &value)?;
                // Both fit: parse_number capped them.
                self.debug_exit = Some(DebugExitConfig {
                    iobase: iobase.map_or(defaults.iobase, |b| b as u16),
                    iosize: iosize as u8,
                });
                return Ok(());
            }
            "virtio-balloon-device" => {
                if self.devices.iter().any(|d| matches!(d, Device::Balloon { .. })) {
                    return Err(invalid(DEVICE, &value, "there can be only one balloon device"));
                }
                Device::Balloon { id: id.clone(), options: balloon, value }
            }
            "vmgenid" => {
                if self.vmgenid.is_some() {
                    return Err(invalid(DEVICE, &value, "only one vmgenid"));
                }
                self.check_device_id(id, &value)?;
                self.vmgenid = Some((VmGenIdConfig { guid }, value));
                return Ok(());
            }
            "i8042" => {
                if self.i8042 {
                    return Err(invalid(DEVICE, &value, "there is one i8042 (ports 0x60 and 0x64 are taken)"));
                }
                self.check_device_id(id, &value)?;
                self.i8042 = true;
                return Ok(());
            }
            name => return Err(unhandled(DEVICE, name)),
        };
        self.check_device_id(id, device_value(&device))?;
        if packed {
            self.packed_rings.push(self.devices.len());
        }
        self.devices.push(device);
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
        self.devices.push(Device::NineP { fsdev: id, tag, value: value.to_owned() });
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
        let Backends { drives, netdevs, chardevs, rng_objects, fsdevs, .. } = self.backends;
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
                Device::Block { drive, serial, value } => {
                    let d = take(&mut drives, &drive, &value, "drive")?;
                    let (id, path, read_only, cache, limits) = (d.id, d.path, d.read_only, d.cache, d.limits);
                    let (engine, image) = (d.engine, d.image);
                    DeviceConfig::Block(BlockConfig { id, path, read_only, cache, serial, limits, engine, image })
                }
                Device::Net { netdev, mac, value } => {
                    let n = take(&mut netdevs, &netdev, &value, "netdev")?;
                    if n.vhost && self.packed_rings.contains(&index) {
                        return Err(invalid(DEVICE, &value, VHOST_NOT_PACKED));
                    }
                    DeviceConfig::Net(NetConfig {
                        id: n.id,
                        backend: n.backend,
                        mac,
                        vhost: n.vhost,
                        limits: Default::default(),
                        mmds: None,
                    })
                }
                Device::Serial { ports, max_ports, .. } => ports::resolve(ports, max_ports, &mut chardevs)?,
                Device::Rng { rng, value } => {
                    if let Some(rng) = rng {
                        if !rng_objects.contains(&rng) {
                            return Err(not_defined(&value, "object", &rng));
                        }
                    }
                    DeviceConfig::Rng(Default::default())
                }
                Device::Fs { chardev, tag, queue_size, id, value } => {
                    let backend = chardevs.vhost_user(&chardev, DEVICE, &value)?;
                    let Backend::Plain(ChardevBackend::Socket { path, server: false, .. }) = backend else {
                        return Err(invalid(
                            DEVICE,
                            &value,
                            format!(
                                "chardev '{}' must be a client socket, -chardev socket,id=ID,path=PATH, on \
                                 virtiofsd's --socket-path",
                                esc(&chardev)
                            ),
                        ));
                    };
                    DeviceConfig::Fs(FsConfig { socket: path, tag, queue_size, id })
                }
                Device::NineP { fsdev, tag, value } => {
                    let f = take(&mut fsdevs, &fsdev, &value, "fsdev")?;
                    DeviceConfig::NineP(NinePConfig {
                        path: f.path,
                        tag,
                        read_only: f.read_only,
                        id: f.id,
                        security_model: f.security_model,
                    })
                }
                Device::Vsock { cid, id, .. } => DeviceConfig::Vsock(VsockConfig { cid, id }),
                Device::HybridVsock { cid, uds_path, id, .. } => {
                    DeviceConfig::HybridVsock(HybridVsockConfig { cid, uds_path, id })
                }
                Device::Keyboard { .. } => DeviceConfig::Keyboard,
                Device::Balloon { id, options, .. } => DeviceConfig::Balloon(BalloonConfig { id, options }),
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

fn device_value(d: &Device) -> &str {
    match d {
        Device::Block { value, .. }
        | Device::Net { value, .. }
        | Device::Serial { value, .. }
        | Device::Rng { value, .. }
        | Device::Keyboard { value }
        | Device::Vsock { value, .. }
        | Device::HybridVsock { value, .. }
        | Device::Fs { value, .. }
        | Device::NineP { value, .. }
        | Device::Balloon { value, .. } => value,
    }
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
mod tests;

/// QEMU's default `queue-size=` of vhost-user-fs-device.
const FS_QUEUE_SIZE: u16 = 128;
