//! Builds a microVM from a `VmConfig` and runs it until it ends.
//!
//! `Vm::new` does all the set-up work (KVM objects, guest memory, devices, monitors,
//! kernel loading, vCPU state); `Vm::run` starts the threads and turns the main thread
//! into the event loop, where monitors pause, resume and end the VM, until the guest
//! resets, a vCPU fails, a monitor quits or a signal arrives.

pub mod address_map;
pub mod api;
pub mod boot;
pub mod boot_trace;
mod chardev_config;
pub mod config;
mod control;
pub mod device_kinds;
pub mod device_registry;
mod device_thread;
mod event_loop;
pub mod exit;
mod guest_changes;
pub mod host_surface;
mod kvm;
mod memory;
mod monitor;
pub mod power;
mod prepared;
mod rtc;
mod run;
mod serial;
mod signals;
pub mod snapshot;
pub mod solo;
pub mod startup;
pub mod state;
mod threads;
pub mod vcpu;
mod virtio_devices;
mod vm;
pub mod vmgenid;

pub use arch::cpu_features;
pub use arch::cpu_models;
pub use arch::cpu_template;
pub use arch::layout as arch_layout;
pub use exit::VmExit;
pub use monitor::version_banner;
pub use prepared::PreparedVm;
pub use vm::Vm;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    /// `-cpu MODEL,enforce` on a host without some of the model's features
    /// (QEMU's "Host doesn't support requested features"), each described.
    #[error("-cpu {model},enforce: the host doesn't support requested features: {}", .features.join(", "))]
    CpuEnforce { model: String, features: Vec<String> },
    /// A custom CPU template (`PUT /cpu-config`) asked for what KVM does not offer.
    #[error(transparent)]
    CpuTemplate(#[from] arch::cpu_template::TemplateError),
    #[error(transparent)]
    Kvm(#[from] kvm::KvmError),
    #[error(transparent)]
    Memory(#[from] memory::MemoryError),
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    #[error("cannot write the MP table: {0}")]
    Mptable(#[from] arch::mptable::MptableError),
    #[error("cannot write boot CPU state: {0}")]
    Regs(#[from] arch::regs::RegsError),
    #[error(transparent)]
    Vcpu(#[from] vcpu::VcpuError),
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
    DuplicateDevice(#[from] device_registry::DuplicateId),
    #[error(transparent)]
    Monitor(#[from] monitor::SocketError),
    #[error(transparent)]
    DeviceThread(#[from] device_thread::DeviceThreadError),
    #[error(transparent)]
    Sandbox(#[from] sandbox::Error),
    #[error("cannot build the ACPI tables: {0}")]
    Acpi(#[source] acpi::AcpiError),
    #[error("guest memory does not cover the VM generation ID at {:#x}", arch::layout::VMGENID_GUID_START)]
    VmGenId,
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
}
