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
use crate::virtio::mmio::TransportState;
use serde::{Deserialize, Serialize};

/// Why a device cannot be saved or restored. Each message is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{device} cannot be saved or restored: {why}")]
    Unsupported { device: &'static str, why: &'static str },
    #[error("the saved state is of kind {found}, but this device is of kind {expected}")]
    KindMismatch { expected: &'static str, found: &'static str },
    #[error("the devices differ from the saved machine: device {index} is {now} here, but was {saved}")]
    Layout { index: usize, saved: String, now: String },
    #[error("the device has {now} queues, the saved one had {saved}")]
    QueueCount { saved: usize, now: usize },
    #[error("queue {index}: {why}")]
    InvalidQueue { index: usize, why: &'static str },
    #[error("{device}: the {what} differs from the saved machine's (saved {saved}, now {now})")]
    Config { device: &'static str, what: &'static str, saved: u64, now: u64 },
    #[error("the driver accepted features {acked:#x}, which the device does not offer (it offers {offered:#x})")]
    Features { acked: u64, offered: u64 },
    #[error("{device}: saved {what} is invalid")]
    Invalid { device: &'static str, what: &'static str },
    #[error("{device}: a restore needs a device the guest has not driven yet (restore before the guest runs)")]
    InUse { device: &'static str },
    #[error("cannot reactivate the device: {0}")]
    Activate(#[source] crate::virtio::ActivateError),
    #[error("{device}: {op}: {source}")]
    Backend { device: &'static str, op: &'static str, source: std::io::Error },
    #[error("{device}: {source}")]
    Vhost { device: &'static str, source: crate::virtio::vhost::VhostError },
    /// A device's error, with where the device is (what `Bus::save_all` and
    /// `Bus::restore_all` return).
    #[error("{name} at {base:#x}: {source}")]
    At { name: String, base: u64, source: Box<StateError> },
}

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
