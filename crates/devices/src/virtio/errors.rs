//! The errors of starting a device's queues (`ActivateError`) and of driving a kernel
//! vhost backend (`VhostError`): leaves of their own, so the snapshot error that carries
//! them (`state_error.rs`) and the device code that returns them do not depend on each
//! other.

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The transport handed over another number of queues than the features call for.
    #[error("{device}: {given} queues given, {needed} needed")]
    QueueCount { device: &'static str, given: usize, needed: usize },
    /// A device whose kernel backend speaks only virtio 1.x, driven by a legacy driver.
    #[error("{device}: the driver did not accept VERSION_1")]
    NoVersion1 { device: &'static str },
    #[error("{device}: cannot set the offloads of tap {tap}: {source}")]
    TapOffload {
        device: &'static str,
        tap: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wake the device event loop: {0}")]
    Wake(std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    #[error("{op}: {source}")]
    Ioctl { op: &'static str, source: ::vhost::Error },
    #[error("queue {queue}: the {ring} ({addr:#x}, {len} bytes) is not inside one guest RAM region")]
    RingOutsideMemory { queue: usize, ring: &'static str, addr: u64, len: u64 },
}
