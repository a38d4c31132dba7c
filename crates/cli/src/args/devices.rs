//! The device options: `-drive`, `-netdev`, `-chardev`, `-object` (backends),
//! `-device` (the virtio-mmio devices using them) and `-nic none`.
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
//! - `virtio-serial-device` is one virtio-mmio slot carrying exactly one
//!   `virtconsole` (our console device has one port): a `virtconsole` goes to
//!   the first earlier `virtio-serial-device` without one (or the one named by
//!   `bus=ID.0`), a second one there is an error, and a `virtio-serial-device`
//!   left without a `virtconsole` is an error too (a port-less console cannot
//!   be represented, and dropping it would shift the slots of later devices).
//!   `virtconsole` must come after its `virtio-serial-device`, as in QEMU.
//! - stdin has one owner: two `-chardev stdio`, or one with `-serial stdio`,
//!   are errors. The *implicit* legacy-mode serial (no `-serial`) yields to a
//!   `-chardev stdio` and is connected to nothing instead (see `finish` in
//!   `args.rs`).
//! - QEMU's short-form booleans are accepted everywhere except in the first,
//!   key-less element: `server` = `server=on`, `nowait` = `wait=off`.

use std::path::PathBuf;

use vmm::config::{
    BlockConfig, CacheMode, ChardevBackend, ChardevConfig, ConsoleConfig, DeviceConfig, MonitorConfig, MonitorSocket,
    NetConfig,
};

use super::{invalid, parse_bool, split_list, ArgsError, BOOL_EXPECTED};

const DRIVE: &str = "-drive";
const NETDEV: &str = "-netdev";
const CHARDEV: &str = "-chardev";
const OBJECT: &str = "-object";
const DEVICE: &str = "-device";
const NIC: &str = "-nic";

/// User text shown inside an error's reason: control characters escaped.
fn esc(s: &str) -> String {
    s.escape_debug().to_string()
}

/// One element of an option list, with QEMU's short forms expanded.
pub(super) struct Prop {
    pub(super) key: String,
    pub(super) value: String,
    /// The element as written, shown in error messages.
    pub(super) elem: String,
}

/// Splits `list` into properties. The first element may omit its key
/// (`implied`); any other element without `=` is a QEMU short-form boolean:
/// `flag` means `flag=on` and `noflag` means `flag=off`. Empty elements (a
/// trailing comma) are skipped; a repeated key is kept, so that the last
/// one wins when the caller walks the list in order.
pub(super) fn props(option: &'static str, list: &str, implied: Option<&'static str>) -> Result<Vec<Prop>, ArgsError> {
    let mut out = Vec::new();
    for (i, elem) in split_list(list).into_iter().enumerate() {
        if elem.is_empty() {
            continue;
        }
        let (key, value) = match elem.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => match implied {
                Some(name) if i == 0 => (name.to_owned(), elem.clone()),
                _ => match elem.strip_prefix("no") {
                    Some(flag) if !flag.is_empty() => (flag.to_owned(), "off".to_owned()),
                    _ => (elem.clone(), "on".to_owned()),
                },
            },
        };
        if key.is_empty() {
            return Err(invalid(option, &elem, "empty property name"));
        }
        out.push(Prop { key, value, elem });
    }
    Ok(out)
}

impl Prop {
    pub(super) fn bool(&self, option: &'static str) -> Result<bool, ArgsError> {
        parse_bool(&self.value).ok_or_else(|| invalid(option, &self.elem, BOOL_EXPECTED))
    }

    /// An `id=`: QEMU's identifier rule.
    fn id(&self, option: &'static str) -> Result<String, ArgsError> {
        if is_identifier(&self.value) {
            Ok(self.value.clone())
        } else {
            Err(invalid(option, &self.elem, "an id is a letter followed by letters, digits, '-', '.' or '_'"))
        }
    }

    /// A reference to another option's id (`drive=`, `chardev=`, ...).
    pub(super) fn reference(&self, option: &'static str) -> Result<String, ArgsError> {
        if self.value.is_empty() {
            return Err(invalid(option, &self.elem, "needs an id"));
        }
        Ok(self.value.clone())
    }

    pub(super) fn path(&self, option: &'static str) -> Result<PathBuf, ArgsError> {
        if self.value.is_empty() {
            return Err(invalid(option, &self.elem, "empty path"));
        }
        Ok(PathBuf::from(&self.value))
    }

    pub(super) fn unknown(&self, option: &'static str, what: &str, known: &str) -> ArgsError {
        invalid(option, &self.elem, format!("unknown property for {what} (it takes {known})"))
    }
}

/// QEMU's `id_wellformed`.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The implied first element (`tap` in `-netdev tap,...`), last one winning.
fn implied_value(props: &[Prop], key: &str) -> Option<String> {
    props.iter().rev().find(|p| p.key == key).map(|p| p.value.clone())
}

struct Drive {
    id: String,
    path: PathBuf,
    read_only: bool,
    cache: CacheMode,
    /// `if=none` was written (see the module docs on unused drives).
    if_none: bool,
    value: String,
}

struct Netdev {
    id: String,
    ifname: Option<String>,
}

struct Chardev {
    id: String,
    backend: Backend,
}

/// A `-chardev` backend. Consoles take the [`ChardevBackend`]s; the sockets
/// only a monitor can use (TCP, an inherited fd) are kept apart so that a
/// console naming one gets a clear error.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Backend {
    Plain(ChardevBackend),
    /// `socket,host=,port=`: the host already defaulted (see `control::tcp_host`).
    Tcp {
        host: String,
        port: u16,
        server: bool,
        wait: bool,
    },
    /// `socket,fd=N`: an inherited, connected socket.
    Fd(i32),
}

impl Backend {
    /// What a QMP monitor on this chardev talks on.
    fn monitor_socket(&self) -> Result<MonitorSocket, &'static str> {
        Ok(match self {
            Backend::Plain(ChardevBackend::Stdio) => MonitorSocket::Stdio,
            Backend::Plain(ChardevBackend::Socket { path, server: true, wait }) => {
                MonitorSocket::UnixListen { path: path.clone(), wait: *wait }
            }
            Backend::Plain(ChardevBackend::Socket { path, server: false, .. }) => {
                MonitorSocket::UnixConnect { path: path.clone() }
            }
            Backend::Tcp { host, port, server: true, wait } => {
                MonitorSocket::TcpListen { host: host.clone(), port: *port, wait: *wait }
            }
            Backend::Tcp { host, port, server: false, .. } => {
                MonitorSocket::TcpConnect { host: host.clone(), port: *port }
            }
            Backend::Fd(fd) => MonitorSocket::Fd(*fd),
            Backend::Plain(ChardevBackend::Pty) => return Err("a pty"),
            Backend::Plain(ChardevBackend::File { .. }) => return Err("a file"),
        })
    }
}

/// A `-device` waiting for its backend to be looked up.
enum Device {
    Block {
        drive: String,
        value: String,
    },
    Net {
        netdev: String,
        mac: Option<[u8; 6]>,
        value: String,
    },
    /// `virtio-serial-device`, with the `virtconsole` attached to it.
    Serial {
        id: Option<String>,
        value: String,
        console: Option<Console>,
    },
    Rng {
        rng: Option<String>,
        value: String,
    },
}

struct Console {
    chardev: String,
    value: String,
}

/// Everything the device options declared, in command-line order.
#[derive(Default)]
pub(super) struct Devices {
    drives: Vec<Drive>,
    netdevs: Vec<Netdev>,
    chardevs: Vec<Chardev>,
    /// Ids of the `-object`s (all rng backends).
    rng_objects: Vec<String>,
    devices: Vec<Device>,
    device_ids: Vec<String>,
    /// `-qmp` and `-mon`, in command-line order.
    monitors: Vec<Monitor>,
    /// What owns stdin, if anything (see the module docs).
    stdio_owner: Option<StdioOwner>,
}

/// A QMP monitor whose chardev (if it names one) is looked up in `finish`.
pub(super) struct Monitor {
    /// `-qmp` or `-mon`, and its value, for messages.
    pub(super) option: &'static str,
    pub(super) value: String,
    pub(super) target: MonitorTarget,
    pub(super) pretty: bool,
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
    /// `-drive id=ID,file=PATH[,format=raw][,if=none][,readonly=on|off][,cache=MODE]...`
    pub(super) fn drive(&mut self, value: &str) -> Result<(), ArgsError> {
        const KNOWN: &str = "id, file, format, if, readonly, cache, media, aio, discard, snapshot";
        let mut id = None;
        let mut path = None;
        let mut read_only = false;
        let mut cache = CacheMode::default();
        let mut if_none = false;
        for p in props(DRIVE, value, None)? {
            match p.key.as_str() {
                "id" => id = Some(p.id(DRIVE)?),
                "file" => path = Some(p.path(DRIVE)?),
                // No probing: a missing format= means raw, the only one.
                "format" if p.value == "raw" => {}
                "format" => return Err(invalid(DRIVE, &p.elem, "only format=raw is supported")),
                "if" if p.value == "none" => if_none = true,
                "if" => {
                    return Err(invalid(
                        DRIVE,
                        &p.elem,
                        "microvm has no other bus: use if=none with -device virtio-blk-device,drive=ID",
                    ))
                }
                "readonly" | "read-only" => read_only = p.bool(DRIVE)?,
                "cache" => {
                    cache = match p.value.as_str() {
                        "writeback" => CacheMode::Writeback,
                        "writethrough" => CacheMode::Writethrough,
                        "none" | "off" => CacheMode::None,
                        "directsync" => CacheMode::Directsync,
                        "unsafe" => CacheMode::Unsafe,
                        _ => {
                            return Err(invalid(
                                DRIVE,
                                &p.elem,
                                "expected writeback, writethrough, none, directsync or unsafe",
                            ))
                        }
                    }
                }
                "media" if p.value == "disk" => {}
                "media" => return Err(invalid(DRIVE, &p.elem, "only media=disk is supported")),
                // The I/O engine and discard handling are the block device's
                // own; these are accepted for compatibility.
                "aio" if matches!(p.value.as_str(), "threads" | "native" | "io_uring") => {}
                "aio" => return Err(invalid(DRIVE, &p.elem, "expected threads, native or io_uring")),
                "discard" if matches!(p.value.as_str(), "ignore" | "off" | "unmap" | "on") => {}
                "discard" => return Err(invalid(DRIVE, &p.elem, "expected unmap or ignore")),
                "snapshot" => {
                    if p.bool(DRIVE)? {
                        return Err(invalid(DRIVE, &p.elem, "snapshot=on is not supported"));
                    }
                }
                _ => return Err(p.unknown(DRIVE, "-drive", KNOWN)),
            }
        }
        let Some(id) = id else {
            return Err(invalid(DRIVE, value, "id= is required (-device virtio-blk-device,drive=ID refers to it)"));
        };
        let Some(path) = path else {
            return Err(invalid(DRIVE, value, "file= is required"));
        };
        if self.drives.iter().any(|d| d.id == id) {
            return Err(invalid(DRIVE, value, format!("duplicate id '{id}'")));
        }
        self.drives.push(Drive { id, path, read_only, cache, if_none, value: value.to_owned() });
        Ok(())
    }

    /// `-netdev tap,id=ID[,ifname=NAME][,script=no][,downscript=no][,vhost=off]...`
    pub(super) fn netdev(&mut self, value: &str) -> Result<(), ArgsError> {
        const KNOWN: &str = "id, ifname, script, downscript, vhost, queues, vnet_hdr";
        let props = props(NETDEV, value, Some("type"))?;
        match implied_value(&props, "type").as_deref() {
            Some("tap") => {}
            Some(_) => {
                return Err(invalid(
                    NETDEV,
                    value,
                    "only -netdev tap is supported (no user-mode networking, bridge helper or sockets)",
                ))
            }
            None => return Err(invalid(NETDEV, value, "expected tap,id=ID[,ifname=NAME],script=no,downscript=no")),
        }
        let mut id = None;
        let mut ifname = None;
        for p in &props {
            match p.key.as_str() {
                "type" => {}
                "id" => id = Some(p.id(NETDEV)?),
                "ifname" => ifname = Some(check_ifname(p)?),
                // An empty script is QEMU's other spelling of no; without
                // script=, QEMU would run /etc/qemu-ifup: microvm never runs
                // scripts, so the tap must be set up beforehand either way.
                "script" | "downscript" if matches!(p.value.as_str(), "no" | "") => {}
                "script" | "downscript" => {
                    return Err(invalid(
                        NETDEV,
                        &p.elem,
                        "microvm never runs network scripts; use script=no,downscript=no and set the tap up beforehand",
                    ))
                }
                "vhost" => {
                    if p.bool(NETDEV)? {
                        return Err(invalid(NETDEV, &p.elem, "vhost-net is not supported; use vhost=off"));
                    }
                }
                "queues" if p.value == "1" => {}
                "queues" => return Err(invalid(NETDEV, &p.elem, "multiqueue is not supported; use queues=1")),
                "vnet_hdr" => {
                    if !p.bool(NETDEV)? {
                        return Err(invalid(
                            NETDEV,
                            &p.elem,
                            "microvm always uses the virtio-net header on the tap; use vnet_hdr=on",
                        ));
                    }
                }
                _ => return Err(p.unknown(NETDEV, "-netdev tap", KNOWN)),
            }
        }
        let Some(id) = id else {
            return Err(invalid(NETDEV, value, "id= is required (-device virtio-net-device,netdev=ID refers to it)"));
        };
        if self.netdevs.iter().any(|n| n.id == id) {
            return Err(invalid(NETDEV, value, format!("duplicate id '{id}'")));
        }
        self.netdevs.push(Netdev { id, ifname });
        Ok(())
    }

    /// `-chardev stdio|pty|file|socket,id=ID,...`
    pub(super) fn chardev(&mut self, value: &str) -> Result<(), ArgsError> {
        let props = props(CHARDEV, value, Some("backend"))?;
        let backend = implied_value(&props, "backend");
        let known = match backend.as_deref() {
            Some("stdio") => "id, signal",
            Some("pty") => "id",
            Some("file") => "id, path, append",
            Some("socket") => "id, path, host, port, fd, server, wait",
            Some(_) => {
                return Err(invalid(CHARDEV, value, "only the stdio, pty, file and socket backends are supported"))
            }
            None => {
                return Err(invalid(
                    CHARDEV,
                    value,
                    "expected BACKEND,id=ID,... with BACKEND stdio, pty, file or socket",
                ))
            }
        };
        let backend = backend.unwrap_or_default();
        let mut id = None;
        let mut path = None;
        let mut host = None;
        let mut port = None;
        let mut fd = None;
        let mut server = None;
        let mut wait = None;
        for p in &props {
            match (backend.as_str(), p.key.as_str()) {
                (_, "backend") => {}
                (_, "id") => id = Some(p.id(CHARDEV)?),
                // Off is the default; on would multiplex a monitor there is not.
                (_, "mux") => {
                    if p.bool(CHARDEV)? {
                        return Err(invalid(CHARDEV, &p.elem, "there is no monitor to multiplex; use mux=off"));
                    }
                }
                // QEMU lets Ctrl-C stop it (signal=on, its default) or reach the guest.
                ("stdio", "signal") => {
                    p.bool(CHARDEV)?;
                }
                ("file" | "socket", "path") => path = Some(p.path(CHARDEV)?),
                // QEMU truncates without append=on; accepted either way.
                ("file", "append") => {
                    p.bool(CHARDEV)?;
                }
                ("socket", "host") => host = Some(p.value.clone()),
                ("socket", "port") => port = Some(super::control::parse_port(CHARDEV, &p.elem, &p.value)?),
                ("socket", "fd") => fd = Some(parse_fd(p)?),
                ("socket", "server") => server = Some(p.bool(CHARDEV)?),
                ("socket", "wait") => wait = Some((p.bool(CHARDEV)?, p.elem.clone())),
                // QEMU ignores the socket options on other backends (the
                // proposal's `-chardev pty,...,server`).
                (_, "server" | "wait") => {
                    p.bool(CHARDEV)?;
                }
                _ => return Err(p.unknown(CHARDEV, &format!("-chardev {backend}"), known)),
            }
        }
        let Some(id) = id else {
            return Err(invalid(CHARDEV, value, "id= is required"));
        };
        let backend = match backend.as_str() {
            "stdio" => Backend::Plain(ChardevBackend::Stdio),
            "pty" => Backend::Plain(ChardevBackend::Pty),
            "file" => {
                let Some(path) = path else {
                    return Err(invalid(CHARDEV, value, "path= is required"));
                };
                Backend::Plain(ChardevBackend::File { path })
            }
            _ => {
                let (server, wait) = super::control::socket_mode(CHARDEV, server, wait)?;
                match (path, host, fd) {
                    (Some(path), None, None) => Backend::Plain(ChardevBackend::Socket { path, server, wait }),
                    (None, Some(host), None) => {
                        let Some(port) = port else {
                            return Err(invalid(CHARDEV, value, "host= needs port="));
                        };
                        Backend::Tcp { host: super::control::tcp_host(&host, server), port, server, wait }
                    }
                    (None, None, Some(fd)) if server => {
                        return Err(invalid(
                            CHARDEV,
                            value,
                            format!("fd={fd} with server=on (an inherited listening socket) is not supported; pass a connected socket"),
                        ))
                    }
                    (None, None, Some(fd)) => Backend::Fd(fd),
                    (None, None, None) => {
                        return Err(invalid(CHARDEV, value, "path= is required (or host= and port=, or fd=)"))
                    }
                    _ => return Err(invalid(CHARDEV, value, "give only one of path=, host= or fd=")),
                }
            }
        };
        if self.chardevs.iter().any(|c| c.id == id) {
            return Err(invalid(CHARDEV, value, format!("duplicate id '{id}'")));
        }
        if backend == Backend::Plain(ChardevBackend::Stdio) {
            self.claim_stdio(CHARDEV, value, &format!("-chardev id={id}"))?;
        }
        self.chardevs.push(Chardev { id, backend });
        Ok(())
    }

    /// `-object rng-random,id=ID[,filename=/dev/urandom]` or
    /// `-object rng-builtin,id=ID`: accepted as backends for virtio-rng-device,
    /// which always draws from getrandom(2), the same pool as those files.
    pub(super) fn object(&mut self, value: &str) -> Result<(), ArgsError> {
        let props = props(OBJECT, value, Some("qom-type"))?;
        let known = match implied_value(&props, "qom-type").as_deref() {
            Some("rng-random") => "id, filename",
            Some("rng-builtin") => "id",
            _ => return Err(invalid(OBJECT, value, "only rng-random and rng-builtin objects are supported")),
        };
        let mut id = None;
        for p in &props {
            match p.key.as_str() {
                "qom-type" => {}
                "id" => id = Some(p.id(OBJECT)?),
                "filename" if known.contains("filename") => {
                    if !matches!(p.value.as_str(), "/dev/urandom" | "/dev/random") {
                        return Err(invalid(
                            OBJECT,
                            &p.elem,
                            "virtio-rng always uses getrandom(2); filename= may only be /dev/urandom or /dev/random",
                        ));
                    }
                }
                _ => return Err(p.unknown(OBJECT, "this object", known)),
            }
        }
        let Some(id) = id else {
            return Err(invalid(OBJECT, value, "id= is required"));
        };
        if self.rng_objects.contains(&id) {
            return Err(invalid(OBJECT, value, format!("duplicate id '{id}'")));
        }
        self.rng_objects.push(id);
        Ok(())
    }

    /// `-nic none` (no network card; nothing to do). Other `-nic` forms
    /// would create a netdev and a device in one option; microvm asks for
    /// the two explicit options instead.
    pub(super) fn nic(&mut self, value: &str) -> Result<(), ArgsError> {
        if value == "none" {
            return Ok(());
        }
        Err(invalid(
            NIC,
            value,
            "only -nic none is supported; use -netdev tap,id=ID,... with -device virtio-net-device,netdev=ID",
        ))
    }

    /// `-device DRIVER[,prop=value...]`.
    pub(super) fn device(&mut self, value: &str) -> Result<(), ArgsError> {
        let props = props(DEVICE, value, Some("driver"))?;
        let Some(driver) = implied_value(&props, "driver").filter(|d| !d.is_empty()) else {
            return Err(invalid(DEVICE, value, "expected a device name, e.g. virtio-blk-device,drive=ID"));
        };
        let mut id = None;
        let mut rest = Vec::new();
        for p in props {
            match p.key.as_str() {
                "driver" => {}
                "id" => id = Some(p.id(DEVICE)?),
                _ => rest.push(p),
            }
        }
        let value = value.to_owned();
        let device = match driver.as_str() {
            "virtio-blk-device" => {
                let mut drive = None;
                for p in &rest {
                    match p.key.as_str() {
                        "drive" => drive = Some(p.reference(DEVICE)?),
                        "serial" => {
                            return Err(invalid(
                                DEVICE,
                                &p.elem,
                                "serial= is not supported yet; the guest reads the drive id as the disk serial",
                            ))
                        }
                        _ => return Err(p.unknown(DEVICE, "virtio-blk-device", "drive, id")),
                    }
                }
                let Some(drive) = drive else {
                    return Err(invalid(DEVICE, &value, "drive=ID is required (the id of a -drive)"));
                };
                Device::Block { drive, value }
            }
            "virtio-net-device" => {
                let mut netdev = None;
                let mut mac = None;
                for p in &rest {
                    match p.key.as_str() {
                        "netdev" => netdev = Some(p.reference(DEVICE)?),
                        "mac" => mac = Some(parse_mac(p)?),
                        _ => return Err(p.unknown(DEVICE, "virtio-net-device", "netdev, mac, id")),
                    }
                }
                let Some(netdev) = netdev else {
                    return Err(invalid(DEVICE, &value, "netdev=ID is required (the id of a -netdev)"));
                };
                Device::Net { netdev, mac, value }
            }
            "virtio-serial-device" => {
                if let Some(p) = rest.first() {
                    return Err(p.unknown(DEVICE, "virtio-serial-device", "id"));
                }
                Device::Serial { id: id.clone(), value, console: None }
            }
            "virtconsole" => {
                let mut chardev = None;
                let mut bus = None;
                for p in &rest {
                    match p.key.as_str() {
                        "chardev" => chardev = Some(p.reference(DEVICE)?),
                        "bus" => bus = Some(p.reference(DEVICE)?),
                        // The port name is for multiport guests' /dev/vport*;
                        // a console port needs none. Accepted, unused.
                        "name" => {}
                        _ => return Err(p.unknown(DEVICE, "virtconsole", "chardev, bus, name, id")),
                    }
                }
                let Some(chardev) = chardev else {
                    return Err(invalid(DEVICE, &value, "chardev=ID is required (the id of a -chardev)"));
                };
                self.check_device_id(id, &value)?;
                return self.attach_console(bus, Console { chardev, value });
            }
            "virtio-rng-device" => {
                let mut rng = None;
                for p in &rest {
                    match p.key.as_str() {
                        "rng" => rng = Some(p.reference(DEVICE)?),
                        _ => return Err(p.unknown(DEVICE, "virtio-rng-device", "rng, id")),
                    }
                }
                Device::Rng { rng, value }
            }
            "virtserialport" => {
                return Err(invalid(DEVICE, &value, "virtserialport is not supported; use virtconsole"))
            }
            other => {
                let reason = match pci_alias(other) {
                    Some(ours) => format!("microvm has no PCI bus; use {ours}"),
                    None => "unknown device; microvm has virtio-blk-device, virtio-net-device, \
                             virtio-serial-device with virtconsole, and virtio-rng-device"
                        .to_owned(),
                };
                return Err(invalid(DEVICE, &value, reason));
            }
        };
        self.check_device_id(id, device_value(&device))?;
        self.devices.push(device);
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

    /// Puts a virtconsole on the first earlier virtio-serial-device without
    /// one, or on the one its `bus=ID.0` names.
    fn attach_console(&mut self, bus: Option<String>, console: Console) -> Result<(), ArgsError> {
        let mut serials = self.devices.iter_mut().filter_map(|d| match d {
            Device::Serial { id, console, .. } => Some((id.as_deref(), console)),
            _ => None,
        });
        let slot = match &bus {
            Some(bus) => {
                let Some((_, slot)) = serials.find(|(id, _)| id.is_some_and(|id| bus.strip_suffix(".0") == Some(id)))
                else {
                    return Err(invalid(
                        DEVICE,
                        &console.value,
                        format!(
                            "bus '{}' not found: it is the id of an earlier -device virtio-serial-device followed by .0",
                            esc(bus)
                        ),
                    ));
                };
                slot
            }
            None => {
                let mut any = false;
                let free = serials.find(|(_, slot)| {
                    any = true;
                    slot.is_none()
                });
                match free {
                    Some((_, slot)) => slot,
                    None if any => {
                        return Err(invalid(
                            DEVICE,
                            &console.value,
                            "only one virtconsole per virtio-serial-device; add another -device virtio-serial-device before it",
                        ))
                    }
                    None => {
                        return Err(invalid(
                            DEVICE,
                            &console.value,
                            "virtconsole needs -device virtio-serial-device (given before it)",
                        ))
                    }
                }
            }
        };
        if slot.is_some() {
            return Err(invalid(DEVICE, &console.value, "only one virtconsole per virtio-serial-device"));
        }
        *slot = Some(console);
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

    /// Resolves every device's and monitor's backend; `serial_stdio`:
    /// `-serial stdio` was given.
    pub(super) fn finish(self, serial_stdio: bool) -> Result<(Vec<DeviceConfig>, Vec<MonitorConfig>), ArgsError> {
        if serial_stdio {
            if let Some(owner) = &self.stdio_owner {
                return Err(invalid(
                    owner.option,
                    &owner.value,
                    "stdio is used twice (also by -serial stdio); only one can own stdin",
                ));
            }
        }
        let mut drives: Vec<_> = self.drives.into_iter().map(|d| (d.id.clone(), Some(d))).collect();
        let mut netdevs: Vec<_> = self.netdevs.into_iter().map(|n| (n.id.clone(), Some(n))).collect();
        let mut chardevs: Vec<_> = self.chardevs.into_iter().map(|c| (c.id.clone(), Some(c))).collect();
        let mut out = Vec::with_capacity(self.devices.len());
        for device in self.devices {
            out.push(match device {
                Device::Block { drive, value } => {
                    let d = take(&mut drives, &drive, &value, "drive")?;
                    DeviceConfig::Block(BlockConfig { id: d.id, path: d.path, read_only: d.read_only, cache: d.cache })
                }
                Device::Net { netdev, mac, value } => {
                    let n = take(&mut netdevs, &netdev, &value, "netdev")?;
                    DeviceConfig::Net(NetConfig { id: n.id, ifname: n.ifname, mac })
                }
                Device::Serial { console, value, .. } => {
                    let Some(console) = console else {
                        return Err(invalid(
                            DEVICE,
                            &value,
                            "a virtio-serial-device needs a -device virtconsole,chardev=ID after it",
                        ));
                    };
                    let chardev = take(&mut chardevs, &console.chardev, &console.value, "chardev")?;
                    let Backend::Plain(backend) = chardev.backend else {
                        return Err(invalid(
                            DEVICE,
                            &console.value,
                            format!(
                                "chardev '{}' is a TCP or fd socket, which only a monitor can use; \
                                 a console takes stdio, pty, file or a Unix socket (path=)",
                                esc(&chardev.id)
                            ),
                        ));
                    };
                    DeviceConfig::Console(ConsoleConfig { chardev: ChardevConfig { id: chardev.id, backend } })
                }
                Device::Rng { rng, value } => {
                    if let Some(rng) = rng {
                        if !self.rng_objects.contains(&rng) {
                            return Err(not_defined(&value, "object", &rng));
                        }
                    }
                    DeviceConfig::Rng
                }
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
            let socket = match m.target {
                MonitorTarget::Socket(socket) => socket,
                MonitorTarget::Chardev(id) => {
                    let chardev = match chardevs.iter_mut().find(|(name, _)| *name == id) {
                        None => {
                            return Err(invalid(
                                m.option,
                                &m.value,
                                format!("chardev '{}' is not defined (no -chardev with id={})", esc(&id), esc(&id)),
                            ))
                        }
                        Some((_, chardev)) => chardev.take().ok_or_else(|| {
                            invalid(
                                m.option,
                                &m.value,
                                format!("chardev '{}' is already used by a device or another monitor", esc(&id)),
                            )
                        })?,
                    };
                    chardev.backend.monitor_socket().map_err(|what| {
                        invalid(
                            m.option,
                            &m.value,
                            format!("chardev '{}' is {what}; a QMP monitor needs a socket or stdio chardev", esc(&id)),
                        )
                    })?
                }
            };
            monitors.push(MonitorConfig { socket, pretty: m.pretty });
        }
        Ok((out, monitors))
    }
}

fn device_value(d: &Device) -> &str {
    match d {
        Device::Block { value, .. }
        | Device::Net { value, .. }
        | Device::Serial { value, .. }
        | Device::Rng { value, .. } => value,
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

/// QEMU's PCI (and bus-less alias) spellings of our devices.
fn pci_alias(driver: &str) -> Option<&'static str> {
    const OURS: [&str; 4] = ["virtio-blk-device", "virtio-net-device", "virtio-serial-device", "virtio-rng-device"];
    let base = driver.strip_suffix("-pci").unwrap_or(driver);
    OURS.into_iter().find(|ours| ours.strip_suffix("-device") == Some(base))
}

/// `mac=` as QEMU spells it: six two-digit hex octets separated by `:` or
/// `-`; it must be a unicast address the guest can use.
fn parse_mac(p: &Prop) -> Result<[u8; 6], ArgsError> {
    let syntax = || invalid(DEVICE, &p.elem, "expected six hex octets such as 52:54:00:12:34:56");
    let b = p.value.as_bytes();
    if b.len() != 17 {
        return Err(syntax());
    }
    let mut mac = [0u8; 6];
    for (i, octet) in mac.iter_mut().enumerate() {
        let pair = &p.value[3 * i..3 * i + 2];
        if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(syntax());
        }
        *octet = u8::from_str_radix(pair, 16).map_err(|_| syntax())?;
        if i < 5 && !matches!(b[3 * i + 2], b':' | b'-') {
            return Err(syntax());
        }
    }
    if mac[0] & 1 != 0 {
        return Err(invalid(
            DEVICE,
            &p.elem,
            "a multicast address cannot be a NIC's MAC (the first octet must be even)",
        ));
    }
    if mac == [0; 6] {
        return Err(invalid(DEVICE, &p.elem, "the all-zero MAC is not valid"));
    }
    Ok(mac)
}

/// `ifname=` as Linux accepts it (`dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:` or whitespace (nor, here, control characters).
/// A `%d` lets the kernel pick the number.
/// `fd=N`: a descriptor number the process inherited.
fn parse_fd(p: &Prop) -> Result<i32, ArgsError> {
    if !p.value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(CHARDEV, &p.elem, "expected a file descriptor number"));
    }
    p.value.parse().map_err(|_| invalid(CHARDEV, &p.elem, "expected a file descriptor number"))
}

fn check_ifname(p: &Prop) -> Result<String, ArgsError> {
    let name = &p.value;
    let reason = if name.is_empty() || name.len() > 15 {
        "an interface name has 1 to 15 bytes"
    } else if name == "." || name == ".." {
        "not a valid interface name"
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()) {
        "an interface name cannot contain '/', ':', spaces or control characters"
    } else {
        return Ok(name.clone());
    };
    Err(invalid(NETDEV, &p.elem, reason))
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Command, Launch, DEFAULT_MEM_SIZE};
    use super::*;
    use vmm::config::{KernelConfig, MachineConfig, SerialConfig, VmConfig};

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

    fn devs(extra: &[&str]) -> Vec<DeviceConfig> {
        run(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}")).devices
    }

    fn err(extra: &[&str]) -> ArgsError {
        run(extra).expect_err("expected an error")
    }

    /// The error is an InvalidValue of `option` whose reason contains `reason`.
    fn assert_invalid(e: ArgsError, want_option: &str, want_in_reason: &str) {
        match &e {
            ArgsError::InvalidValue { option, reason, .. } => {
                assert_eq!(*option, want_option, "{e}");
                assert!(reason.contains(want_in_reason), "{e}");
            }
            _ => panic!("expected InvalidValue, got {e:?}"),
        }
    }

    fn block(id: &str, path: &str) -> DeviceConfig {
        DeviceConfig::Block(BlockConfig {
            id: id.into(),
            path: path.into(),
            read_only: false,
            cache: CacheMode::Writeback,
        })
    }

    fn net(id: &str, ifname: Option<&str>, mac: Option<[u8; 6]>) -> DeviceConfig {
        DeviceConfig::Net(NetConfig { id: id.into(), ifname: ifname.map(Into::into), mac })
    }

    fn console(id: &str, backend: ChardevBackend) -> DeviceConfig {
        DeviceConfig::Console(ConsoleConfig { chardev: ChardevConfig { id: id.into(), backend } })
    }

    fn socket(path: &str, server: bool, wait: bool) -> ChardevBackend {
        ChardevBackend::Socket { path: path.into(), server, wait }
    }

    const MIB: u64 = 1 << 20;

    // ---- the proposal's command lines ----

    #[test]
    fn proposal_normal_mode() {
        let line = "-M microvm -m 512m -smp 2 -kernel vmlinux -append CMDLINE -nodefaults \
            -no-user-config -chardev pty,id=virtiocon0,server -device virtio-serial-device \
            -device virtconsole,chardev=virtiocon0 -drive id=test,file=test.img,format=raw,if=none \
            -device virtio-blk-device,drive=test -netdev tap,id=tap0,script=no,downscript=no \
            -device virtio-net-device,netdev=tap0";
        let argv = line.split_whitespace().map(|a| a.replace("CMDLINE", "console=hvc0 root=/dev/vda"));
        let want = VmConfig {
            machine: MachineConfig { pit: true, auto_kernel_cmdline: true, rtc: false },
            mem_size: 512 * MIB,
            vcpu_count: 2,
            kernel: KernelConfig { path: "vmlinux".into(), cmdline: "console=hvc0 root=/dev/vda".into(), initrd: None },
            serial: None,
            report_start_time: false,
            trace_boot: None,
            start_paused: false,
            name: None,
            debug_threads: false,
            uuid: None,
            monitors: Vec::new(),
            devices: vec![
                console("virtiocon0", ChardevBackend::Pty),
                block("test", "test.img"),
                net("tap0", None, None),
            ],
        };
        assert_eq!(
            parse(argv.collect::<Vec<_>>()),
            Ok(Command::Run(Launch { vm: want, daemonize: false, pidfile: None }))
        );
    }

    #[test]
    fn proposal_legacy_mode() {
        let line = "-M microvm,legacy -m 512m -smp 2 -kernel vmlinux -append CMDLINE -nodefaults \
            -no-user-config -drive id=test,file=test.img,format=raw,if=none \
            -device virtio-blk-device,drive=test -netdev tap,id=tap0,script=no,downscript=no \
            -device virtio-net-device,netdev=tap0 -serial stdio";
        let argv = line.split_whitespace().map(|a| a.replace("CMDLINE", "console=ttyS0 root=/dev/vda"));
        let want = VmConfig {
            machine: MachineConfig { pit: true, auto_kernel_cmdline: true, rtc: false },
            mem_size: 512 * MIB,
            vcpu_count: 2,
            kernel: KernelConfig {
                path: "vmlinux".into(),
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
            devices: vec![block("test", "test.img"), net("tap0", None, None)],
        };
        assert_eq!(
            parse(argv.collect::<Vec<_>>()),
            Ok(Command::Run(Launch { vm: want, daemonize: false, pidfile: None }))
        );
    }

    #[test]
    fn no_device_options_no_devices() {
        let c = run(&["-nodefaults"]).unwrap();
        assert_eq!(c.devices, []);
        assert_eq!(c.mem_size, DEFAULT_MEM_SIZE);
    }

    // ---- ordering ----

    #[test]
    fn device_order_is_command_line_order_and_backends_may_follow() {
        let d = devs(&[
            "-device",
            "virtio-rng-device",
            "-device",
            "virtio-net-device,netdev=n1,mac=52:54:00:00:00:01",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtio-blk-device,drive=b",
            "-device",
            "virtconsole,chardev=c",
            "-device",
            "virtio-blk-device,drive=a",
            "-device",
            "virtio-net-device,netdev=n0",
            "-drive",
            "id=a,file=a.img,if=none",
            "-drive",
            "id=b,file=b.img,if=none",
            "-netdev",
            "tap,id=n0",
            "-netdev",
            "tap,id=n1,ifname=vm1",
            "-chardev",
            "stdio,id=c",
        ]);
        assert_eq!(
            d,
            [
                DeviceConfig::Rng,
                net("n1", Some("vm1"), Some([0x52, 0x54, 0, 0, 0, 1])),
                // The console takes its virtio-serial-device's place.
                console("c", ChardevBackend::Stdio),
                block("b", "b.img"),
                block("a", "a.img"),
                net("n0", None, None),
            ]
        );
    }

    // ---- -drive ----

    #[test]
    fn drive_properties() {
        let drive = |spec: &str| -> BlockConfig {
            let d = devs(&["-drive", spec, "-device", "virtio-blk-device,drive=d"]);
            match d.as_slice() {
                [DeviceConfig::Block(b)] => b.clone(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            drive("id=d,file=/images/root.img,format=raw,if=none"),
            BlockConfig {
                id: "d".into(),
                path: "/images/root.img".into(),
                read_only: false,
                cache: CacheMode::Writeback,
            }
        );
        for ro in ["readonly", "readonly=on", "read-only=on", "readonly=yes", "readonly=off,read-only=on"] {
            assert!(drive(&format!("id=d,file=f,if=none,{ro}")).read_only, "{ro}");
        }
        for rw in ["readonly=off", "noreadonly", "read-only=off", "readonly,readonly=off"] {
            assert!(!drive(&format!("id=d,file=f,if=none,{rw}")).read_only, "{rw}");
        }
        for (c, want) in [
            ("writeback", CacheMode::Writeback),
            ("writethrough", CacheMode::Writethrough),
            ("none", CacheMode::None),
            ("off", CacheMode::None),
            ("directsync", CacheMode::Directsync),
            ("unsafe", CacheMode::Unsafe),
        ] {
            assert_eq!(drive(&format!("id=d,file=f,if=none,cache={c}")).cache, want);
        }
        // Accepted without effect; format= and if= may be left out.
        for extra in [
            "media=disk",
            "aio=threads",
            "aio=native",
            "aio=io_uring",
            "discard=unmap",
            "discard=ignore",
            "discard=on",
            "discard=off",
            "snapshot=off",
            "format=raw",
        ] {
            assert_eq!(drive(&format!("id=d,file=f,{extra}")).id, "d", "{extra}");
        }
        // QEMU's ",," escape, a trailing comma, the last value winning.
        assert_eq!(drive("id=d,file=a,,b.img,if=none,").path, PathBuf::from("a,b.img"));
        assert_eq!(drive("file=x,id=d,file=y").path, PathBuf::from("y"));
        // An unused if=none drive is fine (QEMU allows it).
        assert_eq!(devs(&["-drive", "id=spare,file=f,if=none"]), []);
    }

    #[test]
    fn drive_errors() {
        let e = err(&["-drive", "id=d,file=f,format=qcow2,if=none"]);
        assert_eq!(e.to_string(), "-drive: invalid value 'format=qcow2': only format=raw is supported");
        for f in ["qcow2", "vmdk", "", "RAW"] {
            assert_invalid(err(&["-drive", &format!("id=d,file=f,format={f}")]), "-drive", "only format=raw");
        }
        for i in ["virtio", "ide", "scsi", "sd", "pflash", "mtd", ""] {
            assert_invalid(
                err(&["-drive", &format!("id=d,file=f,if={i}")]),
                "-drive",
                "use if=none with -device virtio-blk-device",
            );
        }
        assert_invalid(err(&["-drive", "file=f,if=none"]), "-drive", "id= is required");
        assert_invalid(err(&["-drive", "id=d,if=none"]), "-drive", "file= is required");
        assert_invalid(err(&["-drive", "id=d,file=,if=none"]), "-drive", "empty path");
        assert_invalid(err(&["-drive", ""]), "-drive", "id= is required");
        for id in ["", "1d", "d d", "d/e", "é", "_d", "-d"] {
            assert_invalid(err(&["-drive", &format!("id={id},file=f")]), "-drive", "an id is a letter");
        }
        let e = err(&["-drive", "id=d,file=a,if=none", "-drive", "id=d,file=b,if=none"]);
        assert_eq!(e.to_string(), "-drive: invalid value 'id=d,file=b,if=none': duplicate id 'd'");
        assert_invalid(err(&["-drive", "id=d,file=f,cache=sometimes"]), "-drive", "writeback");
        assert_invalid(err(&["-drive", "id=d,file=f,media=cdrom"]), "-drive", "media=disk");
        assert_invalid(err(&["-drive", "id=d,file=f,aio=posix"]), "-drive", "threads");
        assert_invalid(err(&["-drive", "id=d,file=f,discard=maybe"]), "-drive", "unmap");
        assert_invalid(err(&["-drive", "id=d,file=f,snapshot=on"]), "-drive", "snapshot=on");
        assert_invalid(err(&["-drive", "id=d,file=f,snapshot"]), "-drive", "snapshot=on");
        assert_invalid(err(&["-drive", "id=d,file=f,readonly=maybe"]), "-drive", "on|off");
        assert_invalid(err(&["-drive", "id=d,file=f,index=1"]), "-drive", "unknown property");
        assert_invalid(err(&["-drive", "id=d,file=f,=x"]), "-drive", "empty property name");
        // A bare first element is a short-form flag, not a file name.
        assert_invalid(err(&["-drive", "disk.img,id=d"]), "-drive", "unknown property");
        // Without if=none QEMU would put it on IDE: it must be used.
        let e = err(&["-drive", "id=d,file=f,format=raw"]);
        assert_invalid(e.clone(), "-drive", "no device uses this drive");
        assert!(e.to_string().starts_with("-drive: invalid value 'id=d,file=f,format=raw'"));
    }

    #[test]
    fn virtio_blk_device_errors() {
        let e = err(&["-device", "virtio-blk-device,drive=test"]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtio-blk-device,drive=test': drive 'test' is not defined (no -drive with id=test)"
        );
        let e = err(&[
            "-drive",
            "id=d,file=f,if=none",
            "-device",
            "virtio-blk-device,drive=d",
            "-device",
            "virtio-blk-device,drive=d,id=second",
        ]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtio-blk-device,drive=d,id=second': drive 'd' is already used by another device"
        );
        assert_invalid(err(&["-device", "virtio-blk-device"]), "-device", "drive=ID is required");
        assert_invalid(err(&["-device", "virtio-blk-device,drive="]), "-device", "needs an id");
        assert_invalid(
            err(&["-device", "virtio-blk-device,drive=d,serial=abc"]),
            "-device",
            "serial= is not supported",
        );
        assert_invalid(err(&["-device", "virtio-blk-device,drive=d,num-queues=2"]), "-device", "unknown property");
        // A drive id names -drive ids only.
        assert_invalid(
            err(&["-netdev", "tap,id=d", "-device", "virtio-blk-device,drive=d"]),
            "-device",
            "drive 'd' is not defined",
        );
    }

    // ---- -netdev and virtio-net-device ----

    #[test]
    fn netdev_properties() {
        let nic = |netdev: &str, device: &str| -> NetConfig {
            match devs(&["-netdev", netdev, "-device", device]).as_slice() {
                [DeviceConfig::Net(n)] => n.clone(),
                other => panic!("{other:?}"),
            }
        };
        let dev = "virtio-net-device,netdev=n";
        assert_eq!(
            nic("tap,id=n,ifname=vmtap0,script=no,downscript=no,vhost=off", dev),
            NetConfig { id: "n".into(), ifname: Some("vmtap0".into()), mac: None }
        );
        for extra in ["", ",script=,downscript=", ",queues=1", ",vnet_hdr=on", ",vhost=off", ",novhost"] {
            assert_eq!(nic(&format!("tap,id=n{extra}"), dev).ifname, None, "{extra}");
        }
        assert_eq!(nic("type=tap,id=n", dev).id, "n");
        assert_eq!(nic("id=n,type=tap", dev).id, "n");
        assert_eq!(nic("tap,id=n,ifname=tap%d", dev).ifname.as_deref(), Some("tap%d"));
        assert_eq!(nic("tap,id=n,ifname=abcdefghijklmno", dev).ifname.as_deref(), Some("abcdefghijklmno"));
        for (mac, want) in [
            ("52:54:00:12:34:56", [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            ("52-54-00-12-34-56", [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            ("02:AB:cd:EF:00:ff", [0x02, 0xab, 0xcd, 0xef, 0x00, 0xff]),
            ("fe:ff:ff:ff:ff:ff", [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ] {
            assert_eq!(nic("tap,id=n", &format!("{dev},mac={mac},id=nic0")).mac, Some(want), "{mac}");
        }
    }

    #[test]
    fn netdev_errors() {
        for t in ["user", "bridge", "socket", "vde", "l2tpv3", "stream", "vhost-user", "TAP"] {
            let e = err(&["-netdev", &format!("{t},id=n")]);
            assert_invalid(e.clone(), "-netdev", "only -netdev tap is supported");
            assert!(e.to_string().starts_with(&format!("-netdev: invalid value '{t},id=n'")));
        }
        assert_invalid(err(&["-netdev", "id=n"]), "-netdev", "expected tap");
        assert_invalid(err(&["-netdev", ""]), "-netdev", "expected tap");
        for s in ["script=/etc/qemu-ifup", "downscript=/etc/qemu-ifdown", "script=yes", "downscript=on"] {
            assert_invalid(err(&["-netdev", &format!("tap,id=n,{s}")]), "-netdev", "never runs network scripts");
        }
        assert_invalid(err(&["-netdev", "tap,id=n,vhost=on"]), "-netdev", "vhost=off");
        assert_invalid(err(&["-netdev", "tap,id=n,vhost"]), "-netdev", "vhost=off");
        assert_invalid(err(&["-netdev", "tap,id=n,vhost=2"]), "-netdev", "on|off");
        assert_invalid(err(&["-netdev", "tap,id=n,queues=4"]), "-netdev", "multiqueue");
        assert_invalid(err(&["-netdev", "tap,id=n,vnet_hdr=off"]), "-netdev", "vnet_hdr=on");
        assert_invalid(err(&["-netdev", "tap,id=n,fd=3"]), "-netdev", "unknown property");
        assert_invalid(err(&["-netdev", "tap,ifname=t"]), "-netdev", "id= is required");
        assert_invalid(err(&["-netdev", "tap,id=0"]), "-netdev", "an id is a letter");
        for name in ["", "abcdefghijklmnop", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\u{1b}b"] {
            assert!(
                matches!(
                    err(&["-netdev", &format!("tap,id=n,ifname={name}")]),
                    ArgsError::InvalidValue { option: "-netdev", .. }
                ),
                "{name:?}"
            );
        }
        assert_invalid(err(&["-netdev", "tap,id=n", "-netdev", "tap,id=n,ifname=x"]), "-netdev", "duplicate id 'n'");
        // The device side.
        let e = err(&["-device", "virtio-net-device,netdev=tap0"]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtio-net-device,netdev=tap0': netdev 'tap0' is not defined (no -netdev with id=tap0)"
        );
        assert_invalid(
            err(&[
                "-netdev",
                "tap,id=n",
                "-device",
                "virtio-net-device,netdev=n",
                "-device",
                "virtio-net-device,netdev=n",
            ]),
            "-device",
            "netdev 'n' is already used by another device",
        );
        assert_invalid(err(&["-device", "virtio-net-device"]), "-device", "netdev=ID is required");
        assert_invalid(err(&["-device", "virtio-net-device,netdev=n,romfile="]), "-device", "unknown property");
        for mac in [
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52:54:00:12:34:5g",
            "52:54:00:12:34:5",
            "5:254:00:12:34:56",
            "52.54.00.12.34.56",
            "525400123456",
            "52:54:00:12:34:56 ",
            "+2:54:00:12:34:56",
            "",
            "é2:54:00:12:34:5",
        ] {
            assert_invalid(
                err(&["-device", &format!("virtio-net-device,netdev=n,mac={mac}")]),
                "-device",
                "six hex octets",
            );
        }
        for mac in ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01"] {
            assert_invalid(err(&["-device", &format!("virtio-net-device,netdev=n,mac={mac}")]), "-device", "multicast");
        }
        assert_invalid(err(&["-device", "virtio-net-device,netdev=n,mac=00:00:00:00:00:00"]), "-device", "all-zero");
    }

    #[test]
    fn nic() {
        assert_eq!(devs(&["-nic", "none"]), []);
        for n in ["user", "tap,ifname=tap0", "", "none,model=virtio"] {
            assert_invalid(err(&["-nic", n]), "-nic", "-netdev tap");
        }
    }

    // ---- -chardev and the console ----

    /// The chardev of `-chardev spec` on a console.
    fn chardev(spec: &str) -> ChardevBackend {
        let d = devs(&["-chardev", spec, "-device", "virtio-serial-device", "-device", "virtconsole,chardev=c"]);
        match d.as_slice() {
            [DeviceConfig::Console(c)] => {
                assert_eq!(c.chardev.id, "c");
                c.chardev.backend.clone()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chardev_backends() {
        assert_eq!(chardev("stdio,id=c"), ChardevBackend::Stdio);
        assert_eq!(chardev("stdio,id=c,signal=off"), ChardevBackend::Stdio);
        assert_eq!(chardev("stdio,id=c,signal=on,mux=off"), ChardevBackend::Stdio);
        assert_eq!(chardev("pty,id=c"), ChardevBackend::Pty);
        assert_eq!(chardev("pty,id=c,server"), ChardevBackend::Pty);
        assert_eq!(chardev("pty,id=c,server=on,wait=off"), ChardevBackend::Pty);
        assert_eq!(chardev("backend=pty,id=c"), ChardevBackend::Pty);
        assert_eq!(
            chardev("file,id=c,path=/tmp/console.log"),
            ChardevBackend::File { path: "/tmp/console.log".into() }
        );
        assert_eq!(chardev("file,id=c,path=/tmp/a,,b,append=on"), ChardevBackend::File { path: "/tmp/a,b".into() });
        for (spec, want) in [
            ("socket,id=c,path=/s", socket("/s", false, false)),
            ("socket,id=c,path=/s,server=off", socket("/s", false, false)),
            ("socket,id=c,path=/s,noserver", socket("/s", false, false)),
            ("socket,id=c,path=/s,server", socket("/s", true, true)),
            ("socket,id=c,path=/s,server=on", socket("/s", true, true)),
            ("socket,id=c,path=/s,server,wait", socket("/s", true, true)),
            ("socket,id=c,path=/s,server,nowait", socket("/s", true, false)),
            ("socket,id=c,path=/s,server=on,wait=off", socket("/s", true, false)),
            ("socket,id=c,path=/s,nowait,server", socket("/s", true, false)),
        ] {
            assert_eq!(chardev(spec), want, "{spec}");
        }
    }

    #[test]
    fn chardev_errors() {
        for b in ["null", "vc", "tcp", "udp", "ringbuf", "serial", "pipe", "spicevmc", "STDIO"] {
            assert_invalid(
                err(&["-chardev", &format!("{b},id=c")]),
                "-chardev",
                "only the stdio, pty, file and socket backends are supported",
            );
        }
        assert_invalid(err(&["-chardev", "id=c"]), "-chardev", "expected BACKEND");
        assert_invalid(err(&["-chardev", "stdio"]), "-chardev", "id= is required");
        assert_invalid(err(&["-chardev", "pty,id=c d"]), "-chardev", "an id is a letter");
        assert_invalid(err(&["-chardev", "file,id=c"]), "-chardev", "path= is required");
        assert_invalid(err(&["-chardev", "socket,id=c,server"]), "-chardev", "path= is required");
        assert_invalid(err(&["-chardev", "file,id=c,path="]), "-chardev", "empty path");
        assert_invalid(
            err(&[
                "-chardev",
                "socket,id=c,host=localhost,port=4444,server",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c",
            ]),
            "-device",
            "only a monitor can use",
        );
        assert_invalid(
            err(&[
                "-chardev",
                "socket,id=c,fd=3",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c",
            ]),
            "-device",
            "only a monitor can use",
        );
        assert_invalid(
            err(&["-chardev", "socket,id=c,path=/s,wait=off"]),
            "-chardev",
            "wait= only applies to a listening socket",
        );
        assert_invalid(err(&["-chardev", "socket,id=c,path=/s,nowait"]), "-chardev", "wait= only applies");
        assert_invalid(err(&["-chardev", "stdio,id=c,mux=on"]), "-chardev", "no monitor");
        assert_invalid(err(&["-chardev", "stdio,id=c,signal=maybe"]), "-chardev", "on|off");
        assert_invalid(err(&["-chardev", "pty,id=c,server=maybe"]), "-chardev", "on|off");
        assert_invalid(err(&["-chardev", "pty,id=c,signal=off"]), "-chardev", "unknown property");
        assert_invalid(err(&["-chardev", "stdio,id=c,path=/x"]), "-chardev", "unknown property");
        assert_invalid(err(&["-chardev", "socket,id=c,path=/s,reconnect=1"]), "-chardev", "unknown property");
        assert_invalid(err(&["-chardev", "file,id=c,path=/a,logfile=/b"]), "-chardev", "unknown property");
        assert_invalid(err(&["-chardev", "pty,id=c", "-chardev", "file,id=c,path=/x"]), "-chardev", "duplicate id 'c'");
        // The device side.
        let e = err(&["-device", "virtio-serial-device", "-device", "virtconsole,chardev=virtiocon0"]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtconsole,chardev=virtiocon0': chardev 'virtiocon0' is not defined (no -chardev with id=virtiocon0)"
        );
        assert_invalid(
            err(&[
                "-chardev",
                "pty,id=c",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c",
            ]),
            "-device",
            "chardev 'c' is already used by another device",
        );
    }

    #[test]
    fn stdio_has_one_owner() {
        let e = err(&["-chardev", "stdio,id=a", "-chardev", "stdio,id=b"]);
        assert_eq!(
            e.to_string(),
            "-chardev: invalid value 'stdio,id=b': stdio is used twice (also by -chardev id=a); only one can own stdin"
        );
        for line in [
            &["-serial", "stdio", "-chardev", "stdio,id=c"][..],
            &["-chardev", "stdio,id=c", "-serial", "stdio"],
            &["-M", "microvm,legacy", "-chardev", "stdio,id=c", "-serial", "stdio"],
        ] {
            let e = err(line);
            assert_eq!(
                e.to_string(),
                "-chardev: invalid value 'stdio,id=c': stdio is used twice (also by -serial stdio); only one can own stdin",
                "{line:?}"
            );
        }
        // A pty console and the serial port on stdio are fine.
        let c = run(&[
            "-serial",
            "stdio",
            "-chardev",
            "pty,id=c",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=c",
        ])
        .unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Stdio));
        assert_eq!(c.devices, [console("c", ChardevBackend::Pty)]);
        // The implicit legacy-mode serial yields stdin to -chardev stdio.
        let c = run(&["-M", "microvm,legacy", "-chardev", "stdio,id=c"]).unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Null));
        assert_eq!(c.devices, []);
        // -serial none and -chardev stdio are fine too.
        let c = run(&["-serial", "none", "-chardev", "stdio,id=c"]).unwrap();
        assert_eq!(c.serial, Some(SerialConfig::Null));
        // Without legacy mode, nothing changes.
        assert_eq!(run(&["-chardev", "stdio,id=c"]).unwrap().serial, None);
    }

    #[test]
    fn consoles_sit_in_their_serial_devices_slots() {
        let base = ["-chardev", "pty,id=c0", "-chardev", "file,id=c1,path=/log", "-drive", "id=d,file=f,if=none"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            devs(&v)
        };
        let c0 = console("c0", ChardevBackend::Pty);
        let c1 = console("c1", ChardevBackend::File { path: "/log".into() });
        // Each virtconsole goes to the first earlier free virtio-serial-device.
        assert_eq!(
            with(&[
                "-device",
                "virtio-serial-device",
                "-device",
                "virtio-blk-device,drive=d",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c1",
                "-device",
                "virtconsole,chardev=c0",
            ]),
            [c1.clone(), block("d", "f"), c0.clone()]
        );
        // bus= picks one.
        assert_eq!(
            with(&[
                "-device",
                "virtio-serial-device,id=s0",
                "-device",
                "virtio-serial-device,id=s1",
                "-device",
                "virtconsole,chardev=c1,bus=s1.0,name=org.qemu.console.0,id=con1",
                "-device",
                "virtconsole,chardev=c0",
            ]),
            [c0.clone(), c1.clone()]
        );
        // Errors.
        let e = err(&["-chardev", "pty,id=c", "-device", "virtconsole,chardev=c"]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtconsole,chardev=c': virtconsole needs -device virtio-serial-device (given before it)"
        );
        assert_invalid(
            err(&["-chardev", "pty,id=c", "-device", "virtconsole,chardev=c", "-device", "virtio-serial-device"]),
            "-device",
            "virtconsole needs -device virtio-serial-device",
        );
        assert_invalid(
            err(&[
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c0",
                "-device",
                "virtconsole,chardev=c1",
            ]),
            "-device",
            "only one virtconsole per virtio-serial-device",
        );
        assert_invalid(
            err(&[
                "-device",
                "virtio-serial-device,id=s",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=c0,bus=s.0",
                "-device",
                "virtconsole,chardev=c1,bus=s.0",
            ]),
            "-device",
            "only one virtconsole per virtio-serial-device",
        );
        for bus in ["t.0", "s", "s.1", "virtio-serial-bus.0", ""] {
            let v = format!("virtconsole,chardev=c0,bus={bus}");
            let e = err(&["-device", "virtio-serial-device,id=s", "-device", &v]);
            assert!(matches!(e, ArgsError::InvalidValue { option: "-device", .. }), "{bus}: {e}");
        }
        let e = err(&["-device", "virtio-serial-device"]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtio-serial-device': a virtio-serial-device needs a -device virtconsole,chardev=ID after it"
        );
        assert_invalid(err(&["-device", "virtconsole"]), "-device", "chardev=ID is required");
        assert_invalid(err(&["-device", "virtio-serial-device,max_ports=2"]), "-device", "unknown property");
        assert_invalid(
            err(&["-device", "virtio-serial-device", "-device", "virtconsole,chardev=c,nr=1"]),
            "-device",
            "unknown property",
        );
        assert_invalid(
            err(&["-device", "virtio-serial-device", "-device", "virtserialport,chardev=c,name=org.test"]),
            "-device",
            "virtserialport is not supported",
        );
    }

    // ---- rng ----

    #[test]
    fn rng() {
        assert_eq!(devs(&["-device", "virtio-rng-device"]), [DeviceConfig::Rng]);
        assert_eq!(
            devs(&[
                "-object",
                "rng-random,filename=/dev/urandom,id=rng0",
                "-device",
                "virtio-rng-device,rng=rng0",
                "-device",
                "virtio-rng-device,rng=rng0,id=second",
            ]),
            [DeviceConfig::Rng, DeviceConfig::Rng]
        );
        for o in
            ["rng-random,id=r", "rng-random,id=r,filename=/dev/random", "rng-builtin,id=r", "qom-type=rng-builtin,id=r"]
        {
            assert_eq!(devs(&["-device", "virtio-rng-device,rng=r", "-object", o]), [DeviceConfig::Rng], "{o}");
        }
        // An unused object is fine.
        assert_eq!(devs(&["-object", "rng-builtin,id=r"]), []);

        let e = err(&["-device", "virtio-rng-device,rng=rng0"]);
        assert_eq!(
            e.to_string(),
            "-device: invalid value 'virtio-rng-device,rng=rng0': object 'rng0' is not defined (no -object with id=rng0)"
        );
        assert_invalid(err(&["-object", "rng-random,id=r,filename=/dev/hwrng"]), "-object", "getrandom");
        for o in ["rng-egd,id=r,chardev=c", "memory-backend-ram,id=m,size=1G", "iothread,id=io", "", "id=r"] {
            assert_invalid(err(&["-object", o]), "-object", "only rng-random and rng-builtin");
        }
        assert_invalid(err(&["-object", "rng-builtin"]), "-object", "id= is required");
        assert_invalid(err(&["-object", "rng-builtin,id=r,filename=/dev/urandom"]), "-object", "unknown property");
        assert_invalid(
            err(&["-object", "rng-builtin,id=r", "-object", "rng-random,id=r"]),
            "-object",
            "duplicate id 'r'",
        );
        assert_invalid(
            err(&["-device", "virtio-rng-device,max-bytes=1024,period=1000"]),
            "-device",
            "unknown property",
        );
    }

    // ---- -device in general ----

    #[test]
    fn device_errors() {
        for (alias, ours) in [
            ("virtio-blk", "virtio-blk-device"),
            ("virtio-blk-pci", "virtio-blk-device"),
            ("virtio-net", "virtio-net-device"),
            ("virtio-net-pci", "virtio-net-device"),
            ("virtio-serial", "virtio-serial-device"),
            ("virtio-serial-pci", "virtio-serial-device"),
            ("virtio-rng", "virtio-rng-device"),
            ("virtio-rng-pci", "virtio-rng-device"),
        ] {
            assert_invalid(
                err(&["-device", &format!("{alias},drive=d")]),
                "-device",
                &format!("microvm has no PCI bus; use {ours}"),
            );
        }
        for d in ["e1000", "isa-debug-exit,iobase=0xf4", "help", "?", "virtio-gpu-device", "virtio"] {
            assert_invalid(err(&["-device", d]), "-device", "unknown device");
        }
        assert_eq!(
            err(&["-device", "e1000"]).to_string(),
            "-device: invalid value 'e1000': unknown device; microvm has virtio-blk-device, \
             virtio-net-device, virtio-serial-device with virtconsole, and virtio-rng-device"
        );
        for d in ["", ",", "drive=d", "driver="] {
            assert_invalid(err(&["-device", d]), "-device", "expected a device name");
        }
        // The first element names the driver even with driver= later on.
        assert_eq!(devs(&["-device", "driver=virtio-rng-device"]), [DeviceConfig::Rng]);
        // Device ids share one namespace.
        assert_invalid(
            err(&["-device", "virtio-rng-device,id=x", "-device", "virtio-rng-device,id=x"]),
            "-device",
            "duplicate id 'x'",
        );
        assert_invalid(
            err(&[
                "-chardev",
                "pty,id=c",
                "-device",
                "virtio-serial-device,id=x",
                "-device",
                "virtconsole,chardev=c,id=x",
            ]),
            "-device",
            "duplicate id 'x'",
        );
        // Backend ids are per kind: one name may be a drive, a netdev, a
        // chardev, an object and a device at once.
        assert_eq!(
            devs(&[
                "-drive",
                "id=x,file=f,if=none",
                "-netdev",
                "tap,id=x",
                "-chardev",
                "pty,id=x",
                "-object",
                "rng-builtin,id=x",
                "-device",
                "virtio-blk-device,drive=x,id=x",
                "-device",
                "virtio-net-device,netdev=x",
                "-device",
                "virtio-serial-device",
                "-device",
                "virtconsole,chardev=x",
                "-device",
                "virtio-rng-device,rng=x",
            ]),
            [block("x", "f"), net("x", None, None), console("x", ChardevBackend::Pty), DeviceConfig::Rng,]
        );
        assert_invalid(err(&["-device", "virtio-rng-device,id=9"]), "-device", "an id is a letter");
    }

    #[test]
    fn first_error_wins_over_later_device_errors() {
        // A syntax error in an option is reported before a missing backend.
        let e = err(&["-device", "virtio-blk-device,drive=nope", "-drive", "id=d,file=f,format=qcow2"]);
        assert_invalid(e, "-drive", "format=raw");
        // And a missing kernel before any device resolution.
        assert_eq!(parse(args(&["-device", "virtio-blk-device,drive=nope"])), Err(ArgsError::MissingKernel));
    }

    #[test]
    fn short_form_booleans() {
        let p = props("-x", "first,flag,noflag2,no,k=v,,k=w,", Some("implied")).unwrap();
        let kv: Vec<(&str, &str)> = p.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        assert_eq!(kv, [("implied", "first"), ("flag", "on"), ("flag2", "off"), ("no", "on"), ("k", "v,k=w"),]);
        let p = props("-x", "flag", None).unwrap();
        assert_eq!((p[0].key.as_str(), p[0].value.as_str()), ("flag", "on"));
        assert!(props("-x", "", None).unwrap().is_empty());
    }

    #[test]
    fn help_text_names_the_devices() {
        let h = super::super::help_text();
        for word in [
            "virtio-blk-device",
            "virtio-net-device",
            "virtio-serial-device",
            "virtconsole",
            "virtio-rng-device",
            "rng-random",
            "rng-builtin",
            "if=none",
            "format=raw",
            "script=no",
            "writethrough",
            "directsync",
            "unsafe",
            "stdio,id=",
            "pty,id=",
            "file,id=",
            "socket,id=",
            "-nic none",
        ] {
            assert!(h.contains(word), "help text lacks {word}");
        }
    }
}
