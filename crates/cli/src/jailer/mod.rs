//! The `jailer` front end: the same binary started as `jailer` (a link) takes Firecracker
//! jailer's command line (`args.rs`) and runs the exec file (microvm installed as
//! `firecracker`) the way Firecracker's jailer does, so scripts written for it work:
//!
//! 1. every inherited descriptor but stdio is closed and the environment emptied;
//! 2. `<chroot base>/<exec file name>/<id>/root` is made and the exec file copied in
//!    (a copy, not a link: no two VMs share the binary's pages), owned by uid:gid;
//! 3. the network namespace of `--netns` is joined, the resource limits set (`no-file`
//!    2048 unless told), the cgroup written (`cgroup.rs`);
//! 4. a new mount namespace pivots into the jail (`sandbox::jail::enter_root`, the code of
//!    `-run-with chroot=`), where `/dev/net/tun`, `/dev/kvm` and `/dev/urandom` (and
//!    `/dev/userfaultfd` when the host has it) are made, and `/`, `/dev`, `/dev/net`, `/run`
//!    are given to uid:gid;
//! 5. with `--daemonize`, two forks and a new session, stdio on /dev/null; with
//!    `--new-pid-ns`, a clone into a new PID namespace whose pid 1 is the exec file;
//! 6. the exec file's pid goes to `/<exec file name>.pid` in the jail, and the process
//!    drops to uid:gid (its only group gid) and execs `/<exec file name> --id ID --start-time-us ...
//!    --start-time-cpu-us ... --parent-cpu-time-us ...` then the arguments after `--`.

pub mod args;
pub mod cgroup;

use crate::clock::now_us;
use args::{JailerArgs, Limit};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JailerError {
    #[error("Failed to canonicalize path {}: {source}", .path.display())]
    Canonicalize { path: PathBuf, source: io::Error },
    #[error("{} is not a file", .0.display())]
    NotAFile(PathBuf),
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("Failed to create directory {}: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("Failed to copy {} to {}: {source}", .from.display(), .to.display())]
    Copy { from: PathBuf, to: PathBuf, source: io::Error },
    #[error("{} has more than one link: refusing to overwrite a hard-linked file", .0.display())]
    HardLink(PathBuf),
    #[error("Failed to change the owner of {}: {source}", .path.display())]
    Chown { path: PathBuf, source: io::Error },
    #[error("Failed to create the device {path}: {source}")]
    Mknod { path: &'static str, source: io::Error },
    #[error("Failed to join the network namespace {}: {source}", .path.display())]
    Netns { path: PathBuf, source: io::Error },
    #[error("Failed to set the {name} resource limit: {source}")]
    Limit { name: &'static str, source: sandbox::jail::JailError },
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("Failed to enter the jail {}: {source}", .path.display())]
    Jail { path: PathBuf, source: sandbox::jail::JailError },
    #[error("Failed to open /dev/null: {0}")]
    DevNull(#[source] io::Error),
    #[error("Failed to daemonize: {0}")]
    Daemonize(#[source] io::Error),
    #[error("Failed to clone into a new PID namespace: {0}")]
    NewPidNs(#[source] io::Error),
    #[error("Failed to write the pid file {}: {source}", .path.display())]
    PidFile { path: PathBuf, source: io::Error },
    #[error("Failed to become uid {uid}, gid {gid}: {source}")]
    Ids { uid: u32, gid: u32, source: sandbox::jail::JailError },
    #[error("Failed to exec {}: {source}", .path.display())]
    Exec { path: PathBuf, source: io::Error },
}

/// Device nodes made in the jail: path, major, minor, required.
const DEVICES: [(&str, u32, u32, bool); 3] =
    [("/dev/net/tun", 10, 200, true), ("/dev/kvm", 10, 232, true), ("/dev/urandom", 1, 9, false)];

/// Directories in the jail given to uid:gid (chown is not recursive): `/run` holds the
/// default API socket.
const OWNED_DIRS: [&str; 4] = ["/", "/dev", "/dev/net", "/run"];

/// Runs the jail; returns only on failure (the process becomes the exec file, or exits in
/// the parent of a fork).
pub fn run(args: &JailerArgs) -> JailerError {
    match jail(args) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn jail(args: &JailerArgs) -> Result<std::convert::Infallible, JailerError> {
    let start_us = now_us(libc::CLOCK_MONOTONIC);
    close_inherited();
    let exec_file = canonical(&args.exec_file)?;
    if !exec_file.is_file() {
        return Err(JailerError::NotAFile(exec_file));
    }
    let base = canonical(&args.chroot_base)?;
    if !base.is_dir() {
        return Err(JailerError::NotADirectory(base));
    }
    let name = exec_file.file_name().map(PathBuf::from).ok_or_else(|| JailerError::NotAFile(exec_file.clone()))?;
    let root = base.join(&name).join(&args.id).join("root");
    std::fs::create_dir_all(&root).map_err(|source| JailerError::CreateDir { path: root.clone(), source })?;
    copy_exec_file(&exec_file, &root.join(&name), args.uid, args.gid)?;

    if let Some(path) = &args.netns {
        join_netns(path)?;
    }
    set_limits(&args.limits)?;
    // Only cgroup v2 is written (cgroup.rs); v1 needs no mount table to be refused.
    let mounts = match args.cgroup_version {
        2 => std::fs::read_to_string("/proc/mounts").map_err(cgroup::CgroupError::Mounts)?,
        _ => String::new(),
    };
    let parent = args.parent_cgroup.clone().unwrap_or_else(|| name.clone());
    let request = cgroup::CgroupRequest {
        version: args.cgroup_version,
        id: &args.id,
        parent: &parent,
        properties: &args.cgroups,
    };
    cgroup::apply(&request, &mounts)?;
    let dev_null = args.daemonize.then(|| File::options().read(true).write(true).open("/dev/null"));
    let dev_null = dev_null.transpose().map_err(JailerError::DevNull)?;

    // Read while the host's /sys is reachable.
    let userfaultfd = userfaultfd_minor();
    sandbox::jail::enter_root(&root).map_err(|source| JailerError::Jail { path: root.clone(), source })?;
    for dir in OWNED_DIRS {
        own_dir(Path::new(dir), args.uid, args.gid)?;
    }
    for (path, major, minor, required) in DEVICES {
        match make_device(path, major, minor, args.uid, args.gid) {
            Err(e) if !required => eprintln!("jailer: warning: {e}"),
            result => result?,
        }
    }
    if let Some(minor) = userfaultfd {
        make_device("/dev/userfaultfd", 10, minor, args.uid, args.gid)?;
    }

    if let Some(dev_null) = dev_null {
        daemonize(&dev_null)?;
    }
    let jailed = Path::new("/").join(&name);
    let pid_file = PathBuf::from(format!("{}.pid", jailed.display()));
    if args.new_pid_ns {
        // A session leader's exit would send SIGHUP to the VM: the child leads its own.
        // SAFETY: getsid and getpid take no pointers.
        let leader = !args.daemonize && unsafe { libc::getsid(0) == libc::getpid() };
        let child = clone_new_pid_ns()?;
        if child != 0 {
            // The parent's work ends with the child's (host) pid on record.
            write_pid_file(&pid_file, child)?;
            std::process::exit(0);
        }
        // SAFETY: setsid takes no arguments.
        if leader && unsafe { libc::setsid() } < 0 {
            return Err(JailerError::NewPidNs(io::Error::last_os_error()));
        }
    } else {
        write_pid_file(&pid_file, std::process::id() as i32)?;
    }
    let cpu_us = now_us(libc::CLOCK_PROCESS_CPUTIME_ID).to_string();
    let mut argv = vec![jailed.display().to_string(), "--id".into(), args.id.clone()];
    argv.extend(["--start-time-us".into(), start_us.to_string(), "--start-time-cpu-us".into(), cpu_us.clone()]);
    argv.extend(["--parent-cpu-time-us".into(), cpu_us]);
    argv.extend(args.extra.iter().cloned());
    sandbox::jail::set_ids(args.uid, args.gid).map_err(|source| JailerError::Ids {
        uid: args.uid,
        gid: args.gid,
        source,
    })?;
    Err(JailerError::Exec { source: exec(&jailed, &argv), path: jailed })
}

/// execve with an empty environment (Firecracker's jailer clears it); returns why not.
fn exec(path: &Path, argv: &[String]) -> io::Error {
    let Ok(args) = argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<Vec<_>, _>>() else {
        return io::Error::from(io::ErrorKind::InvalidInput);
    };
    let mut pointers: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    let file = c_path(path);
    // SAFETY: the path, every argument and both arrays are NUL-terminated and outlive the
    // call; on success it does not return.
    unsafe { libc::execve(file.as_ptr(), pointers.as_ptr(), env.as_ptr()) };
    io::Error::last_os_error()
}

fn canonical(path: &Path) -> Result<PathBuf, JailerError> {
    path.canonicalize().map_err(|source| JailerError::Canonicalize { path: path.to_owned(), source })
}

/// A clock in microseconds: Firecracker's jailer passes its monotonic start and its CPU
/// time to the exec file, which microvm takes as opaque.
/// Every descriptor but stdio: nothing the caller left open reaches the VM.
fn close_inherited() {
    // SAFETY: close_range closes descriptors only; nothing in this single-threaded process
    // holds one above 2 yet.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc != 0 {
        // Kernels before 5.9: one by one from the listing.
        let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        for fd in fds.into_iter().filter(|&fd| fd > 2) {
            // SAFETY: as above; the listing's own descriptor is already closed.
            unsafe { libc::close(fd) };
        }
    }
}

/// A fresh copy owned by uid:gid, with the source's mode; an existing file with other
/// links is refused (writing it would change the other names too).
fn copy_exec_file(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<(), JailerError> {
    let copy_error = |source| JailerError::Copy { from: from.to_owned(), to: to.to_owned(), source };
    let mut src = File::open(from).map_err(copy_error)?;
    let mode = src.metadata().map_err(copy_error)?.mode();
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(to)
        .map_err(copy_error)?;
    if dst.metadata().map_err(copy_error)?.nlink() > 1 {
        return Err(JailerError::HardLink(to.to_owned()));
    }
    std::os::unix::fs::fchown(&dst, Some(uid), Some(gid))
        .map_err(|source| JailerError::Chown { path: to.to_owned(), source })?;
    io::copy(&mut src, &mut dst).map_err(copy_error)?;
    Ok(())
}

fn join_netns(path: &Path) -> Result<(), JailerError> {
    let error = |source| JailerError::Netns { path: path.to_owned(), source };
    let ns = File::open(path).map_err(error)?;
    // SAFETY: setns on a descriptor we own, with a namespace-type flag.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(error(io::Error::last_os_error()));
    }
    Ok(())
}

fn set_limits(limits: &[(Limit, u64)]) -> Result<(), JailerError> {
    let files = limits.iter().rev().find(|(l, _)| *l == Limit::Files).map_or(args::DEFAULT_NO_FILE, |(_, v)| *v);
    let set = |name, resource, value| {
        sandbox::jail::set_limit(resource, value).map_err(|source| JailerError::Limit { name, source })
    };
    set("no-file", libc::RLIMIT_NOFILE, files)?;
    if let Some((_, size)) = limits.iter().rev().find(|(l, _)| *l == Limit::FileSize) {
        set("fsize", libc::RLIMIT_FSIZE, *size)?;
    }
    Ok(())
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), JailerError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|source| JailerError::Chown { path: path.to_owned(), source })
}

/// Makes `dir` (mode 0700) and gives it to uid:gid.
fn own_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), JailerError> {
    let error = |source| JailerError::CreateDir { path: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(error)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    chown(dir, uid, gid)
}

/// A character device node readable and writable by its owner, uid:gid.
fn make_device(path: &'static str, major: u32, minor: u32, uid: u32, gid: u32) -> Result<(), JailerError> {
    let p = c_path(Path::new(path));
    // SAFETY: mknod reads the NUL-terminated path we own.
    let rc =
        unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | libc::S_IRUSR | libc::S_IWUSR, libc::makedev(major, minor)) };
    if rc != 0 {
        return Err(JailerError::Mknod { path, source: io::Error::last_os_error() });
    }
    chown(Path::new(path), uid, gid)
}

/// The misc minor of /dev/userfaultfd, when the host kernel has the device.
fn userfaultfd_minor() -> Option<u32> {
    let text = std::fs::read_to_string("/sys/class/misc/userfaultfd/dev").ok()?;
    text.trim().split_once(':')?.1.parse().ok()
}

/// Firecracker's double fork: the jailer's caller gets its exit status at once, and the
/// daemon leads no session it could take a terminal back from.
fn daemonize(dev_null: &File) -> Result<(), JailerError> {
    for round in 0..2 {
        // SAFETY: fork in a single-threaded process; each parent only exits.
        match unsafe { libc::fork() } {
            -1 => return Err(JailerError::Daemonize(io::Error::last_os_error())),
            0 => {}
            _ => std::process::exit(0),
        }
        // SAFETY: setsid takes no arguments.
        if round == 0 && unsafe { libc::setsid() } < 0 {
            return Err(JailerError::Daemonize(io::Error::last_os_error()));
        }
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors from one we own.
        if unsafe { libc::dup2(dev_null.as_raw_fd(), fd) } < 0 {
            return Err(JailerError::Daemonize(io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// fork into a new PID namespace: 0 in the child (pid 1 there), the child's pid in the
/// parent.
fn clone_new_pid_ns() -> Result<i32, JailerError> {
    // SAFETY: the raw clone with no new stack behaves as fork (the process has one thread).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(JailerError::NewPidNs(io::Error::last_os_error()));
    }
    Ok(pid as i32)
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), JailerError> {
    std::fs::write(path, pid.to_string()).map_err(|source| JailerError::PidFile { path: path.to_owned(), source })
}
