//! The errors of starting a device's queues (`ActivateError`) and of driving a kernel
//! vhost backend (`VhostError`): leaves of their own, so the snapshot error that carries
//! them (`state_error.rs`) and the device code that returns them do not depend on each
//! other.

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("{0}")]
    Backend(String),
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
