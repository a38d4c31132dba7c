//! Chardev and socket I/O, which both the main loop (monitors, the serial's stdin) and the
//! `virtio` device thread (console ports) do: one list so the two cannot drift apart.

use crate::allow;
use crate::rules::{eq, Rule};

pub const CHARDEV_IO: &[Rule] = &[
    // Socket peers (chardev sockets, monitor clients).
    allow!(SYS_recvfrom),
    allow!(SYS_sendto),
    // A server socket accepting its next client.
    allow!(SYS_accept4),
    // Polling a shared stdin; a pty's reconnect timer (and the main loop's own timers: the
    // CMOS clock's, the event rate limit's; on the virtio thread the refill timers of
    // rate-limited devices).
    allow!(SYS_poll),
    allow!(SYS_timerfd_settime),
    allow!(SYS_ioctl, "FIONBIO", [eq(1, libc::FIONBIO as u32)]),
    // A chardev asks how many bytes wait before reading (mux escapes, monitor input).
    allow!(SYS_ioctl, "FIONREAD", [eq(1, libc::FIONREAD as u32)]),
    allow!(SYS_fcntl, "F_GETFL", [eq(1, libc::F_GETFL as u32)]),
    allow!(SYS_fcntl, "F_SETFL", [eq(1, libc::F_SETFL as u32)]),
    // A client is split into its reading and writing halves (try_clone); musl follows
    // F_DUPFD_CLOEXEC with F_SETFD FD_CLOEXEC (for kernels that ignored it).
    allow!(SYS_fcntl, "F_DUPFD_CLOEXEC", [eq(1, libc::F_DUPFD_CLOEXEC as u32)]),
    allow!(SYS_fcntl, "F_SETFD", [eq(1, libc::F_SETFD as u32)]),
];
