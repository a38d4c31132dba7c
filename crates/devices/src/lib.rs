//! Devices the guest can reach, and the bus that routes a vCPU's port and
//! MMIO accesses to them.

/// Log target of the lines a user must see at any log level, as QEMU prints them (a pty's
/// path, the tap a netdev created, a socket waiting for its client, -trace-boot's table).
/// Library code never prints: it logs these with `log::info!(target: NOTICE, ...)`, and
/// the binary prints them as they are, on stderr.
pub const NOTICE: &str = "microvm::notice";

pub mod acpi;
pub mod bus;
pub mod chardev;
pub mod debug_port;
pub mod guest_events;
pub mod guest_memory;
pub mod legacy;
pub mod noise;
pub mod oneshot_timer;
pub mod rate_limiter;
pub mod state;
pub mod state_error;
pub mod terminal;
pub mod virtio;

use std::io;
use vmm_sys_util::eventfd::EventFd;

/// An interrupt line or notification raised by writing an eventfd: registered
/// with KVM as an irqfd it injects a GSI without a trip through the VMM.
pub struct EventFdTrigger(EventFd);

impl EventFdTrigger {
    pub fn new(evt: EventFd) -> Self {
        EventFdTrigger(evt)
    }

    /// The same line (a device rebuilt from a saved state keeps its interrupt).
    pub fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(EventFdTrigger)
    }
}

impl vm_superio::Trigger for EventFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}
