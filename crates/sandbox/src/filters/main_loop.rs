//! The main thread: the event loop (VM end, signals, the serial's stdin, the CMOS clock's
//! timer) and the QMP/HMP monitors, then the exit path (teardown, pidfile removal).

use crate::allow;
use crate::kvm_ioctls::*;
use crate::rules::{eq, masked, Rule};
use crate::vhost_ioctls::{VHOST_GET_VRING_BASE, VHOST_NET_SET_BACKEND, VHOST_VSOCK_SET_RUNNING};

/// The flags of the one file the main thread creates: a snapshot (QMP `migrate`),
/// created or truncated, read-write. musl adds O_LARGEFILE, glibc does not.
pub(crate) const SNAPSHOT_OPEN: u32 = (libc::O_CREAT | libc::O_TRUNC | libc::O_RDWR | libc::O_CLOEXEC) as u32;
/// The kernel's x86_64 O_LARGEFILE bit, spelled out: `libc::O_LARGEFILE` is 0 in glibc's
/// x86_64 headers, and build.rs compiles these lists with the build host's libc (glibc)
/// even for the static musl binary, whose open() sets this bit, so the musl binary's
/// `migrate` died of SIGSYS (seen in the rig, xtask/scenarios/snapshot.sh).
pub(crate) const O_LARGEFILE_X86_64: u32 = 0o100000;
const ANY_BUT_LARGEFILE: u32 = !O_LARGEFILE_X86_64;
/// ... and of the one it reads: a snapshot (QMP `migrate-incoming`), read-only.
const SNAPSHOT_READ: u32 = (libc::O_RDONLY | libc::O_CLOEXEC) as u32;

/// madvise's MADV_POPULATE_READ (Linux 5.14), which the libc crate does not name yet.
const MADV_POPULATE_READ: u32 = 22;

/// The work done once the VM has run a while (vmm's after_start), by the main loop or, in
/// solo mode, from the SIGALRM handler: `mem-merge=on` offers guest RAM to KSM. (The text
/// release's MADV_DONTNEED is on the common list.)
pub const AFTER_START: &[Rule] = &[allow!(SYS_madvise, "MADV_MERGEABLE", [eq(2, libc::MADV_MERGEABLE as u32)])];

pub const MAIN: &[Rule] = &[
    // A restore's working set (FILE.pages) faulted in while the vCPUs run.
    allow!(SYS_madvise, "MADV_POPULATE_READ", [eq(2, MADV_POPULATE_READ)]),
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
    // Snapshots (QMP `migrate file:`): the file is created (musl's open, glibc's openat),
    // sized and written; the VM's interrupt controllers, PIT and clock are read, and the
    // MSR list and XSAVE size asked of KVM.
    allow!(SYS_open, "snapshot file", [masked(1, ANY_BUT_LARGEFILE, SNAPSHOT_OPEN)]),
    allow!(SYS_openat, "snapshot file", [masked(2, ANY_BUT_LARGEFILE, SNAPSHOT_OPEN)]),
    allow!(SYS_pwrite64),
    allow!(SYS_ftruncate),
    allow!(SYS_ioctl, "KVM_CHECK_EXTENSION", [eq(1, KVM_CHECK_EXTENSION)]),
    allow!(SYS_ioctl, "KVM_GET_MSR_INDEX_LIST", [eq(1, KVM_GET_MSR_INDEX_LIST)]),
    allow!(SYS_ioctl, "KVM_GET_IRQCHIP", [eq(1, KVM_GET_IRQCHIP)]),
    allow!(SYS_ioctl, "KVM_GET_PIT2", [eq(1, KVM_GET_PIT2)]),
    allow!(SYS_ioctl, "KVM_GET_CLOCK", [eq(1, KVM_GET_CLOCK)]),
    // Firecracker's diff snapshots (and any snapshot with dirty-page tracking on): the
    // guest's writes since the last one, read and cleared slot by slot.
    allow!(SYS_ioctl, "KVM_GET_DIRTY_LOG", [eq(1, KVM_GET_DIRTY_LOG)]),
    // `migrate-incoming` (-incoming defer): the snapshot is opened read-only, read, its
    // size asked, RAM mapped from it over guest RAM (mmap is in the common list), the
    // host checked (KVM_GET_SUPPORTED_CPUID) and the VM's KVM state written.
    allow!(SYS_open, "snapshot read", [masked(1, ANY_BUT_LARGEFILE, SNAPSHOT_READ)]),
    allow!(SYS_openat, "snapshot read", [masked(2, ANY_BUT_LARGEFILE, SNAPSHOT_READ)]),
    allow!(SYS_pread64),
    allow!(SYS_fstat),
    allow!(SYS_newfstatat),
    allow!(SYS_statx),
    allow!(SYS_ioctl, "KVM_GET_SUPPORTED_CPUID", [eq(1, KVM_GET_SUPPORTED_CPUID)]),
    allow!(SYS_ioctl, "KVM_SET_IRQCHIP", [eq(1, KVM_SET_IRQCHIP)]),
    allow!(SYS_ioctl, "KVM_SET_PIT2", [eq(1, KVM_SET_PIT2)]),
    allow!(SYS_ioctl, "KVM_SET_CLOCK", [eq(1, KVM_SET_CLOCK)]),
    // ... and a kernel vhost device (vhost-net, vhost-vsock) is stopped and each vring's
    // position read back (the device thread starts it again on resume).
    allow!(SYS_ioctl, "VHOST_NET_SET_BACKEND", [eq(1, VHOST_NET_SET_BACKEND)]),
    allow!(SYS_ioctl, "VHOST_VSOCK_SET_RUNNING", [eq(1, VHOST_VSOCK_SET_RUNNING)]),
    allow!(SYS_ioctl, "VHOST_GET_VRING_BASE", [eq(1, VHOST_GET_VRING_BASE)]),
    // A qcow2 drive's metadata cache (L2 tables, refcount blocks) written back when the
    // drive is dropped at exit and before a snapshot is saved (the device thread is
    // parked or gone by then); freeing discarded clusters may read a refcount block in.
    allow!(SYS_pwritev),
    allow!(SYS_preadv),
    // At exit: the pidfile and unix monitor sockets are removed, as QEMU does.
    allow!(SYS_unlink),
    allow!(SYS_unlinkat),
];
