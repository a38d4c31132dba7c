//! The block data path, which the `virtio` thread and each `-object iothread` run (an
//! iothread serves only drives), and the workers of an `aio=threads` pool.

use crate::allow;
use crate::rules::{eq, Rule};

/// An event loop of devices: the `virtio` thread's and an iothread's.
pub const EVENT_LOOP: &[Rule] = &[
    // glibc's epoll_wait, musl's epoll_pwait.
    allow!(SYS_epoll_wait),
    allow!(SYS_epoll_pwait),
    allow!(SYS_epoll_ctl),
    // eventfds (queue notifications, completions, the loop's control), timerfds, taps.
    allow!(SYS_read),
];

/// A drive's requests served on the loop's thread.
pub const BLOCK: &[Rule] = &[
    // Requests, flushes, discard and write-zeroes.
    allow!(SYS_preadv),
    allow!(SYS_pwritev),
    allow!(SYS_fdatasync),
    allow!(SYS_fsync),
    allow!(SYS_fallocate),
    // aio=io_uring: submitting a batch to the drive's ring (set up, restricted to
    // READV/WRITEV/FSYNC and given its eventfd when the drive is created, before any filter).
    allow!(SYS_io_uring_enter),
    // A rate limit's refill timer, made the first time the limit blocks its device (an
    // unlimited device makes none): CLOCK_MONOTONIC, close-on-exec, as vmm-sys-util asks.
    allow!(
        SYS_timerfd_create,
        "CLOCK_MONOTONIC",
        [eq(0, libc::CLOCK_MONOTONIC as u32), eq(1, libc::TFD_CLOEXEC as u32)]
    ),
];

/// What an iothread needs beyond those: arming the refill timer (the `virtio` thread has
/// it in the chardev list).
pub const IOTHREAD: &[Rule] = &[allow!(SYS_timerfd_settime)];

/// A worker of an `aio=threads` pool: the transfers and flushes it is handed, on the
/// image's descriptor, straight into guest memory. Waiting for jobs (futex) and signalling
/// each completion (an eventfd write) are in the common list.
pub const AIO_WORKER: &[Rule] = &[allow!(SYS_preadv), allow!(SYS_pwritev), allow!(SYS_fdatasync)];
