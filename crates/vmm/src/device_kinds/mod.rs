//! One descriptor per `-device` kind: its names and properties (with their help, described
//! once), how its properties become its config, how it is built into a slot (transport,
//! handler, registry entry, inventory), its snapshot shape tag and its sandbox needs. The
//! front ends (the CLI's `-device`, `-help`, `-device help`) and the build (`Vm::new`)
//! read them through [`DEVICE_KINDS`] and [`KINDS`], the one table of kinds.
//!
//! Adding a virtio device kind (docs/ARCHITECTURE.md, "Adding a device kind"): its
//! implementation in `crates/devices`, one file here, and this table (its `mod`, its
//! config's `pub use`, its `DeviceConfig` variant, its `kind_of` arm, its entries in
//! `DEVICE_KINDS` and `KINDS`). `config.rs` re-exports the configs. A platform device
//! (not a virtio slot) is one file in `platform/`, its `mod` and `PlatformConfig` variant in
//! `platform.rs`, and its entries in `DEVICE_KINDS` and `PLATFORM_KINDS`.

mod balloon;
mod block;
mod fs;
mod hvsock;
mod keyboard;
mod net;
mod ninep;
mod platform;
pub mod props;
mod rng;
mod serial;
mod vsock;

use crate::chardev_config::ChardevBackend;
use crate::device_thread::DeviceEventLoop;
use crate::error::{ConfigError, Error};
use crate::monitor::mux::Mux;
use crate::slot::{cmdline_entry, slot, Slot};
pub use crate::virtio_devices::BuildCtx;
use crate::virtio_devices::DeviceInventory;
use arch::layout::VIRTIO_MMIO_SLOTS;
pub use balloon::{BalloonConfig, BalloonOptions};
pub use block::BlockConfig;
use devices::bus::Bus;
use devices::guest_memory::GuestMemoryMmap;
pub use fs::{FsConfig, FS_MAX_QUEUE_SIZE, FS_TAG_LEN};
pub use hvsock::HybridVsockConfig;
use kvm_ioctls::VmFd;
pub use net::{MmdsAttachment, NetBackend, NetConfig, NetLimits, SocketAddress};
pub use ninep::{mount_tag as ninep_mount_tag, MOUNT_TAG as NINEP_MOUNT_TAG};
pub use ninep::{NinePConfig, NINEP_TAG_LEN};
pub use platform::{DebugExitConfig, PlatformConfig, PlatformDevice, PlatformKind};
pub use props::{DeviceArgs, KindDesc, Prop, PropDesc, PropError};
pub use rng::RngConfig;
use sandbox::ThreadKind;
pub use serial::MAX_PORTS as SERIAL_MAX_PORTS;
pub use serial::{ConsoleConfig, SerialPortConfig, VirtioSerialConfig};
pub use vsock::VsockConfig;

/// A virtio-mmio device, in command-line order (which is slot order). Each variant's kind
/// (`device_kinds::kind_of`) parses, builds and describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceConfig {
    Block(BlockConfig),
    Net(NetConfig),
    Console(ConsoleConfig),
    /// A multiport virtio-serial-device (several ports, a named port or `max_ports=`).
    SerialPorts(VirtioSerialConfig),
    /// virtio-rng (Firecracker's `entropy`).
    Rng(RngConfig),
    /// `-device virtio-keyboard-device`: a virtio-input keyboard for QMP's keys.
    Keyboard,
    Vsock(VsockConfig),
    /// Firecracker's hybrid vsock (`PUT /vsock`): AF_VSOCK in the guest, Unix sockets on
    /// the host, served by microvm itself.
    HybridVsock(HybridVsockConfig),
    Fs(FsConfig),
    /// `-fsdev local` + `-device virtio-9p-device` (or `-virtfs`).
    NineP(NinePConfig),
    Balloon(BalloonConfig),
}

/// Every `-device` name with its help and properties, in `-device help`'s order: the
/// virtio kinds' (see [`KINDS`]) and the platform devices' (not virtio slots: see
/// [`PLATFORM_KINDS`], `platform.rs`).
pub static DEVICE_KINDS: &[KindDesc] = &[
    block::DESC,
    net::DESC,
    serial::BUS,
    serial::CONSOLE,
    serial::PORT,
    platform::isa_serial::DESC,
    platform::debug_exit::DESC,
    rng::DESC,
    keyboard::DESC,
    balloon::DESC,
    fs::DESC,
    ninep::DESC,
    vsock::DESC,
    hvsock::DESC,
    platform::vmgenid::DESC,
    platform::i8042::DESC,
];

/// Every virtio device kind.
pub static KINDS: &[&dyn DeviceKind] = &[
    &block::Block,
    &net::Net,
    &serial::Serial,
    &rng::Rng,
    &keyboard::Keyboard,
    &balloon::Balloon,
    &fs::Fs,
    &ninep::NineP,
    &vsock::Vsock,
    &hvsock::HybridVsock,
];

/// Every platform device kind (`platform.rs`): not a virtio slot, at most one of each.
pub static PLATFORM_KINDS: &[&dyn PlatformKind] = &[
    &platform::isa_serial::IsaSerial,
    &platform::debug_exit::DebugExit,
    &platform::vmgenid::VmGenId,
    &platform::i8042::I8042,
];

/// The kind that built `config`.
pub fn kind_of(config: &DeviceConfig) -> &'static dyn DeviceKind {
    match config {
        DeviceConfig::Block(_) => &block::Block,
        DeviceConfig::Net(_) => &net::Net,
        DeviceConfig::Console(_) | DeviceConfig::SerialPorts(_) => &serial::Serial,
        DeviceConfig::Rng(_) => &rng::Rng,
        DeviceConfig::Keyboard => &keyboard::Keyboard,
        DeviceConfig::Balloon(_) => &balloon::Balloon,
        DeviceConfig::Fs(_) => &fs::Fs,
        DeviceConfig::NineP(_) => &ninep::NineP,
        DeviceConfig::Vsock(_) => &vsock::Vsock,
        DeviceConfig::HybridVsock(_) => &hvsock::HybridVsock,
    }
}

/// Builds every configured device, each by its kind's descriptor (`device_kinds/`), in
/// slot order; returns what they are.
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
        return Err(ConfigError::TooManyDevices { count: configs.len() }.into());
    }
    let mut inventory = DeviceInventory::default();
    for (index, config) in configs.iter().enumerate() {
        let slot = Slot { packed: packed_rings.contains(&index), ..slot(index as u32) };
        let mut ctx = BuildCtx::new(slot, vm, mem, mmio, event_loop, muxes, &mut inventory);
        kind_of(config).build(config, &mut ctx)?;
        inventory.cmdline_entries.push(cmdline_entry(slot));
    }
    Ok(inventory)
}

/// The virtio kind of a `-device` name; `None` for the platform devices ([`platform_kind`])
/// and unknown names.
pub fn lookup(name: &str) -> Option<&'static dyn DeviceKind> {
    KINDS.iter().copied().find(|k| k.names().contains(&name))
}

/// The platform kind of a `-device` name; `None` for the virtio kinds and unknown names.
pub fn platform_kind(name: &str) -> Option<&'static dyn PlatformKind> {
    PLATFORM_KINDS.iter().copied().find(|k| k.desc().name == name)
}

/// The properties of `-device name`, if microvm has it.
pub fn desc(name: &str) -> Option<&'static KindDesc> {
    DEVICE_KINDS.iter().find(|k| k.name == name)
}

/// One virtio device kind.
pub trait DeviceKind: Sync {
    /// Its `-device` names (each described in [`DEVICE_KINDS`]).
    fn names(&self) -> &'static [&'static str];

    /// `-device name,...`'s properties (checked against its description) → what the
    /// front end adds.
    fn parse(&self, name: &str, args: &DeviceArgs) -> Result<Parsed, PropError>;

    /// Completes a config with the backend its `parse` asked for (`value`: the option's
    /// value, for messages).
    fn bind(&self, config: &mut DeviceConfig, backend: Backend, value: &str) -> Result<(), PropError> {
        let _ = (config, backend, value);
        Ok(())
    }

    /// Builds the device into `ctx`'s slot: opens its host side (so bad host input fails
    /// before the guest runs), attaches it and registers it.
    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error>;

    /// What a snapshot records of the device: a restoring command line must name the
    /// same kinds in the same slots. Its `-device` name unless the kind has several
    /// device models.
    fn shape(&self, config: &DeviceConfig) -> &'static str {
        let _ = config;
        self.names()[0]
    }

    /// The thread of its own each device of this kind runs on besides the `virtio`
    /// thread, if any (`docs/sandbox.md`).
    fn thread(&self) -> Option<ThreadKind> {
        None
    }

    /// The threads of its own a device of this kind with `config` runs, and how many:
    /// [`Self::thread`]'s one unless the config asks for more (an `aio=threads` drive's
    /// pool). An iothread is not the device's own: several devices may share it.
    fn threads(&self, config: &DeviceConfig) -> Option<(ThreadKind, usize)> {
        let _ = config;
        self.thread().map(|kind| (kind, 1))
    }

    /// The system calls its data path makes on the `virtio` thread beyond reading and
    /// writing its eventfds (its filter, `crates/sandbox/src/filters/virtio.rs`, must
    /// allow each: the table's test checks).
    fn syscalls(&self) -> &'static [&'static str] {
        &[]
    }

    /// `Some(why)`: `packed=on` is refused for this kind (its rings are another party's).
    fn packed_refusal(&self) -> Option<&'static str> {
        None
    }

    /// `Some(why)`: a command line may hold one device of this kind only.
    fn at_most_one(&self) -> Option<&'static str> {
        None
    }

    /// Configs with the properties that give them, for the table's consistency test.
    #[cfg(test)]
    fn examples(&self) -> Vec<Example>;
}

/// What one `-device` adds.
// Made once per `-device` option and consumed at once: boxing the config would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// A virtio slot: `config`, completed by [`DeviceKind::bind`] with `backend` once
    /// the front end has looked it up; `id`, the `-device`'s own `id=`.
    Slot { config: DeviceConfig, id: Option<String>, backend: Option<BackendRef> },
    /// `virtio-serial-device`: a slot for the ports after it (the front end gathers them).
    SerialBus { id: Option<String>, max_ports: Option<u32> },
    /// A port of an earlier `virtio-serial-device`.
    SerialPort(PortRequest),
}

/// `virtconsole` or `virtserialport`.
pub struct PortRequest {
    /// The `-chardev` id.
    pub chardev: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub console: bool,
    /// `bus=ID.0`: the virtio-serial-device it goes to.
    pub bus: Option<String>,
}

/// Another option's object a device names by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendRef {
    pub kind: BackendKind,
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// A `-drive`.
    Drive,
    /// A `-netdev`.
    Netdev,
    /// A `-chardev` a vhost-user backend listens on.
    VhostUserChardev,
    /// An `-fsdev` (or a `-virtfs`'s).
    Fsdev,
    /// An `-object rng-*`.
    RngObject,
}

/// A backend as the front end resolved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The drive's part of the block config.
    Drive(BlockConfig),
    /// The netdev's part of the NIC config.
    Netdev(NetConfig),
    /// A chardev by id; `backend` is `None` for a mux's front end.
    Chardev { id: String, backend: Option<ChardevBackend> },
    /// The fsdev's part of the 9p config.
    Fsdev(NinePConfig),
    /// An rng object exists (the device draws from getrandom(2) either way).
    RngObject,
}

/// A kind's example for the consistency test: these properties (and backend) give
/// this config.
#[cfg(test)]
pub struct Example {
    pub name: &'static str,
    pub props: &'static [(&'static str, &'static str)],
    pub backend: Option<Backend>,
    pub config: DeviceConfig,
}

/// A kind's `build` handed a config of another kind (a bug in [`kind_of`]).
fn wrong_config(kind: &'static str) -> Error {
    ConfigError::WrongKind { kind }.into()
}

#[cfg(test)]
mod tests;
