//! The crate-wide error: what building or running a VM can fail with, each
//! module's own error carried as its source. In a file of its own so the modules that
//! return it do not depend on the crate root, which declares them all.

use arch::layout::{MAX_MEM_SIZE, MAX_VCPUS, MIN_MEM_SIZE, VIRTIO_MMIO_SLOTS};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// `-cpu MODEL,enforce` on a host without some of the model's features
    /// (QEMU's "Host doesn't support requested features"), each described.
    #[error("-cpu {model},enforce: the host doesn't support requested features: {}", .features.join(", "))]
    CpuEnforce { model: String, features: Vec<String> },
    /// A custom CPU template (`PUT /cpu-config`) asked for what KVM does not offer.
    #[error(transparent)]
    CpuTemplate(#[from] arch::cpu_template::TemplateError),
    #[error(transparent)]
    Kvm(#[from] crate::kvm::KvmError),
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    #[error(transparent)]
    Boot(#[from] crate::boot::BootError),
    #[error("cannot write the MP table: {0}")]
    Mptable(#[from] arch::mptable::MptableError),
    #[error("cannot write boot CPU state: {0}")]
    Regs(#[from] arch::regs::RegsError),
    #[error(transparent)]
    Vcpu(#[from] crate::vcpu::VcpuError),
    #[error("cannot place device {name}: {source}")]
    Bus { name: &'static str, source: devices::bus::BusError },
    #[error(transparent)]
    Block(#[from] devices::virtio::block::BlockError),
    #[error(transparent)]
    Tap(#[from] devices::virtio::net::TapError),
    #[error(transparent)]
    Net(#[from] devices::virtio::net::NetError),
    #[error("netdev {id}: {source}")]
    NetSocket { id: String, source: devices::virtio::net::SocketError },
    #[error("netdev {id}: {source}")]
    Passt { id: String, source: devices::virtio::net::passt::PasstError },
    #[error(transparent)]
    Chardev(#[from] devices::chardev::ChardevError),
    #[error(transparent)]
    Console(#[from] devices::virtio::console::ConsoleError),
    #[error("vhost-vsock-device: {0}")]
    Vsock(#[from] devices::virtio::vhost::vsock::VsockError),
    #[error("vsock: {0}")]
    HybridVsock(#[from] devices::virtio::hvsock::HybridVsockError),
    #[error("netdev {id}: vhost=on: {source}")]
    VhostNet { id: String, source: devices::virtio::vhost::net::VhostNetError },
    #[error("vhost-user-fs-device {tag}: {source}")]
    Fs { tag: String, source: devices::virtio::vhost::fs::FsError },
    #[error("-fsdev {id}: {source}")]
    NineP { id: String, source: devices::virtio::ninep::NinepError },
    #[error("{name}: {source}")]
    Transport { name: &'static str, source: devices::virtio::mmio::TransportError },
    #[error("cannot write the boot trace to {}: {source}", .path.display())]
    Report { path: std::path::PathBuf, source: std::io::Error },
    #[error("event loop: {0}")]
    EventLoop(#[source] event_manager::Error),
    #[error(transparent)]
    DuplicateDevice(#[from] crate::device_registry::DuplicateId),
    #[error(transparent)]
    Monitor(#[from] crate::monitor::sockets::SocketError),
    #[error(transparent)]
    DeviceThread(#[from] crate::device_thread::DeviceThreadError),
    #[error(transparent)]
    Sandbox(#[from] sandbox::Error),
    #[error("cannot build the ACPI tables: {0}")]
    Acpi(#[source] acpi::AcpiError),
    #[error("guest memory does not cover the VM generation ID at {:#x}", arch::layout::VMGENID_GUID_START)]
    VmGenId,
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

/// Maps an I/O error of the named step to [`Error::Io`].
pub(crate) fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// A configuration set-up refuses. The front ends check most of these first, with
/// their own words; set-up checks again so a `VmConfig` from any caller is safe.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("guest memory of {} MiB is out of range ({} MiB to {} GiB)", .size >> 20, MIN_MEM_SIZE >> 20, MAX_MEM_SIZE >> 30)]
    MemorySize { size: u64 },
    #[error("{count} vCPUs is out of range (1 to {MAX_VCPUS})")]
    VcpuCount { count: u8 },
    #[error("{count} virtio devices requested, but microvm has {VIRTIO_MMIO_SLOTS} virtio-mmio slots")]
    TooManyDevices { count: usize },
    /// A kind's `build` handed another kind's config: a bug in the device table.
    #[error("{kind}: handed another kind's config")]
    WrongKind { kind: &'static str },
    #[error("netdev {id}: vhost=on needs a tap")]
    VhostNeedsTap { id: String },
    #[error("netdev {id}: the MMDS needs vhost=off")]
    MmdsWithVhost { id: String },
    /// A netdev that opened nothing: every netdev opens at least one backend.
    #[error("netdev {id}: no backend was opened")]
    NoBackend { id: String },
    #[error("chardev {id}: no mux {index}")]
    NoMux { id: String, index: usize },
    #[error("chardev {id}: a mux's front end has no backend of its own")]
    MuxFrontEnd { id: String },
    /// Solo mode chosen for a VM without a vCPU: a bug in `VmConfig::runs_solo`.
    #[error("solo mode without a vCPU")]
    NoVcpu,
}
