//! Why a device cannot be saved or restored: one error for every device's `save` and
//! `restore`, in a file of its own so the devices that return it need nothing of the
//! saved-state types that gather them (`state.rs`).

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
    Activate(#[source] crate::virtio::errors::ActivateError),
    #[error("{device}: {op}: {source}")]
    Backend { device: &'static str, op: &'static str, source: std::io::Error },
    #[error("{device}: {source}")]
    Vhost { device: &'static str, source: crate::virtio::errors::VhostError },
    /// A device's error, with where the device is (what `Bus::save_all` and
    /// `Bus::restore_all` return).
    #[error("{name} at {base:#x}: {source}")]
    At { name: String, base: u64, source: Box<StateError> },
}
