//! Every device's state as plain data, for snapshots (issue 16).
//!
//! Each device on a bus saves itself into a [`DeviceState`] and is rebuilt from one:
//! `BusDevice::save`/`restore` are required methods, so a new device cannot forget its
//! state. The VMM encodes these values (postcard) in the state file; a restore first
//! builds the same machine from the same command line, then hands every device its
//! saved value. Nothing here touches a file.
//!
//! When, for the VMM:
//! - Save with the VM paused: no vCPU in KVM_RUN and the device thread parked between
//!   turns (no request is then half served). vhost devices stop their kernel backend in
//!   `save` (VHOST_NET_SET_BACKEND -1, VHOST_VSOCK_SET_RUNNING 0, then
//!   VHOST_GET_VRING_BASE: ioctls on the calling thread) so that the kernel no longer
//!   writes guest memory while it is saved; the device thread starts them again on its
//!   next turn, when the VM resumes.
//! - Restore on the main thread, into a machine built from the same command line and not
//!   yet run, before any vCPU or the device thread runs; after guest memory holds the
//!   saved contents (virtio restores check their rings against it) and after the
//!   irqchip and LAPICs are restored: a virtio device with a pending interrupt raises
//!   its irqfd once more, which a later KVM_SET_IRQCHIP/KVM_SET_LAPIC could overwrite.
//!   Activated virtio devices are re-activated through `activate`, whose wake-up makes
//!   the device thread watch their queues (and start vhost backends) when it starts.

use crate::acpi::{GedState, SleepState};
use crate::legacy::{I8042State, RtcState, SerialState};
pub use crate::state_error::StateError;
use crate::virtio::mmio::saved::TransportState;
use serde::{Deserialize, Serialize};

/// The saved state of one bus device: one variant per device kind.
// A few dozen values per snapshot: their size does not matter, unboxed they read simpler.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum DeviceState {
    /// A device with no state: the boot-trace port, isa-debug-exit, the i8042 reset-only
    /// port (vm-superio's model holds nothing but its reset event).
    Stateless,
    /// The 16550A UART of the legacy serial port.
    Serial(SerialState),
    /// The whole i8042 of `-device i8042` (each of its two ports saves the controller).
    Keyboard(I8042State),
    /// The CMOS clock.
    Rtc(RtcState),
    /// The ACPI Generic Event Device.
    Ged(GedState),
    /// The ACPI sleep control/status and reset registers.
    Sleep(SleepState),
    /// A virtio-mmio slot: the transport and its device.
    Virtio(TransportState),
}

impl DeviceState {
    /// The kind's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceState::Stateless => "stateless",
            DeviceState::Serial(_) => "serial",
            DeviceState::Keyboard(_) => "i8042",
            DeviceState::Rtc(_) => "rtc",
            DeviceState::Ged(_) => "acpi-ged",
            DeviceState::Sleep(_) => "acpi-sleep",
            DeviceState::Virtio(_) => "virtio-mmio",
        }
    }

    /// `KindMismatch` for a device of kind `expected` handed this state.
    pub fn mismatch(&self, expected: &'static str) -> StateError {
        StateError::KindMismatch { expected, found: self.kind() }
    }
}

/// One device of a bus, where it was, and its state: `Bus::save_all` returns them in
/// address order.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SavedDevice {
    pub base: u64,
    pub len: u64,
    pub name: String,
    pub state: DeviceState,
}

/// What a stateless device's `restore` does: accept only `Stateless`.
pub fn restore_stateless(state: DeviceState) -> Result<(), StateError> {
    match state {
        DeviceState::Stateless => Ok(()),
        other => Err(other.mismatch("stateless")),
    }
}

#[cfg(test)]
mod tests;
