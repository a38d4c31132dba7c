//! Builds a microVM from a `VmConfig` and runs it until it ends.
//!
//! `Vm::new` does all the set-up work (KVM objects, guest memory, devices, monitors,
//! kernel loading, vCPU state); `Vm::run` starts the threads and turns the main thread
//! into the event loop, where monitors pause, resume and end the VM, until the guest
//! resets, a vCPU fails, a monitor quits or a signal arrives.

pub mod address_map;
mod after_start;
pub mod api;
pub mod boot;
pub mod boot_trace;
mod chardev_config;
mod chardevs;
pub mod config;
mod control;
mod device_info;
pub mod device_kinds;
pub mod device_registry;
mod device_thread;
mod error;
mod event_loop;
pub mod exit;
mod guest_changes;
mod guid;
pub mod host_surface;
mod irqfd;
mod kvm;
mod memory;
mod monitor;
mod noted_ranges;
pub mod power;
mod prepared;
mod resident_text;
mod rtc;
mod run;
mod serial;
mod signals;
mod slot;
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
pub use error::Error;
pub use exit::VmExit;
pub use monitor::version_banner;
pub use prepared::PreparedVm;
pub use vm::Vm;
