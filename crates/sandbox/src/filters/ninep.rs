//! A virtio-9p device's server thread: the `p9` crate's 9P2000.L server on the shared
//! folder. It takes requests from the virtio thread over a channel (futexes, in the common
//! list) and never touches guest memory or the devices; these are its file calls, all on
//! descriptors of the share (Landlock, entered first, keeps opens beneath it).

use crate::allow;
use crate::rules::{eq, Rule};

pub const NINEP: &[Rule] = &[
    // Confining itself at start: Landlock (the crate sets no_new_privs first, which seccomp
    // has already set, so the call changes nothing).
    allow!(SYS_landlock_create_ruleset),
    allow!(SYS_landlock_add_rule),
    allow!(SYS_landlock_restrict_self),
    allow!(SYS_prctl, "PR_SET_NO_NEW_PRIVS", [eq(0, libc::PR_SET_NO_NEW_PRIVS as u32)]),
    // Lookups (O_PATH|O_NOFOLLOW), opens through /proc/self/fd, creations.
    allow!(SYS_openat),
    // Attributes: glibc and musl spell fstat and fstatat differently.
    allow!(SYS_fstat),
    allow!(SYS_newfstatat),
    allow!(SYS_statx),
    allow!(SYS_fstatfs),
    allow!(SYS_fchmodat),
    allow!(SYS_fchownat),
    allow!(SYS_utimensat),
    allow!(SYS_ftruncate),
    // Data and directories (readdir on a duplicate of the directory's fd).
    allow!(SYS_pread64),
    allow!(SYS_pwrite64),
    allow!(SYS_getdents64),
    allow!(SYS_lseek),
    allow!(SYS_fcntl, "F_DUPFD_CLOEXEC", [eq(1, libc::F_DUPFD_CLOEXEC as u32)]),
    allow!(SYS_fcntl, "F_GETFL", [eq(1, libc::F_GETFL as u32)]),
    allow!(SYS_fcntl, "F_SETFD", [eq(1, libc::F_SETFD as u32)]),
    allow!(SYS_fsync),
    allow!(SYS_fdatasync),
    // Changes to the tree (names checked to be single components before the server runs).
    allow!(SYS_mkdirat),
    allow!(SYS_unlinkat),
    allow!(SYS_renameat),
    allow!(SYS_renameat2),
    allow!(SYS_linkat),
    allow!(SYS_readlinkat),
    // The guest's symlinks, FIFOs and device nodes (devices' ninep/nodes.rs): the real
    // object under none and passthrough (mapped-xattr makes a plain file with openat).
    allow!(SYS_symlinkat),
    allow!(SYS_mknodat),
    // security_model=passthrough (devices' ninep/creds.rs): a umask of the thread's own at
    // start, and the creating guest user's ids as the thread's file-system ids around each
    // creation (per thread in Linux; they give no other right than file access as that user).
    allow!(SYS_unshare, "CLONE_FS", [eq(0, libc::CLONE_FS as u32)]),
    allow!(SYS_umask),
    allow!(SYS_setfsuid),
    allow!(SYS_setfsgid),
    // security_model=mapped-xattr (ninep/mapped.rs): the guest's owners and modes in the
    // files' user.virtfs.* attributes, reached through /proc/self/fd.
    allow!(SYS_getxattr),
    allow!(SYS_setxattr),
];
