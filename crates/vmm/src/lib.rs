//! Builds a microVM from a `VmConfig` and runs it until it ends.
//!
//! `Vmm::new` does all the set-up work (KVM objects, guest memory, devices,
//! kernel loading, vCPU state); `Vmm::run` starts the vCPU threads and turns
//! the main thread into the event loop until the guest resets, a vCPU fails
//! or a signal arrives.

pub mod address_map;
pub mod boot;
pub mod boot_trace;
pub mod config;
mod event_loop;
pub mod exit;
mod kvm;
mod memory;
mod rtc;
mod signals;
pub mod startup;
pub mod vcpu;
mod virtio_devices;
mod vm;

pub use arch::layout as arch_layout;
pub use exit::VmExit;
pub use vm::Vmm;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
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
    /// A device backend could not be set up; the message names the backend.
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    Report(String),
    #[error("event loop: {0}")]
    EventLoop(String),
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
}
