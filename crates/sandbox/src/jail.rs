//! The jail (`-run-with chroot=DIR,user=USER[:GROUP]`, `-chroot`, `-runas`): once every file,
//! device and socket is open and before any other thread exists, the process enters a new
//! mount namespace and pivots into DIR (chroot where pivot_root cannot), drops to the user
//! with no capabilities and no_new_privs, limits its descriptors and core size, closes every
//! descriptor it inherited and does not use, and applies an empty Landlock ruleset (no file
//! system or network access at all) where the kernel has Landlock.
//!
//! [`Jail::prepare`] runs first thing (it resolves names while /etc is still reachable and
//! notes the inherited descriptors); [`Jail::enter`] runs after set-up.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Descriptors the process may open after the jail (monitor clients, the event loops'
/// epoll instances, eventfds made at start): beyond the highest one in use.
pub const FD_MARGIN: u64 = 64;

/// What the command line asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JailConfig {
    /// `chroot=DIR` / `-chroot DIR`.
    pub chroot: Option<PathBuf>,
    /// `user=USER[:GROUP]` (names or numbers) / `-runas`.
    pub user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("-run-with chroot={}: {source}", .dir.display())]
    BadDir { dir: PathBuf, source: io::Error },
    #[error("-run-with chroot={}: not a directory", .0.display())]
    NotADir(PathBuf),
    #[error("-run-with user={0}: no such user")]
    UnknownUser(String),
    #[error("-run-with user={0}: no such group")]
    UnknownGroup(String),
    #[error("-run-with: changing the root or the user needs root (this process runs as uid {0})")]
    NotRoot(u32),
    #[error("jail: {what}: {source}")]
    Sys { what: &'static str, source: io::Error },
    #[error("jail: landlock: {0}")]
    Landlock(#[source] landlock::RulesetError),
}

/// A resolved jail, ready to enter.
#[derive(Debug)]
pub struct Jail {
    root: Option<PathBuf>,
    /// uid, gid.
    ids: Option<(u32, u32)>,
    /// Descriptors open when microvm started, other than stdio.
    inherited: Vec<RawFd>,
}

fn sys(what: &'static str) -> impl FnOnce(io::Error) -> JailError {
    move |source| JailError::Sys { what, source }
}

fn check(what: &'static str, rc: libc::c_long) -> Result<(), JailError> {
    if rc < 0 {
        return Err(JailError::Sys { what, source: io::Error::last_os_error() });
    }
    Ok(())
}

impl Jail {
    /// Validates `config` and resolves its names; call before anything is opened.
    pub fn prepare(config: &JailConfig) -> Result<Jail, JailError> {
        if let Some(dir) = &config.chroot {
            let meta = std::fs::metadata(dir).map_err(|source| JailError::BadDir { dir: dir.clone(), source })?;
            if !meta.is_dir() {
                return Err(JailError::NotADir(dir.clone()));
            }
        }
        let ids = config.user.as_deref().map(resolve_user).transpose()?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(JailError::NotRoot(euid));
        }
        let root = config.chroot.as_ref().map(|d| d.canonicalize()).transpose().map_err(sys("resolve chroot"))?;
        Ok(Jail { root, ids, inherited: open_fds()?.into_iter().filter(|&fd| fd > 2).collect() })
    }

    /// Enters the jail. `keep` are inherited descriptors the VM uses (a monitor's `fd=N`).
    /// Must run while the process has one thread.
    pub fn enter(self, keep: &[RawFd]) -> Result<(), JailError> {
        for fd in self.inherited.iter().filter(|fd| !keep.contains(fd)) {
            // SAFETY: closes a descriptor microvm inherited and does not use; nothing in
            // the process refers to it.
            unsafe { libc::close(*fd) };
        }
        // Counted while /proc is still reachable.
        let highest = open_fds()?.last().copied().unwrap_or(2);
        if let Some(root) = &self.root {
            enter_root(root)?;
        }
        set_limit(libc::RLIMIT_NOFILE, highest as u64 + 1 + FD_MARGIN)?;
        set_limit(libc::RLIMIT_CORE, 0)?;
        drop_privileges(self.ids)?;
        // SAFETY: prctl with integer arguments.
        check("no_new_privs", unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
        restrict_with_landlock()
    }
}

/// `USER`, `USER:GROUP` or `UID:GID` to ids (QEMU's forms, plus a group by name).
fn resolve_user(spec: &str) -> Result<(u32, u32), JailError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) if group.is_some() => (uid, None),
        _ => {
            let name = CString::new(user).map_err(|_| JailError::UnknownUser(spec.into()))?;
            // SAFETY: getpwnam reads the user database; the result is copied out at once,
            // before any other call could reuse its static buffer (one thread runs).
            let pw = unsafe { libc::getpwnam(name.as_ptr()) };
            if pw.is_null() {
                return Err(JailError::UnknownUser(spec.into()));
            }
            // SAFETY: non-null, points to a passwd entry.
            unsafe { ((*pw).pw_uid, Some((*pw).pw_gid)) }
        }
    };
    let gid = match group {
        None => primary_gid.expect("a named user has a primary group"),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let name = CString::new(g).map_err(|_| JailError::UnknownGroup(g.into()))?;
                // SAFETY: as for getpwnam.
                let gr = unsafe { libc::getgrnam(name.as_ptr()) };
                if gr.is_null() {
                    return Err(JailError::UnknownGroup(g.into()));
                }
                // SAFETY: non-null, points to a group entry.
                unsafe { (*gr).gr_gid }
            }
        },
    };
    Ok((uid, gid))
}

/// The descriptors open now (from /proc, before the root changes).
fn open_fds() -> Result<Vec<RawFd>, JailError> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(sys("list /proc/self/fd"))?;
    let mut fds: Vec<RawFd> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    // The listing's own descriptor is in it, and closed now.
    // SAFETY: F_GETFD only asks whether the number is an open descriptor.
    fds.retain(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
    fds.sort_unstable();
    Ok(fds)
}

/// `setrlimit`'s resource type differs between glibc and musl.
#[cfg(target_env = "gnu")]
pub type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub type Resource = libc::c_int;

/// Sets both the soft and the hard limit (the `jailer` front end's `--resource-limit` too).
pub fn set_limit(resource: Resource, value: u64) -> Result<(), JailError> {
    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit reads our struct.
    check("setrlimit", unsafe { libc::setrlimit(resource, &limit) }.into())
}

fn path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("a canonical path has no NUL")
}

/// A private mount namespace whose root is `dir`: pivot_root, or chroot where the current
/// root cannot be pivoted away (an initramfs). The `jailer` front end's chroot too.
pub fn enter_root(dir: &Path) -> Result<(), JailError> {
    let dir_c = path(dir);
    let dot = c".";
    // SAFETY: unshare and mount take flags and NUL-terminated strings we own.
    unsafe {
        check("unshare(CLONE_NEWNS)", libc::unshare(libc::CLONE_NEWNS).into())?;
        // Nothing done here propagates back to the host's mounts.
        let none = std::ptr::null();
        check(
            "make / private",
            libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none.cast()).into(),
        )?;
        // pivot_root needs the new root to be a mount point.
        check(
            "bind DIR",
            libc::mount(dir_c.as_ptr(), dir_c.as_ptr(), none, libc::MS_BIND | libc::MS_REC, none.cast()).into(),
        )?;
        check("chdir DIR", libc::chdir(dir_c.as_ptr()).into())?;
        let pivoted = libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr());
        if pivoted == 0 {
            // The old root is stacked on "."; detach it.
            check("detach the old root", libc::umount2(dot.as_ptr(), libc::MNT_DETACH).into())?;
        } else {
            check("chroot DIR", libc::chroot(dot.as_ptr()).into())?;
        }
        check("chdir /", libc::chdir(c"/".as_ptr()).into())?;
    }
    Ok(())
}

/// Every capability gone (bounding set too), then the user's ids; with no user asked for,
/// the process stays uid 0 but holds no capability.
fn drop_privileges(ids: Option<(u32, u32)>) -> Result<(), JailError> {
    for cap in 0..=63 {
        // SAFETY: prctl with integer arguments; numbers past the kernel's last are EINVAL.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    if let Some((uid, gid)) = ids {
        set_ids(uid, gid)?;
    }
    clear_capabilities()
}

/// The user's ids for good: the group list is `gid` alone, then the real, effective and
/// saved gid and uid (the `jailer` front end's drop to `--uid`/`--gid` too).
pub fn set_ids(uid: u32, gid: u32) -> Result<(), JailError> {
    // SAFETY: plain id-changing calls; the group list is one gid we own.
    unsafe {
        check("setgroups", libc::setgroups(1, &gid).into())?;
        check("setresgid", libc::setresgid(gid, gid, gid).into())?;
        check("setresuid", libc::setresuid(uid, uid, uid).into())
    }
}

/// capset with every set empty (what setresuid already did for a non-root user).
fn clear_capabilities() -> Result<(), JailError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads the header and two data structs of the v3 layout.
    check("capset", unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) })
}

/// Handles every file system and network access Landlock knows and allows none. Kernels
/// without Landlock are not an error (best effort): the other walls still stand.
fn restrict_with_landlock() -> Result<(), JailError> {
    use landlock::{Access, AccessFs, AccessNet, Ruleset, RulesetAttr, ABI};
    let abi = ABI::V6;
    Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(JailError::Landlock)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(JailError::Landlock)?
        .create()
        .map_err(JailError::Landlock)?
        .restrict_self()
        .map_err(JailError::Landlock)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_by_name_and_number() {
        assert_eq!(resolve_user("root").unwrap(), (0, 0));
        assert_eq!(resolve_user("1234:5678").unwrap(), (1234, 5678));
        assert_eq!(resolve_user("root:0").unwrap(), (0, 0));
        assert!(matches!(resolve_user("no-such-user-here"), Err(JailError::UnknownUser(_))));
        assert!(matches!(resolve_user("root:no-such-group-here"), Err(JailError::UnknownGroup(_))));
    }

    #[test]
    fn a_missing_dir_is_one_clear_error() {
        let config = JailConfig { chroot: Some("/nonexistent/jail".into()), user: None };
        let e = Jail::prepare(&config).unwrap_err().to_string();
        assert!(e.starts_with("-run-with chroot=/nonexistent/jail: "), "{e}");
    }
}
