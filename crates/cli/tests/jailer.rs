//! The `jailer` front end as Firecracker's users run it (as root, which these tests need):
//! the binary started through a link named `jailer` jails a copy of itself installed as
//! `firecracker` under a temporary chroot base, as uid/gid 1234, in a network namespace
//! made with `ip netns add` and a cgroup v2 of its own; a tiny guest boots through the API
//! socket at `<jail>/run/firecracker.socket`, driven by curl. `/proc` shows the process's
//! ids, root, namespace, cgroup and limits. `--daemonize` and `--new-pid-ns` each run a VM
//! too; bad flags and ids are one-line errors.

mod common;

use common::firecracker::*;
use common::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UID: u32 = 1234;
const GID: u32 = 1235;

/// Whether to run: root is needed (mknod, chroot, setns, cgroups).
fn root_tests_enabled() -> bool {
    if !kvm_tests_enabled() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the jailer tests need root (or MICROVM_SKIP_KVM_TESTS=1)");
    true
}

/// A chroot base with `bin/jailer` (a link to the binary under test) and
/// `bin/firecracker` (a copy, the exec file), and the jail's expected root.
struct Setup {
    dir: TempDir,
    jailer: PathBuf,
    exec_file: PathBuf,
    base: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        // Orphans (the daemon, the new PID namespace's pid 1) are reaped by this process.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let dir = TempDir::new(tag);
        let bin = dir.path().join("bin");
        let base = dir.path().join("jails");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&base).unwrap();
        let jailer = bin.join("jailer");
        std::os::unix::fs::symlink(microvm_path(), &jailer).unwrap();
        let exec_file = bin.join("firecracker");
        std::fs::copy(microvm_path(), &exec_file).unwrap();
        Setup { dir, jailer, exec_file, base }
    }

    fn root(&self, id: &str) -> PathBuf {
        self.base.join("firecracker").join(id).join("root")
    }

    /// Puts the tiny guest in the jail, and, for a dynamically linked test build, the
    /// libraries it loads (Firecracker's jailer expects a static binary, as `cargo xtask
    /// binary` builds; the jailer leaves what is already in the jail alone).
    fn furnish(&self, id: &str, guest: &[u8]) {
        let root = self.root(id);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("vmlinux"), guest).unwrap();
        let ldd = Command::new("ldd").arg(&self.exec_file).output().expect("run ldd");
        for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
            let inside = root.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
            std::fs::copy(lib, &inside).unwrap();
        }
    }

    fn command(&self, id: &str, extra: &[&str]) -> Command {
        let mut cmd = microvm_at(&self.jailer);
        cmd.args(["--id", id, "--exec-file"]).arg(&self.exec_file);
        cmd.args(["--uid", &UID.to_string(), "--gid", &GID.to_string(), "--chroot-base-dir"]).arg(&self.base);
        cmd.args(extra);
        cmd
    }
}

/// Boots the tiny guest through the jailed API socket.
fn boot(socket: &Path) {
    let boot = json!({ "kernel_image_path": "/vmlinux", "boot_args": "console=ttyS0" });
    assert_eq!(put(socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(socket, "/machine-config", r#"{"vcpu_count": 1, "mem_size_mib": 32}"#).status, 204);
    let start = put(socket, "/actions", r#"{"action_type": "InstanceStart"}"#);
    assert_eq!(start.status, 204, "{}", start.body);
}

fn wait_for_path(path: &Path) {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{status}"));
    line[name.len() + 1..].trim().to_owned()
}

/// The process runs as uid:gid, with the jail as its root.
fn assert_jailed(pid: u32, root: &Path) {
    assert_eq!(status_field(pid, "Uid"), format!("{UID}\t{UID}\t{UID}\t{UID}"));
    assert_eq!(status_field(pid, "Gid"), format!("{GID}\t{GID}\t{GID}\t{GID}"));
    assert_eq!(status_field(pid, "Groups"), GID.to_string(), "no group but gid");
    let theirs = std::fs::metadata(format!("/proc/{pid}/root")).unwrap();
    let jail = std::fs::metadata(root).unwrap();
    assert_eq!((theirs.dev(), theirs.ino()), (jail.dev(), jail.ino()), "the process's / is the jail");
    let copy = std::fs::metadata(root.join("firecracker")).unwrap();
    assert_eq!((copy.uid(), copy.gid(), copy.nlink()), (UID, GID, 1), "the exec file is a copy owned by uid:gid");
    let kvm = std::fs::metadata(root.join("dev/kvm")).unwrap();
    assert_eq!((kvm.rdev(), kvm.uid()), (libc::makedev(10, 232), UID));
    let tun = std::fs::metadata(root.join("dev/net/tun")).unwrap();
    assert_eq!(tun.rdev(), libc::makedev(10, 200));
}

/// Ends a VM that is not our child (a daemon, a PID namespace's init) and reaps it.
fn stop(pid: u32) {
    // SAFETY: kill(2) and waitpid(2) on the pid of a VM this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let mut status = 0;
        // SAFETY: as above; the VM was reparented to this (subreaper) process.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if rc == pid as i32 || rc < 0 {
            return;
        }
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("the jailed VM {pid} did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A network namespace of `ip netns add`, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let out = Command::new("ip").args(["netns", "add", name]).output().expect("run ip");
        assert!(out.status.success(), "ip netns add {name}: {}", String::from_utf8_lossy(&out.stderr));
        Netns(name.to_owned())
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_jailed_vm_boots_in_its_chroot_netns_and_cgroup_as_the_given_user() {
    if !root_tests_enabled() {
        return;
    }
    let setup = Setup::new("jailer");
    let id = format!("jailed-{}", std::process::id());
    setup.furnish(&id, &tiny_guest::serial_then_halt("jailed\n"));
    let netns = Netns::new(&format!("microvm-jailer-{}", std::process::id()));
    let cgroup_parent = format!("microvm-jailer-test-{}", std::process::id());
    let mut vm = Running::spawn(setup.command(
        &id,
        &[
            "--netns",
            &netns.path(),
            "--cgroup-version",
            "2",
            "--cgroup",
            "cgroup.max.descendants=3",
            "--parent-cgroup",
            &cgroup_parent,
            "--resource-limit",
            "no-file=1000",
        ],
    ));
    let root = setup.root(&id);
    let socket = root.join("run/firecracker.socket");
    wait_for_socket(&socket, &mut vm);
    boot(&socket);
    assert!(vm.wait_for_stdout(b"jailed\n", RUN_TIMEOUT), "the jailed guest did not write");

    let pid = vm.child.id();
    assert_jailed(pid, &root);
    // The jailer became the VM: its pid is on record.
    assert_eq!(std::fs::read_to_string(root.join("firecracker.pid")).unwrap(), pid.to_string());
    let ns = |p: &str| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ns(&format!("/proc/{pid}/ns/net")), ns(&netns.path()), "in the --netns namespace");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cgroup.contains(&format!("0::/{cgroup_parent}/{id}\n")), "{cgroup}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    assert_eq!(files.split_whitespace().collect::<Vec<_>>()[3..5], ["1000", "1000"], "{files}");
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(argv.starts_with(format!("/firecracker\0--id\0{id}\0--start-time-us\0").as_bytes()), "{argv:?}");

    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (status, out) = vm.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "{}", out.describe());
    let cgroup_root = PathBuf::from("/sys/fs/cgroup/unified").join(&cgroup_parent);
    let limit = std::fs::read_to_string(cgroup_root.join(&id).join("cgroup.max.descendants"));
    let _ = std::fs::remove_dir(cgroup_root.join(&id));
    let _ = std::fs::remove_dir(&cgroup_root);
    assert_eq!(limit.unwrap(), "3\n");
    drop(setup.dir);
}

/// A VM the jailer forked off with `flag`: the jailer has exited 0, the API socket listens.
struct Detached {
    _setup: Setup,
    root: PathBuf,
    socket: PathBuf,
    /// From the jail's pid file.
    pid: u32,
    /// The file the jailer's stdout (and so the VM's, unless daemonized) goes to.
    out: PathBuf,
}

fn start_detached(tag: &str, flag: &str, message: &str) -> Detached {
    let setup = Setup::new(tag);
    let id = format!("{tag}-{}", std::process::id());
    setup.furnish(&id, &tiny_guest::serial_then_halt(message));
    let out = setup.dir.path().join("jailer.out");
    let err = std::fs::File::create(setup.dir.path().join("jailer.err")).unwrap();
    let mut cmd = setup.command(&id, &[flag]);
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&out).unwrap()).stderr(err);
    assert!(cmd.status().expect("run the jailer").success(), "the jailer's own exit is 0 once the VM runs");
    let root = setup.root(&id);
    let socket = root.join("run/firecracker.socket");
    wait_for_path(&socket);
    let pid = std::fs::read_to_string(root.join("firecracker.pid")).unwrap().parse().unwrap();
    Detached { _setup: setup, root, socket, pid, out }
}

#[test]
fn daemonize_leaves_the_vm_running_in_its_own_session_with_stdio_on_dev_null() {
    if !root_tests_enabled() {
        return;
    }
    let vm = start_detached("daemon", "--daemonize", "daemon\n");
    let pid = vm.pid;
    boot(&vm.socket);
    assert_eq!(curl(&vm.socket, "GET", "/", None).body["state"], "Running");
    assert_jailed(pid, &vm.root);
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(), Path::new("/dev/null"));
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap(), Path::new("/dev/null"));
    // SAFETY: getsid reads another process's session id.
    let (sid, own) = (unsafe { libc::getsid(pid as i32) }, unsafe { libc::getsid(0) });
    assert!(sid != own && sid != pid as i32, "a new session ({sid}), which the daemon does not lead");
    stop(pid);
}

#[test]
fn new_pid_ns_makes_the_vm_pid_1_of_its_namespace() {
    if !root_tests_enabled() {
        return;
    }
    let vm = start_detached("pidns", "--new-pid-ns", "pid one\n");
    let pid = vm.pid;
    assert_eq!(status_field(pid, "NSpid"), format!("{pid}\t1"), "pid 1 in a namespace of its own");
    boot(&vm.socket);
    let deadline = Instant::now() + RUN_TIMEOUT;
    while !std::fs::read_to_string(&vm.out).unwrap().contains("pid one\n") {
        assert!(Instant::now() < deadline, "the guest did not write");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_jailed(pid, &vm.root);
    stop(pid);
}

#[test]
fn bad_flags_and_ids_are_one_line_errors() {
    if !root_tests_enabled() {
        return;
    }
    let setup = Setup::new("jailer-errors");
    let cases: &[(&[&str], &str)] = &[
        (&["--id", "bad id!", "--exec-file", "/x", "--uid", "1", "--gid", "1"], "Invalid instance ID"),
        (&["--exec-file", "/x", "--uid", "1", "--gid", "1"], "Argument 'id' required"),
        (&["--id", "a", "--exec-file", "/nonexistent/fc", "--uid", "1", "--gid", "1"], "/nonexistent/fc"),
        (&["--id", "a", "--exec-file", "/bin/sh", "--uid", "x", "--gid", "1"], "Invalid uid: x"),
        (&["--id", "a", "--bogus"], "Found argument '--bogus'"),
    ];
    for (args, expected) in cases {
        let mut cmd = microvm_at(&setup.jailer);
        cmd.args(*args);
        let line = assert_one_line_error(&run(cmd), &[expected]);
        assert!(line.starts_with("jailer: "), "{line}");
    }
    let bad_base = run(setup.command("b", &["--chroot-base-dir", "/nonexistent/base"]));
    assert_one_line_error(&bad_base, &["Failed to canonicalize path /nonexistent/base"]);
    let v1 = run(setup.command("c", &["--cgroup", "cpu.shares=10"]));
    assert_one_line_error(&v1, &["cgroup v1 is not supported"]);
    let netns = run(setup.command("d", &["--netns", "/nonexistent/netns"]));
    assert_one_line_error(&netns, &["network namespace /nonexistent/netns"]);
}
