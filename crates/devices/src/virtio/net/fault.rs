//! Why a queue pair stops serving a direction until the driver resets the device: the
//! guest's ring is not what it promised. Logged once, then DEVICE_NEEDS_RESET. Made at
//! most once per direction in a device's life, so the data path only branches to it.

use crate::virtio::queue::QueueError;
use vm_memory::GuestAddress;

#[derive(Debug, thiserror::Error)]
pub enum QueueFault {
    #[error("bad TX avail ring ({0})")]
    TxAvail(#[source] QueueError),
    #[error("cannot enable TX notifications ({0})")]
    TxNotifications(#[source] QueueError),
    #[error("cannot return TX chain {head} ({source})")]
    TxReturn { head: u16, source: QueueError },
    #[error("bad RX avail ring ({0})")]
    RxAvail(#[source] QueueError),
    #[error("RX avail ring unreadable ({0})")]
    RxAvailIndex(#[source] QueueError),
    #[error("cannot return RX buffer {head} ({source})")]
    RxReturn { head: u16, source: QueueError },
    /// Checked writable when its chain was taken; guest memory does not shrink, so the
    /// memory map broke its promise, not the guest.
    #[error("RX buffer at {:#x} became unwritable", .0.0)]
    RxUnwritable(GuestAddress),
    #[error("cannot enable RX notifications ({0})")]
    RxNotifications(#[source] QueueError),
}
