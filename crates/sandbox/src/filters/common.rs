//! What every thread does whatever its job: the Rust runtime and both C libraries (glibc
//! for the debug build, musl for the static binary) allocating, locking, sleeping, logging
//! to stderr and ending the thread. Each thread kind's list adds to this one.

use crate::allow;
use crate::rules::{eq, masked, Rule};

/// `prot` may ask for anything but execution: no new code is ever mapped after set-up.
const PROT_EXEC: u32 = libc::PROT_EXEC as u32;
/// The futex command without its PRIVATE and CLOCK_REALTIME flags.
const FUTEX_CMD_MASK: u32 = !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u32);

pub const COMMON: &[Rule] = &[
    // Memory: allocators and thread stacks (glibc's arenas grow with mprotect).
    allow!(SYS_brk),
    allow!(SYS_mmap, "no PROT_EXEC", [masked(2, PROT_EXEC, 0)]),
    allow!(SYS_mprotect, "no PROT_EXEC", [masked(2, PROT_EXEC, 0)]),
    allow!(SYS_mremap),
    allow!(SYS_munmap),
    allow!(SYS_madvise, "MADV_DONTNEED", [eq(2, libc::MADV_DONTNEED as u32)]),
    allow!(SYS_madvise, "MADV_FREE", [eq(2, libc::MADV_FREE as u32)]),
    // Locks, condition variables, joins (std's own futex use and both libcs').
    allow!(SYS_futex, "FUTEX_WAIT", [masked(1, FUTEX_CMD_MASK, libc::FUTEX_WAIT as u32)]),
    allow!(SYS_futex, "FUTEX_WAKE", [masked(1, FUTEX_CMD_MASK, libc::FUTEX_WAKE as u32)]),
    allow!(SYS_futex, "FUTEX_WAIT_BITSET", [masked(1, FUTEX_CMD_MASK, libc::FUTEX_WAIT_BITSET as u32)]),
    allow!(SYS_futex, "FUTEX_WAKE_BITSET", [masked(1, FUTEX_CMD_MASK, libc::FUTEX_WAKE_BITSET as u32)]),
    allow!(SYS_futex, "FUTEX_REQUEUE", [masked(1, FUTEX_CMD_MASK, libc::FUTEX_REQUEUE as u32)]),
    allow!(SYS_futex, "FUTEX_CMP_REQUEUE", [masked(1, FUTEX_CMD_MASK, libc::FUTEX_CMP_REQUEUE as u32)]),
    allow!(SYS_sched_yield),
    // Time: the vDSO falls back to the system call on clock sources it cannot read.
    allow!(SYS_clock_gettime),
    allow!(SYS_clock_nanosleep),
    allow!(SYS_nanosleep),
    // Log lines (stderr) and eventfd signalling.
    allow!(SYS_write),
    // Signals: the vCPU kick handler returns; threads block signals as they end.
    allow!(SYS_rt_sigreturn),
    allow!(SYS_rt_sigprocmask),
    allow!(SYS_sigaltstack),
    // Dropping owned fds; debug builds check an fd is open before closing it.
    allow!(SYS_close),
    allow!(SYS_fcntl, "F_GETFD", [eq(1, libc::F_GETFD as u32)]),
    allow!(SYS_exit),
    allow!(SYS_exit_group),
];
