//! The main thread: the event loop (VM end, signals, the serial's stdin, the CMOS clock's
//! timer) and the QMP/HMP monitors, then the exit path (teardown, pidfile removal).

use crate::allow;
use crate::rules::{eq, Rule};

pub const MAIN: &[Rule] = &[
    allow!(SYS_epoll_wait),
    allow!(SYS_epoll_pwait),
    allow!(SYS_epoll_ctl),
    // eventfds, the signalfd, the timerfd, stdin, monitor connections (their socket calls
    // are in the chardev list).
    allow!(SYS_read),
    // The terminal goes back to the mode it had (stdio serial); musl's isatty asks the size.
    allow!(SYS_ioctl, "TCGETS", [eq(1, libc::TCGETS as u32)]),
    allow!(SYS_ioctl, "TCSETS", [eq(1, libc::TCSETS as u32)]),
    allow!(SYS_ioctl, "TIOCGWINSZ", [eq(1, libc::TIOCGWINSZ as u32)]),
    // Kicking vCPU threads out of KVM_RUN: glibc's pthread_kill is getpid + tgkill, musl's
    // is tkill (with every signal blocked, so a refusal there could not even be reported).
    allow!(SYS_getpid),
    allow!(SYS_tgkill),
    allow!(SYS_tkill),
    // At exit: the pidfile and unix monitor sockets are removed, as QEMU does.
    allow!(SYS_unlink),
    allow!(SYS_unlinkat),
];
