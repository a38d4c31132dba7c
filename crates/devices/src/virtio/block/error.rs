//! Why a drive cannot be opened, and why a running one stops serving its queues.

use super::{ImageError, MAX_QUEUES};
use crate::virtio::queue::QueueError;
use std::path::PathBuf;

/// Why a drive cannot be opened; each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("drive {}: no such file or directory", .path.display())]
    Missing { path: PathBuf },
    #[error("drive {}: permission denied (opening it {})", .path.display(), if *.read_only { "read-only" } else { "read-write; with readonly=on reading may be allowed" })]
    PermissionDenied { path: PathBuf, read_only: bool },
    #[error("drive {}: on a read-only file system (use readonly=on)", .path.display())]
    ReadOnlyFilesystem { path: PathBuf },
    #[error("drive {}: not a regular file or block device", .path.display())]
    NotADisk { path: PathBuf },
    #[error("drive {}: the file system does not support O_DIRECT, which cache=none and cache=directsync need (use cache=writeback or writethrough)", .path.display())]
    DirectUnsupported { path: PathBuf },
    #[error("drive {}: locked by another process {} (two VMs must not share a writable image)", .path.display(), if *.read_only { "that writes it" } else { "using it" })]
    Locked { path: PathBuf, read_only: bool },
    #[error("drive {}: {source}", .path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("drive {}: cannot create the device's event: {source}", .path.display())]
    Event { path: PathBuf, source: std::io::Error },
    #[error("drive {}: {source}", .path.display())]
    Image { path: PathBuf, source: ImageError },
    #[error("drive {}: cannot set up io_uring (aio=io_uring; the host kernel may forbid it: try aio=threads): {source}", .path.display())]
    Uring { path: PathBuf, source: std::io::Error },
    #[error("drive {}: cannot set up the aio=threads pool's eventfd: {source}", .path.display())]
    Pool { path: PathBuf, source: std::io::Error },
    #[error("drive {}: num-queues={n}: must be from 1 to {MAX_QUEUES}", .path.display())]
    NumQueues { path: PathBuf, n: u16 },
}

/// Why a drive stops serving its queues until the driver resets it: a ring the guest
/// broke, or an engine that refuses requests. Logged once, then DEVICE_NEEDS_RESET.
#[derive(Debug, thiserror::Error)]
pub(super) enum QueueFault {
    #[error("bad avail ring ({0})")]
    Avail(#[source] QueueError),
    #[error("cannot write the used ring ({0})")]
    Used(#[source] QueueError),
    #[error("cannot hand requests to the engine ({0})")]
    Engine(#[source] std::io::Error),
}
