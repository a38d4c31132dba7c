//! The backend options `-drive`, `-netdev`, `-chardev`, `-object`: each is
//! checked against its description (`device_props.rs`) and kept by id until
//! the devices and monitors using it are resolved (`devices.rs`).

use std::path::PathBuf;

use vmm::config::{
    CacheMode, ChardevBackend, DriveLimits, Engine, ImageFormat, ImageOptions, LogFile, MonitorSocket, NetBackend,
};

use super::control::{parse_port, socket_mode, tcp_host};
use super::device_props::{CHARDEV_KINDS, DRIVE_PROPS, NETDEV_KINDS, OBJECT_KINDS};
use super::keyval::{kind_name, kind_settings, settings, Setting};
use super::netdev::NETDEV;
use super::schema::KindDesc;
use super::{invalid, netdev, unhandled, ArgsError};

pub(super) const DRIVE: &str = "-drive";
pub(super) const CHARDEV: &str = "-chardev";
pub(super) const OBJECT: &str = "-object";

pub(super) struct Drive {
    pub(super) id: String,
    pub(super) path: PathBuf,
    pub(super) read_only: bool,
    pub(super) cache: CacheMode,
    pub(super) limits: DriveLimits,
    pub(super) engine: Engine,
    /// `format=`, `snapshot=`, `discard=`.
    pub(super) image: ImageOptions,
    /// `if=none` was written (see `devices.rs` on unused drives).
    pub(super) if_none: bool,
    pub(super) value: String,
}

pub(super) struct Netdev {
    pub(super) id: String,
    pub(super) backend: NetBackend,
    /// `vhost=on` (tap only).
    pub(super) vhost: bool,
    /// `queues=N` (tap only; 1 otherwise).
    pub(super) queues: u16,
}

pub(super) struct Chardev {
    pub(super) id: String,
    pub(super) backend: Backend,
    pub(super) logfile: Option<LogFile>,
    /// `mux=on`: shared by several front ends (see `mux.rs`).
    pub(super) mux: bool,
}

/// A `-chardev` backend. Consoles take the [`ChardevBackend`]s; the sockets
/// only a monitor can use (TCP, an inherited fd) are kept apart so that a
/// console naming one gets a clear error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Backend {
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
    /// What a QMP monitor on this chardev talks on; `Err` says what it is instead.
    pub(super) fn monitor_socket(&self) -> Result<MonitorSocket, &'static str> {
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
            Backend::Plain(ChardevBackend::Null) => return Err("null"),
            // Consoles get TCP as Backend::Tcp; never built as Plain.
            Backend::Plain(ChardevBackend::Tcp { .. }) => return Err("a TCP console socket"),
            Backend::Plain(ChardevBackend::MuxPort(_)) => return Err("a mux front end"),
        })
    }
}

/// Every backend declared, in command-line order.
#[derive(Default)]
pub(super) struct Backends {
    pub(super) drives: Vec<Drive>,
    pub(super) netdevs: Vec<Netdev>,
    pub(super) chardevs: Vec<Chardev>,
    /// Ids of the rng `-object`s.
    pub(super) rng_objects: Vec<String>,
    /// Ids of the `-object iothread`s.
    pub(super) iothreads: Vec<String>,
    /// The `throttling.group` names given so far (one drive each).
    pub(super) throttle_groups: Vec<String>,
    /// `-fsdev`s and the fsdevs of `-virtfs` (`ninep.rs`).
    pub(super) fsdevs: Vec<super::ninep::Fsdev>,
}

/// The kind `value` names among `kinds`, or `None` (with the name, if any).
fn find_kind(
    option: &'static str,
    value: &str,
    implied: &'static str,
    kinds: &'static [KindDesc],
) -> Result<Result<&'static KindDesc, Option<String>>, ArgsError> {
    let name = kind_name(option, value, implied)?;
    Ok(kinds.iter().find(|k| Some(k.name) == name.as_deref()).ok_or(name))
}

impl Backends {
    /// `-drive id=ID,file=PATH[,format=raw|qcow2][,if=none][,readonly=on|off][,cache=MODE]...`
    pub(super) fn drive(&mut self, value: &str) -> Result<(), ArgsError> {
        let mut id = None;
        let mut path = None;
        let mut read_only = false;
        let mut cache = CacheMode::default();
        let mut aio = None;
        let mut image = ImageOptions::default();
        let mut if_none = false;
        let mut cdrom = false;
        let mut throttling = throttling::Throttling::default();
        for s in settings(DRIVE, value, None, DRIVE_PROPS, DRIVE)? {
            if throttling.take(&s)? {
                continue;
            }
            match s.name() {
                "id" => id = Some(s.id(DRIVE)?),
                "file" => path = Some(s.path(DRIVE)?),
                // No probing: a missing format= means raw.
                "format" if s.value == "raw" => image.format = ImageFormat::Raw,
                "format" if s.value == "qcow2" => image.format = ImageFormat::Qcow2,
                "format" => {
                    return Err(invalid(
                        DRIVE,
                        &s.text,
                        format!(
                            "only format=raw and format=qcow2 are supported, not {}; convert the image with \
                             qemu-img convert -O qcow2",
                            s.value.escape_debug()
                        ),
                    ))
                }
                "discard" => {
                    image.discard = Some(match s.value.as_str() {
                        "unmap" | "on" => true,
                        "ignore" | "off" => false,
                        _ => return Err(invalid(DRIVE, &s.text, "expected discard=unmap, on, ignore or off")),
                    })
                }
                "media" if s.value == "cdrom" => cdrom = true,
                "media" if s.value == "disk" => cdrom = false,
                "media" => return Err(invalid(DRIVE, &s.text, "expected media=disk or media=cdrom")),
                "if" if s.value == "none" => if_none = true,
                "if" => {
                    return Err(invalid(
                        DRIVE,
                        &s.text,
                        "microvm has no other bus: use if=none with -device virtio-blk-device,drive=ID",
                    ))
                }
                "readonly" => read_only = s.on,
                "cache" => cache = parse_cache(&s)?,
                "aio" => aio = Some(s.value.clone()),
                "snapshot" => image.snapshot = s.on,
                name => return Err(unhandled(DRIVE, name)),
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
        let engine = parse_aio(aio.as_deref(), cache)?;
        // A CD-ROM is a read-only disk to the guest.
        let read_only = read_only || cdrom;
        let limits = throttling.limits(value)?;
        if let Some(group) = &throttling.group {
            // QEMU's groups share one budget among their drives; microvm's limits are
            // per drive, so a group can only have one.
            if self.throttle_groups.iter().any(|g| g == group) {
                return Err(invalid(
                    DRIVE,
                    value,
                    format!(
                        "throttling group '{group}' already has a drive; microvm does not share limits between drives"
                    ),
                ));
            }
            self.throttle_groups.push(group.clone());
        }
        self.drives.push(Drive { id, path, read_only, cache, limits, engine, image, if_none, value: value.to_owned() });
        Ok(())
    }

    /// `-netdev tap|user|stream|dgram,id=ID,...`.
    pub(super) fn netdev(&mut self, value: &str) -> Result<(), ArgsError> {
        self.netdev_or(value, None)
    }

    /// A `-netdev` whose id, when `value` gives none, is `default_id` (`-nic`'s
    /// generated one, QEMU's `__org.qemu.nicN`, which no user id can be).
    pub(super) fn netdev_or(&mut self, value: &str, default_id: Option<String>) -> Result<(), ArgsError> {
        let kind = match find_kind(NETDEV, value, "type", NETDEV_KINDS)? {
            Ok(kind) => kind,
            Err(Some(name)) if name == "socket" => {
                return Err(invalid(
                    NETDEV,
                    value,
                    "-netdev socket is not supported; use its successors -netdev stream (connect=/listen=) or \
                     -netdev dgram (udp=)",
                ))
            }
            Err(Some(_)) => {
                return Err(invalid(NETDEV, value, "only -netdev tap, user, stream and dgram are supported"))
            }
            Err(None) => {
                return Err(invalid(NETDEV, value, "expected tap|user|stream|dgram,id=ID,... (see -netdev help)"))
            }
        };
        let settings = kind_settings(NETDEV, value, "type", kind)?;
        let id = settings.iter().find(|s| s.name() == "id").map(|s| s.id(NETDEV)).transpose()?;
        let id = id.or(default_id);
        let backend = match kind.name {
            "stream" => Some(netdev::stream(settings, value)?),
            "dgram" => Some(netdev::dgram(settings, value)?),
            "user" => Some(netdev::user(settings, value)?),
            _ => None,
        };
        if let Some(backend) = backend {
            let id = self.netdev_id(id, value)?;
            self.netdevs.push(Netdev { id, backend, vhost: false, queues: 1 });
            return Ok(());
        }
        self.tap(kind, value, id)
    }

    /// A new netdev's id: given, and not taken.
    fn netdev_id(&self, id: Option<String>, value: &str) -> Result<String, ArgsError> {
        let Some(id) = id else {
            return Err(invalid(NETDEV, value, "id= is required (-device virtio-net-device,netdev=ID refers to it)"));
        };
        if self.netdevs.iter().any(|n| n.id == id) {
            return Err(invalid(NETDEV, value, format!("duplicate id '{id}'")));
        }
        Ok(id)
    }

    /// `-netdev tap,id=ID[,ifname=NAME][,script=no][,downscript=no][,vhost=off]...`
    fn tap(&mut self, kind: &'static KindDesc, value: &str, id: Option<String>) -> Result<(), ArgsError> {
        let mut ifname = None;
        let mut vhost = false;
        let mut fd = None;
        let mut queues = 1;
        for s in kind_settings(NETDEV, value, "type", kind)? {
            match s.name() {
                "id" => {} // read by netdev_or
                "fd" => fd = Some(parse_fd(NETDEV, &s)?),
                "ifname" => ifname = Some(check_ifname(&s)?),
                // An empty script is QEMU's other spelling of no; without
                // script=, QEMU would run /etc/qemu-ifup: microvm never runs
                // scripts, so the tap must be set up beforehand either way.
                "script" | "downscript" if matches!(s.value.as_str(), "no" | "") => {}
                "script" | "downscript" => {
                    return Err(invalid(
                        NETDEV,
                        &s.text,
                        "microvm never runs network scripts; use script=no,downscript=no and set the tap up beforehand",
                    ))
                }
                "vhost" => vhost = s.on,
                "queues" => queues = parse_queues(&s)?,
                "fds" | "vhostfds" => {
                    return Err(invalid(
                        NETDEV,
                        &s.text,
                        "inherited multiqueue tap fds are not supported; give ifname= and queues=N (microvm opens \
                         the queues), or one tap with fd=",
                    ))
                }
                "vnet_hdr" if s.on => {}
                "vnet_hdr" => {
                    return Err(invalid(
                        NETDEV,
                        &s.text,
                        "microvm always uses the virtio-net header on the tap; use vnet_hdr=on",
                    ))
                }
                name => return Err(unhandled(NETDEV, name)),
            }
        }
        let id = self.netdev_id(id, value)?;
        if fd.is_some() && ifname.is_some() {
            return Err(invalid(NETDEV, value, "give fd= or ifname=, not both (the fd is already an interface)"));
        }
        if fd.is_some() && queues > 1 {
            return Err(invalid(NETDEV, value, "fd= is one tap queue: queues=N needs ifname= (or none)"));
        }
        self.netdevs.push(Netdev { id, backend: NetBackend::Tap { ifname, fd }, vhost, queues });
        Ok(())
    }

    /// `-chardev stdio|pty|file|socket,id=ID,...`; returns the id.
    pub(super) fn chardev(&mut self, value: &str) -> Result<&Chardev, ArgsError> {
        let kind = match find_kind(CHARDEV, value, "backend", CHARDEV_KINDS)? {
            Ok(kind) => kind,
            Err(Some(_)) => {
                return Err(invalid(
                    CHARDEV,
                    value,
                    "only the null, stdio, pty, file and socket backends are supported",
                ))
            }
            Err(None) => {
                return Err(invalid(
                    CHARDEV,
                    value,
                    "expected BACKEND,id=ID,... with BACKEND null, stdio, pty, file or socket",
                ))
            }
        };
        let mut id = None;
        let (mut path, mut host, mut port, mut fd) = (None, None, None, None);
        let (mut server, mut wait, mut append) = (None, None, false);
        let (mut logfile, mut logappend, mut mux) = (None, false, false);
        for s in kind_settings(CHARDEV, value, "backend", kind)? {
            match s.name() {
                "id" => id = Some(s.id(CHARDEV)?),
                "mux" => mux = s.on,
                "path" => path = Some(s.path(CHARDEV)?),
                "append" => append = s.on,
                "host" => host = Some(s.value.clone()),
                "port" => port = Some(parse_port(CHARDEV, &s.text, &s.value)?),
                "fd" => fd = Some(parse_fd(CHARDEV, &s)?),
                "logfile" => logfile = Some(s.path(CHARDEV)?),
                "logappend" => logappend = s.on,
                "server" => server = Some(s.on),
                "wait" => wait = Some((s.on, s.text.clone())),
                name => return Err(unhandled(CHARDEV, name)),
            }
        }
        let Some(id) = id else {
            return Err(invalid(CHARDEV, value, "id= is required"));
        };
        let backend = match kind.name {
            "stdio" => Backend::Plain(ChardevBackend::Stdio),
            "null" => Backend::Plain(ChardevBackend::Null),
            "pty" => Backend::Plain(ChardevBackend::Pty),
            "file" => {
                let Some(path) = path else {
                    return Err(invalid(CHARDEV, value, "path= is required"));
                };
                Backend::Plain(ChardevBackend::File { path, append })
            }
            _ => {
                let (server, wait) = socket_mode(CHARDEV, server, wait)?;
                match (path, host, fd) {
                    (Some(path), None, None) => Backend::Plain(ChardevBackend::Socket { path, server, wait }),
                    (None, Some(host), None) => {
                        let Some(port) = port else {
                            return Err(invalid(CHARDEV, value, "host= needs port="));
                        };
                        Backend::Tcp { host: tcp_host(&host, server), port, server, wait }
                    }
                    (None, None, Some(fd)) if server => {
                        return Err(invalid(
                            CHARDEV,
                            value,
                            format!(
                                "fd={fd} with server=on (an inherited listening socket) is not supported; \
                                 pass a connected socket"
                            ),
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
        let logfile = logfile.map(|path| LogFile { path, append: logappend });
        self.chardevs.push(Chardev { id, backend, logfile, mux });
        Ok(&self.chardevs[self.chardevs.len() - 1])
    }

    /// `-object rng-random,id=ID[,filename=/dev/urandom]` or
    /// `-object rng-builtin,id=ID`: accepted as backends for virtio-rng-device,
    /// which always draws from getrandom(2), the same pool as those files.
    /// `-object iothread,id=ID`: a thread `virtio-blk-device,iothread=ID` serves on.
    pub(super) fn object(&mut self, value: &str) -> Result<(), ArgsError> {
        let Ok(kind) = find_kind(OBJECT, value, "qom-type", OBJECT_KINDS)? else {
            return Err(invalid(OBJECT, value, "supported objects: rng-random, rng-builtin, iothread, memory-backend-memfd, memory-backend-file, memory-backend-ram"));
        };
        let mut id = None;
        for s in kind_settings(OBJECT, value, "qom-type", kind)? {
            match s.name() {
                "id" => id = Some(s.id(OBJECT)?),
                "filename" if matches!(s.value.as_str(), "/dev/urandom" | "/dev/random") => {}
                "filename" => {
                    return Err(invalid(
                        OBJECT,
                        &s.text,
                        "virtio-rng always uses getrandom(2); filename= may only be /dev/urandom or /dev/random",
                    ))
                }
                name => return Err(unhandled(OBJECT, name)),
            }
        }
        let Some(id) = id else {
            return Err(invalid(OBJECT, value, "id= is required"));
        };
        // One namespace for every -object's id, as QEMU's /objects.
        if self.rng_objects.contains(&id) || self.iothreads.contains(&id) {
            return Err(invalid(OBJECT, value, format!("duplicate id '{id}'")));
        }
        if kind.name == "iothread" {
            self.iothreads.push(id);
        } else {
            self.rng_objects.push(id);
        }
        Ok(())
    }
}

fn parse_cache(s: &Setting) -> Result<CacheMode, ArgsError> {
    Ok(match s.value.as_str() {
        "writeback" => CacheMode::Writeback,
        "writethrough" => CacheMode::Writethrough,
        "none" | "off" => CacheMode::None,
        "directsync" => CacheMode::Directsync,
        "unsafe" => CacheMode::Unsafe,
        _ => return Err(invalid(DRIVE, &s.text, "expected writeback, writethrough, none, directsync or unsafe")),
    })
}

/// `aio=`: which engine serves the drive (docs/dropin.md). Without it, the sync engine
/// (the fastest measured at one request at a time); `threads` is a pool of worker
/// threads, as QEMU's; `native` is io_uring, Linux AIO's successor, with QEMU's rule
/// that it needs O_DIRECT.
fn parse_aio(aio: Option<&str>, cache: CacheMode) -> Result<Engine, ArgsError> {
    Ok(match aio {
        None => Engine::Sync,
        Some("threads") => Engine::Threads,
        Some("io_uring") => Engine::IoUring,
        Some("native") if matches!(cache, CacheMode::None | CacheMode::Directsync) => Engine::IoUring,
        Some("native") => {
            // QEMU's own words (block/file-posix.c).
            return Err(invalid(
                DRIVE,
                "aio=native",
                "aio=native was specified, but it requires cache.direct=on, which was not specified.",
            ));
        }
        Some(other) => return Err(invalid(DRIVE, other, "expected threads, native or io_uring")),
    })
}

/// `fd=N`: a descriptor number the process inherited.
fn parse_fd(option: &'static str, s: &Setting) -> Result<i32, ArgsError> {
    if !s.value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(option, &s.text, "expected a file descriptor number"));
    }
    s.value.parse().map_err(|_| invalid(option, &s.text, "expected a file descriptor number"))
}

/// `ifname=` as Linux accepts it (`dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:` or whitespace (nor, here, control characters).
/// A `%d` lets the kernel pick the number.
fn check_ifname(s: &Setting) -> Result<String, ArgsError> {
    let name = &s.value;
    let reason = if name.is_empty() || name.len() > 15 {
        "an interface name has 1 to 15 bytes"
    } else if name == "." || name == ".." {
        "not a valid interface name"
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()) {
        "an interface name cannot contain '/', ':', spaces or control characters"
    } else {
        return Ok(name.clone());
    };
    Err(invalid(NETDEV, &s.text, reason))
}

#[cfg(test)]
mod tests;
mod throttling;

/// `queues=N` of `-netdev tap`: 1 to the tun driver's limit on a tap's queues.
fn parse_queues(s: &Setting) -> Result<u16, ArgsError> {
    let max = devices::virtio::net::MAX_QUEUE_PAIRS;
    match s.value.parse::<u16>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            NETDEV,
            &s.text,
            format!("queues must be a whole number from 1 to {max} (a tap's most queues)"),
        )),
    }
}
