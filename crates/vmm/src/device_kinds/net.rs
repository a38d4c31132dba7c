//! `-device virtio-net-device,netdev=ID` (with its `-netdev`), Firecracker's network
//! interfaces; with `-netdev tap,vhost=on`, the host kernel's vhost-net.

use super::props::{prop, Prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, Backend, BackendKind, BackendRef, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::{ConfigError, Error};
use crate::virtio_devices::BuildCtx;
use devices::rate_limiter::LimiterConfig;
use devices::virtio::net::{passt, Backend as NetIo, DgramSocket, StreamSocket, Tap};
use devices::virtio::vhost::net::VhostNet;

pub(super) const DESC: KindDesc = KindDesc {
    name: "virtio-net-device",
    help: "A NIC.",
    props: &[
        prop("netdev", Value::Text("ID"), None, "Required: the id of a -netdev."),
        prop(
            "mac",
            Value::Text("52:54:00:12:34:56"),
            None,
            "Six hex octets (':' or '-'), unicast; without it a locally administered MAC is picked.",
        ),
        prop(
            "mq",
            Value::Bool,
            Some("off"),
            "on: one queue pair per queue of the netdev (-netdev tap,queues=N) and a control queue, through which \
             the guest enables them (VIRTIO_NET_F_MQ); off: one pair.",
        ),
        PACKED,
        DEVICE_ID,
    ],
};

/// `-netdev TYPE,id=,...` + `-device virtio-net-device,netdev=[,mac=]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub id: String,
    pub backend: NetBackend,
    /// Guest MAC; `None` picks a locally administered one.
    pub mac: Option<[u8; 6]>,
    /// `vhost=on`: the host kernel's vhost_net moves the frames (tap only).
    pub vhost: bool,
    /// `-netdev tap,queues=N`: the tap's queues (1 for every other netdev).
    pub queues: u16,
    /// The device's `mq=on`: a queue pair per tap queue, and the control queue.
    pub mq: bool,
    /// Rate limits (Firecracker's `rx_rate_limiter`, `tx_rate_limiter`); none with vhost.
    pub limits: NetLimits,
    /// Firecracker's MMDS served on this interface (`PUT /mmds/config`); not with vhost,
    /// whose frames never pass through the VMM.
    pub mmds: Option<MmdsAttachment>,
}

impl NetConfig {
    /// The NIC `id` on `backend` with this kind's defaults for the rest: what a
    /// `-netdev` of one queue + `-device virtio-net-device,netdev=ID` give (a picked MAC,
    /// frames through microvm rather than vhost-net, one queue pair, no limits, no MMDS).
    /// A front end sets what its user gave over it, so a property added here reaches
    /// every front end by default.
    pub fn new(id: impl Into<String>, backend: NetBackend) -> NetConfig {
        NetConfig {
            id: id.into(),
            backend,
            mac: None,
            vhost: false,
            queues: 1,
            mq: false,
            limits: NetLimits::default(),
            mmds: None,
        }
    }
}

pub use devices::virtio::net::MmdsAttachment;

/// A NIC's rate limits, each direction its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetLimits {
    /// Frames to the guest.
    pub rx: LimiterConfig,
    /// Frames from the guest.
    pub tx: LimiterConfig,
}

/// Where a virtio-net device's frames go (`-netdev` types; docs/dropin.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetBackend {
    /// `-netdev tap`: an existing (persistent) tap `ifname`, `None` creating one
    /// named by the kernel from `tap%d`; or `fd=N`, an open tap the process
    /// inherited (ifname is then `None`).
    Tap { ifname: Option<String>, fd: Option<i32> },
    /// `-netdev stream`: QEMU's length-prefixed frames on a stream socket;
    /// `server`: listen and wait for one peer before the guest starts.
    Stream { server: bool, addr: SocketAddress },
    /// `-netdev dgram`: one frame per datagram, to `remote`, from `local`.
    Dgram { local: Option<SocketAddress>, remote: SocketAddress },
    /// `-netdev user`: a passt child with these options (the front end
    /// translated QEMU's).
    User { passt_args: Vec<String> },
}

pub use devices::virtio::net::SocketAddress;

pub(super) struct Net;

/// `mac=` as QEMU spells it: six two-digit hex octets separated by `:` or `-`; it must
/// be a unicast address the guest can use.
fn mac(p: &Prop) -> Result<[u8; 6], PropError> {
    let syntax = || p.error("expected six hex octets such as 52:54:00:12:34:56");
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
        return Err(p.error("a multicast address cannot be a NIC's MAC (the first octet must be even)"));
    }
    if mac == [0; 6] {
        return Err(p.error("the all-zero MAC is not valid"));
    }
    Ok(mac)
}

impl DeviceKind for Net {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let mq = args.get("mq").is_some_and(|p| p.on);
        let id = args.id()?;
        let mac = args.parsed("mac", mac)?;
        let netdev = args.reference("netdev")?;
        let netdev = args.required(netdev, "netdev=ID is required (the id of a -netdev)")?;
        // The rest comes with the netdev (bind).
        let config = NetConfig { mac, mq, ..NetConfig::new(String::new(), NetBackend::Tap { ifname: None, fd: None }) };
        let backend = BackendRef { kind: BackendKind::Netdev, id: netdev };
        Ok(Parsed::Slot { config: DeviceConfig::Net(config), id, backend: Some(backend) })
    }

    fn bind(&self, config: &mut DeviceConfig, backend: Backend, _value: &str) -> Result<(), PropError> {
        if let (DeviceConfig::Net(cfg), Backend::Netdev(netdev)) = (config, backend) {
            *cfg = NetConfig { mac: cfg.mac, mq: cfg.mq, ..netdev };
        }
        Ok(())
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["readv", "writev", "timerfd_create", "ioctl"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Net(cfg) = config else { return Err(wrong_config(DESC.name)) };
        let mut backends = open_backend(cfg)?;
        if !cfg.mq && backends.len() > 1 {
            // QEMU alike: without MQ the guest uses one pair; the other tap queues are
            // closed, which detaches them, so the kernel steers nothing to them.
            log::warn!(
                "netdev {}: queues={} but its virtio-net-device has mq=off: the guest uses one queue pair \
                 (add mq=on to use them all)",
                cfg.id,
                backends.len()
            );
            backends.truncate(1);
        }
        if cfg.vhost {
            let taps = backends
                .into_iter()
                .map(|b| match b {
                    NetIo::Tap(tap) => Ok(tap),
                    _ => Err(Error::from(ConfigError::VhostNeedsTap { id: cfg.id.clone() })),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if cfg.mmds.is_some() {
                return Err(ConfigError::MmdsWithVhost { id: cfg.id.clone() }.into());
            }
            let vhost_err = |source| Error::VhostNet { id: cfg.id.clone(), source };
            let net = if cfg.mq {
                VhostNet::open_multiqueue(taps, cfg.mac, ctx.mem)
            } else {
                let tap = taps.into_iter().next().ok_or_else(|| no_backend(cfg))?;
                VhostNet::open(tap, cfg.mac, ctx.mem)
            }
            .map_err(vhost_err)?;
            return ctx.add(net, "virtio-mmio (vhost-net)", DESC.name, Some(&cfg.id));
        }
        let mut net = if cfg.mq {
            devices::virtio::net::Net::multiqueue(backends, cfg.mac)?
        } else {
            let backend = backends.into_iter().next().ok_or_else(|| no_backend(cfg))?;
            devices::virtio::net::Net::new(backend, cfg.mac)?
        };
        net.set_limits(&cfg.limits.rx, &cfg.limits.tx);
        net.count_as(&cfg.id);
        if let Some(mmds) = &cfg.mmds {
            net.set_mmds(mmds);
        }
        ctx.add(net, "virtio-mmio (virtio-net)", DESC.name, Some(&cfg.id))
    }

    fn shape(&self, config: &DeviceConfig) -> &'static str {
        match config {
            // Another device model: a vhost-net's saved state cannot load into a virtio-net.
            DeviceConfig::Net(n) if n.vhost => "virtio-net-device (vhost)",
            _ => DESC.name,
        }
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let tap = NetBackend::Tap { ifname: Some("tap0".into()), fd: None };
        let netdev = NetConfig { vhost: true, queues: 4, ..NetConfig::new("n0", tap) };
        let config = NetConfig { mac: Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]), mq: true, ..netdev.clone() };
        vec![super::Example {
            name: DESC.name,
            props: &[("netdev", "n0"), ("mac", "52:54:00:12:34:56"), ("mq", "on")],
            backend: Some(Backend::Netdev(netdev)),
            config: DeviceConfig::Net(config),
        }]
    }
}

/// A netdev that opened nothing (cannot happen: every netdev opens at least one).
fn no_backend(cfg: &NetConfig) -> Error {
    ConfigError::NoBackend { id: cfg.id.clone() }.into()
}

/// Opens (or, for `-netdev user`, starts) the NIC's backend: one per queue of a
/// multiqueue tap. Here, on the main thread before any filter exists: connecting,
/// accepting, and forking passt are no calls of the device thread's.
fn open_backend(cfg: &NetConfig) -> Result<Vec<NetIo>, Error> {
    let socket_err = |source| Error::NetSocket { id: cfg.id.clone(), source };
    Ok(vec![match &cfg.backend {
        NetBackend::Tap { ifname, fd } => {
            let taps = match fd {
                Some(fd) => vec![Tap::from_fd(*fd)?],
                None => Tap::open_queues(ifname.as_deref(), cfg.queues)?,
            };
            if let (None, None, Some(tap)) = (ifname, fd, taps.first()) {
                // As QEMU does: the user needs the name to configure the host side.
                log::info!(target: devices::NOTICE, "microvm: netdev {} uses tap device {}", cfg.id, tap.name());
            }
            return Ok(taps.into_iter().map(NetIo::Tap).collect());
        }
        NetBackend::Stream { server: true, addr } => {
            log::info!(target: devices::NOTICE, "microvm: netdev {} waits for a connection on {addr}", cfg.id);
            NetIo::Stream(StreamSocket::accept(addr).map_err(socket_err)?)
        }
        NetBackend::Stream { server: false, addr } => NetIo::Stream(StreamSocket::connect(addr).map_err(socket_err)?),
        NetBackend::Dgram { local, remote } => {
            NetIo::Dgram(DgramSocket::open(local.as_ref(), remote).map_err(socket_err)?)
        }
        NetBackend::User { passt_args } => {
            let name = format!("{} (passt)", cfg.id);
            let passt =
                passt::spawn(passt_args, &name).map_err(|source| Error::Passt { id: cfg.id.clone(), source })?;
            log::debug!("netdev {}: passt runs as pid {}", cfg.id, passt.pid);
            NetIo::Stream(passt.socket)
        }
    }])
}
