//! Creates the virtio-mmio devices of a `VmConfig`: one slot each (MMIO
//! window, GSI), ioeventfds for queue notifications, an irqfd for the
//! interrupt, the transport on the MMIO bus, and the device's handler on the
//! device event loop. Also produces the `virtio_mmio.device=` kernel
//! command-line entries that tell the guest where the devices are.

use crate::config::{
    BlockConfig, CacheMode, ChardevBackend, ChardevConfig, DeviceConfig, NetBackend, NetConfig, NinePConfig,
};
use crate::device_registry::{DeviceHandle, DeviceRegistry};
use crate::device_thread::DeviceEventLoop;
use crate::kvm::KvmError;
use crate::monitor::Mux;
use crate::Error;
use arch::layout::{VIRTIO_MMIO_IRQS, VIRTIO_MMIO_SLOTS, VIRTIO_MMIO_SLOT_SIZE, VIRTIO_MMIO_START};
use devices::bus::Bus;
use devices::chardev::{self, Chardev};
use devices::guest_events::GuestEvents;
use devices::guest_memory::GuestMemoryMmap;
use devices::virtio::balloon::Balloon;
use devices::virtio::block::{Block, BlockOptions};
use devices::virtio::console::{Console, MultiportConsole, PortBackend};
use devices::virtio::hvsock::HybridVsock;
use devices::virtio::input::VirtioKeyboard;
use devices::virtio::mmio::{MmioTransport, REG_QUEUE_NOTIFY};
use devices::virtio::net::{passt, Backend, DgramSocket, Net, StreamSocket, Tap};
use devices::virtio::ninep::{self, Virtio9p};
use devices::virtio::rng::Rng;
use devices::virtio::vhost::fs::VhostUserFs;
use devices::virtio::vhost::net::VhostNet;
use devices::virtio::vhost::vsock::VhostVsock;
use devices::virtio::{Interrupt, VirtioDevice};
use event_manager::{MutEventSubscriber, SubscriberOps};
use kvm_ioctls::{IoEventAddress, VmFd};
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Where one device lives in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub addr: u64,
    pub irq: u32,
    /// `packed=on`: the transport offers VIRTIO_F_RING_PACKED.
    pub packed: bool,
}

pub fn slot(index: u32) -> Slot {
    Slot {
        addr: VIRTIO_MMIO_START + u64::from(index) * VIRTIO_MMIO_SLOT_SIZE,
        irq: VIRTIO_MMIO_IRQS[index as usize],
        packed: false,
    }
}

/// The kernel command-line entry describing a slot (Linux's
/// VIRTIO_MMIO_CMDLINE_DEVICES syntax: size@base:irq).
pub fn cmdline_entry(slot: Slot) -> String {
    format!("virtio_mmio.device={}@{:#x}:{}", VIRTIO_MMIO_SLOT_SIZE, slot.addr, slot.irq)
}

/// A device that implements both halves: the transport's model and the
/// event loop's handler.
trait EventDevice: VirtioDevice + MutEventSubscriber {}
impl<T: VirtioDevice + MutEventSubscriber> EventDevice for T {}

/// What the devices are, for the kernel command line and the monitor's queries.
#[derive(Default)]
pub struct DeviceInventory {
    /// `virtio_mmio.device=` entries, one per slot in use.
    pub cmdline_entries: Vec<String>,
    pub chardevs: Vec<ChardevInfo>,
    pub blocks: Vec<BlockInfo>,
    /// Every device by id, with its typed handle.
    pub registry: DeviceRegistry,
    /// Where devices report the guest's changes for the monitors (only made when a
    /// device reports any: the balloon, a virtio-serial port with an id).
    pub guest_events: Option<Arc<GuestEvents>>,
    /// Each virtio-9p device's server, by its fsdev id: `Vm::run` starts it on a thread
    /// of its own (kind `ninep`).
    pub ninep_workers: Vec<(String, ninep::Worker)>,
}

impl DeviceInventory {
    fn guest_events(&mut self) -> Result<Arc<GuestEvents>, Error> {
        if let Some(events) = &self.guest_events {
            return Ok(events.clone());
        }
        let events = GuestEvents::new().map_err(|source| Error::Io { what: "guest event queue", source })?;
        self.guest_events = Some(events.clone());
        Ok(events)
    }
}

/// A chardev as `query-chardev` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevInfo {
    pub label: String,
    /// QEMU's description: `stdio`, `pty:/dev/pts/N`, `file`, `unix:PATH,server=on`.
    pub filename: String,
}

/// A disk as `query-block` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub id: String,
    pub path: std::path::PathBuf,
    pub read_only: bool,
    pub cache: CacheMode,
    /// Bytes, when set-up read it.
    pub size: u64,
}

impl BlockInfo {
    /// QEMU's `BlockdevCacheInfo` for the cache mode.
    pub fn cache_info(&self) -> serde_json::Value {
        let (writeback, direct, no_flush) = match self.cache {
            CacheMode::Writeback => (true, false, false),
            CacheMode::Writethrough => (false, false, false),
            CacheMode::None => (true, true, false),
            CacheMode::Directsync => (false, true, false),
            CacheMode::Unsafe => (true, false, true),
        };
        serde_json::json!({ "writeback": writeback, "direct": direct, "no-flush": no_flush })
    }
}

/// Builds every configured device; returns what they are.
pub fn create_devices(
    configs: &[DeviceConfig],
    packed_rings: &[usize],
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    event_loop: &mut DeviceEventLoop,
    muxes: &mut [Mux],
) -> Result<DeviceInventory, Error> {
    if configs.len() > VIRTIO_MMIO_SLOTS as usize {
        return Err(Error::Config(format!(
            "{} virtio devices requested, but microvm has {VIRTIO_MMIO_SLOTS} virtio-mmio slots",
            configs.len()
        )));
    }
    let mut inventory = DeviceInventory::default();
    for (index, config) in configs.iter().enumerate() {
        let slot = Slot { packed: packed_rings.contains(&index), ..slot(index as u32) };
        match config {
            DeviceConfig::Block(cfg) => {
                let disk = Block::new(block_options(cfg))?;
                let size = std::fs::metadata(&cfg.path).map_or(0, |m| m.len());
                let (id, path) = (cfg.id.clone(), cfg.path.clone());
                inventory.blocks.push(BlockInfo { id, path, read_only: cfg.read_only, cache: cfg.cache, size });
                let disk = Arc::new(Mutex::new(disk));
                attach(disk.clone(), "virtio-mmio (virtio-blk)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, Some(&cfg.id), slot, DeviceHandle::Block(disk))?;
            }
            DeviceConfig::Net(cfg) => {
                let backend = open_net_backend(cfg)?;
                if cfg.vhost {
                    let Backend::Tap(tap) = backend else {
                        return Err(Error::Config(format!("netdev {}: vhost=on needs a tap", cfg.id)));
                    };
                    if cfg.mmds.is_some() {
                        return Err(Error::Config(format!("netdev {}: the MMDS needs vhost=off", cfg.id)));
                    }
                    let net = VhostNet::open(tap, cfg.mac, mem)
                        .map_err(|source| Error::VhostNet { id: cfg.id.clone(), source })?;
                    let net = Arc::new(Mutex::new(net));
                    attach(net.clone(), "virtio-mmio (vhost-net)", slot, vm, mem, mmio, event_loop)?;
                    register(&mut inventory, Some(&cfg.id), slot, DeviceHandle::VhostNet(net))?;
                    inventory.cmdline_entries.push(cmdline_entry(slot));
                    continue;
                }
                let mut net = Net::new(backend, cfg.mac)?;
                net.set_limits(&cfg.limits.rx, &cfg.limits.tx);
                net.count_as(&cfg.id);
                if let Some(mmds) = &cfg.mmds {
                    net.set_mmds(mmds);
                }
                let net = Arc::new(Mutex::new(net));
                attach(net.clone(), "virtio-mmio (virtio-net)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, Some(&cfg.id), slot, DeviceHandle::Net(net))?;
            }
            DeviceConfig::Console(cfg) => {
                let chardev = open_chardev(&cfg.chardev, muxes)?;
                // A mux's front end is not a chardev of its own: the mux is listed.
                if !matches!(cfg.chardev.backend, ChardevBackend::MuxPort(_)) {
                    let filename = chardev_filename(&cfg.chardev.backend, chardev.pty_path());
                    inventory.chardevs.push(ChardevInfo { label: cfg.chardev.id.clone(), filename });
                }
                let console = Console::new(chardev)?;
                let console = Arc::new(Mutex::new(console));
                attach(console.clone(), "virtio-mmio (virtio-console)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, Some(&cfg.chardev.id), slot, DeviceHandle::Console(console))?;
            }
            DeviceConfig::SerialPorts(cfg) => {
                let mut ports = Vec::with_capacity(cfg.ports.len());
                for port in &cfg.ports {
                    let chardev = open_chardev(&port.chardev, muxes)?;
                    if !matches!(port.chardev.backend, ChardevBackend::MuxPort(_)) {
                        let filename = chardev_filename(&port.chardev.backend, chardev.pty_path());
                        inventory.chardevs.push(ChardevInfo { label: port.chardev.id.clone(), filename });
                    }
                    ports.push(PortBackend {
                        chardev,
                        id: port.id.clone(),
                        name: port.name.clone(),
                        console: port.console,
                    });
                }
                let mut serial = MultiportConsole::new(ports, cfg.max_ports)?;
                if cfg.ports.iter().any(|p| p.id.is_some()) {
                    serial.report_to(inventory.guest_events()?);
                }
                let serial = Arc::new(Mutex::new(serial));
                attach(serial.clone(), "virtio-mmio (virtio-serial)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, None, slot, DeviceHandle::VirtioSerial(serial))?;
            }
            DeviceConfig::Balloon(cfg) => {
                let mut balloon =
                    Balloon::new(cfg.options).map_err(|source| Error::Io { what: "virtio-balloon", source })?;
                balloon.report_to(inventory.guest_events()?);
                let balloon = Arc::new(Mutex::new(balloon));
                attach(balloon.clone(), "virtio-mmio (virtio-balloon)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, cfg.id.as_deref(), slot, DeviceHandle::Balloon(balloon))?;
            }
            DeviceConfig::Keyboard => {
                let keyboard = VirtioKeyboard::new().map_err(|source| Error::Io { what: "virtio-keyboard", source })?;
                let keyboard = Arc::new(Mutex::new(keyboard));
                attach(keyboard.clone(), "virtio-mmio (virtio-input)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, None, slot, DeviceHandle::Keyboard(keyboard))?;
            }
            DeviceConfig::Rng(limits) => {
                let rng = Rng::limited(limits).map_err(|source| Error::Io { what: "virtio-rng", source })?;
                let rng = Arc::new(Mutex::new(rng));
                attach(rng.clone(), "virtio-mmio (virtio-rng)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, None, slot, DeviceHandle::Rng(rng))?;
            }
            DeviceConfig::Fs(cfg) => {
                let fs = VhostUserFs::connect(&cfg.socket, &cfg.tag, cfg.queue_size)
                    .map_err(|source| Error::Fs { tag: cfg.tag.clone(), source })?;
                let fs = Arc::new(Mutex::new(fs));
                attach(fs.clone(), "virtio-mmio (vhost-user-fs)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, cfg.id.as_deref(), slot, DeviceHandle::Fs(fs))?;
            }
            DeviceConfig::NineP(cfg) => {
                let device = open_ninep(cfg, &mut inventory)?;
                let device = Arc::new(Mutex::new(device));
                attach(device.clone(), "virtio-mmio (virtio-9p)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, Some(&cfg.id), slot, DeviceHandle::NineP(device))?;
            }
            DeviceConfig::Vsock(cfg) => {
                let vsock = VhostVsock::open(cfg.cid, mem)?;
                let vsock = Arc::new(Mutex::new(vsock));
                attach(vsock.clone(), "virtio-mmio (vhost-vsock)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, cfg.id.as_deref(), slot, DeviceHandle::Vsock(vsock))?;
            }
            DeviceConfig::HybridVsock(cfg) => {
                let vsock = Arc::new(Mutex::new(HybridVsock::new(cfg.cid, &cfg.uds_path)?));
                attach(vsock.clone(), "virtio-mmio (hybrid vsock)", slot, vm, mem, mmio, event_loop)?;
                register(&mut inventory, cfg.id.as_deref(), slot, DeviceHandle::HybridVsock(vsock))?;
            }
        }
        inventory.cmdline_entries.push(cmdline_entry(slot));
    }
    Ok(inventory)
}

/// Opens the share and its server now, so a missing or unreadable folder fails at set-up.
fn open_ninep(cfg: &NinePConfig, inventory: &mut DeviceInventory) -> Result<Virtio9p, Error> {
    let (link, worker) = ninep::pair_with(&cfg.path, cfg.read_only, cfg.security_model)
        .map_err(|source| Error::NineP { id: cfg.id.clone(), source })?;
    inventory.ninep_workers.push((cfg.id.clone(), worker));
    Virtio9p::new(&cfg.tag, link).map_err(|source| Error::Io { what: "virtio-9p", source })
}

fn register(inventory: &mut DeviceInventory, id: Option<&str>, slot: Slot, handle: DeviceHandle) -> Result<(), Error> {
    Ok(inventory.registry.insert(id.map(str::to_owned), Some(slot), handle)?)
}

/// QEMU's `query-chardev` filename of a backend.
pub(crate) fn chardev_filename(backend: &ChardevBackend, pty: Option<&std::path::Path>) -> String {
    match backend {
        ChardevBackend::Null => "null".into(),
        ChardevBackend::Stdio => "stdio".into(),
        ChardevBackend::Pty => format!("pty:{}", pty.map(|p| p.display().to_string()).unwrap_or_default()),
        ChardevBackend::File { .. } => "file".into(),
        ChardevBackend::Socket { path, server, .. } => {
            format!("unix:{}{}", path.display(), if *server { ",server=on" } else { "" })
        }
        ChardevBackend::Tcp { host, port, server, .. } => {
            format!("tcp:{host}:{port}{}", if *server { ",server=on" } else { "" })
        }
        ChardevBackend::MuxPort(_) => "mux".into(),
    }
}

/// Opens a chardev backend. A server socket with `wait=on` blocks here
/// until its client connects, before any vCPU runs, as in QEMU.
/// A front end of a mux (`MuxPort`) is attached to its mux in `muxes`.
pub(crate) fn open_chardev(cfg: &ChardevConfig, muxes: &mut [Mux]) -> Result<Chardev, Error> {
    let backend = match &cfg.backend {
        ChardevBackend::MuxPort(n) => {
            let mux = muxes.get_mut(*n).ok_or_else(|| Error::Config(format!("chardev {}: no mux {n}", cfg.id)))?;
            return mux.attach(&cfg.id);
        }
        ChardevBackend::Null => chardev::ChardevBackend::Null,
        ChardevBackend::Stdio => chardev::ChardevBackend::Stdio,
        ChardevBackend::Pty => chardev::ChardevBackend::Pty,
        ChardevBackend::File { path, append } => chardev::ChardevBackend::File { path: path.clone(), append: *append },
        ChardevBackend::Socket { path, server, wait } => {
            chardev::ChardevBackend::Socket { path: path.clone(), server: *server, wait: *wait }
        }
        ChardevBackend::Tcp { host, port, server, wait } => {
            chardev::ChardevBackend::Tcp { host: host.clone(), port: *port, server: *server, wait: *wait }
        }
    };
    let mut chardev = Chardev::open(&cfg.id, &backend)?;
    if let Some(log) = &cfg.logfile {
        chardev.set_logfile(&log.path, log.append)?;
    }
    Ok(chardev)
}

fn block_options(cfg: &BlockConfig) -> BlockOptions {
    // GET_ID answers the serial when one is given, as QEMU's serial= does.
    let id = cfg.serial.clone().unwrap_or_else(|| cfg.id.clone());
    BlockOptions {
        id,
        path: cfg.path.clone(),
        read_only: cfg.read_only,
        cache: cfg.cache,
        limits: cfg.limits,
        engine: cfg.engine,
        image: cfg.image,
    }
}

fn attach<D: EventDevice + 'static>(
    device: Arc<Mutex<D>>,
    name: &'static str,
    slot: Slot,
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    event_loop: &mut DeviceEventLoop,
) -> Result<(), Error> {
    let io = |source| Error::Io { what: "cannot create a virtio eventfd", source };
    let irq = EventFd::new(EFD_NONBLOCK).map_err(io)?;
    vm.register_irqfd(&irq, slot.irq).map_err(|source| KvmError::Ioctl { what: "irqfd registration", source })?;
    let queue_count = device.lock().unwrap_or_else(|p| p.into_inner()).queue_max_sizes().len();
    let mut queue_events = Vec::with_capacity(queue_count);
    for queue in 0..queue_count as u32 {
        let evt = EventFd::new(EFD_NONBLOCK).map_err(io)?;
        let notify = IoEventAddress::Mmio(slot.addr + REG_QUEUE_NOTIFY);
        vm.register_ioevent(&evt, &notify, queue)
            .map_err(|source| KvmError::Ioctl { what: "ioeventfd registration", source })?;
        queue_events.push(evt);
    }
    let model: Arc<Mutex<dyn VirtioDevice>> = device.clone();
    let mut transport = MmioTransport::new(model, mem.clone(), Arc::new(Interrupt::new(irq)), queue_events)
        .map_err(|source| Error::Transport { name, source })?;
    transport.offer_packed_ring(slot.packed);
    mmio.insert(slot.addr, VIRTIO_MMIO_SLOT_SIZE, name, Arc::new(Mutex::new(transport)))
        .map_err(|source| Error::Bus { name, source })?;
    let handler: Arc<Mutex<dyn MutEventSubscriber + Send>> = device;
    event_loop.add_subscriber(handler);
    Ok(())
}

/// Opens (or, for `-netdev user`, starts) a net device's backend. Here, on
/// the main thread before any filter exists: connecting, accepting, and
/// forking passt are no calls of the device thread's.
fn open_net_backend(cfg: &NetConfig) -> Result<Backend, Error> {
    let socket_err = |source| Error::NetSocket { id: cfg.id.clone(), source };
    Ok(match &cfg.backend {
        NetBackend::Tap { ifname, fd } => {
            let tap = match fd {
                Some(fd) => Tap::from_fd(*fd),
                None => Tap::open(ifname.as_deref()),
            }?;
            if ifname.is_none() && fd.is_none() {
                // As QEMU does: the user needs the name to configure the host side.
                log::info!(target: devices::NOTICE, "microvm: netdev {} uses tap device {}", cfg.id, tap.name());
            }
            Backend::Tap(tap)
        }
        NetBackend::Stream { server: true, addr } => {
            log::info!(target: devices::NOTICE, "microvm: netdev {} waits for a connection on {addr}", cfg.id);
            Backend::Stream(StreamSocket::accept(addr).map_err(socket_err)?)
        }
        NetBackend::Stream { server: false, addr } => Backend::Stream(StreamSocket::connect(addr).map_err(socket_err)?),
        NetBackend::Dgram { local, remote } => {
            Backend::Dgram(DgramSocket::open(local.as_ref(), remote).map_err(socket_err)?)
        }
        NetBackend::User { passt_args } => {
            let name = format!("{} (passt)", cfg.id);
            let passt =
                passt::spawn(passt_args, &name).map_err(|source| Error::Passt { id: cfg.id.clone(), source })?;
            log::debug!("netdev {}: passt runs as pid {}", cfg.id, passt.pid);
            Backend::Stream(passt.socket)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_consecutive_windows_with_their_own_irq() {
        assert_eq!(slot(0), Slot { addr: 0xd000_0000, irq: 5, packed: false });
        assert_eq!(slot(3), Slot { addr: 0xd000_0600, irq: 9, packed: false }, "IRQ 8 is the RTC's");
        assert_eq!(slot(7), Slot { addr: 0xd000_0e00, irq: 13, packed: false });
        assert!(slot(VIRTIO_MMIO_SLOTS - 1).irq < arch::layout::IOAPIC_NUM_PINS);
    }

    #[test]
    fn cmdline_entry_uses_linux_syntax() {
        assert_eq!(cmdline_entry(slot(1)), "virtio_mmio.device=512@0xd0000200:6");
    }

    /// `-chardev file,append=on` keeps the file's contents; QEMU's default truncates.
    #[test]
    fn file_chardev_honours_append() {
        let path = std::env::temp_dir().join(format!("microvm-append-{}.log", std::process::id()));
        for (append, want) in [(true, "old\n"), (false, "")] {
            std::fs::write(&path, "old\n").unwrap();
            let backend = ChardevBackend::File { path: path.clone(), append };
            let cfg = ChardevConfig { id: "f".into(), backend, logfile: None };
            let chardev = open_chardev(&cfg, &mut []).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want, "append={append}");
            drop(chardev);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
