//! Acceptance for the jail: a microvm started with `-run-with chroot=DIR,user=nobody` runs
//! its guest as nobody, with no capability, DIR as its root in a mount namespace of its own,
//! no core dumps, a small descriptor limit, and exactly the descriptors it uses (one
//! deliberately leaked by the parent is closed). Needs root, as the option does.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

/// `sandbox::jail::FD_MARGIN`, as the process sets it (the test links no sandbox crate).
fn sandbox_fd_margin() -> u64 {
    64
}

fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap()
}

fn limit(pid: u32, name: &str) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
    line[name.len()..].split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn highest_fd(pid: u32) -> u64 {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    fds.filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok()).max().unwrap()
}

/// What each descriptor of `pid` is (numbers left out: they depend on open order).
fn fd_targets(pid: u32) -> Vec<String> {
    let mut targets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap().display().to_string())
        .map(|t| if t.starts_with("pipe:") { "pipe".into() } else { t })
        .collect();
    targets.sort();
    targets
}

#[test]
fn a_jailed_microvm_runs_as_nobody_in_its_own_root_with_only_its_descriptors() {
    // SAFETY: geteuid has no preconditions.
    if !kvm_tests_enabled() || unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root and /dev/kvm: skipped");
        return;
    }
    let dir = TempDir::new("jail");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let ready = "jailed\n";
    let kernel = dir.file("guest.elf", &tiny_guest::serial_then_spin(ready));
    let leaked = dir.file("leaked", b"");
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-device", "virtio-rng-device", "-run-with"]).arg(format!("chroot={},user=nobody", root.display()));
    let leaked_file = std::fs::File::open(&leaked).unwrap();
    let leaked_fd = std::os::fd::AsRawFd::as_raw_fd(&leaked_file);
    // SAFETY: dup2 in the child before exec: fd 9 is inherited without CLOEXEC.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(leaked_fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut vm = Running::spawn(cmd);
    let booted = vm.wait_for_stdout(ready.as_bytes(), RUN_TIMEOUT);
    let pid = vm.child.id();
    let facts = booted.then(|| {
        let root_meta = std::fs::metadata(format!("/proc/{pid}/root/")).unwrap();
        (
            status_field(pid, "Uid:"),
            status_field(pid, "Gid:"),
            status_field(pid, "CapEff:"),
            status_field(pid, "CapPrm:"),
            status_field(pid, "CapBnd:"),
            status_field(pid, "NoNewPrivs:"),
            (root_meta.dev(), root_meta.ino()),
            std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
            limit(pid, "Max core file size"),
            limit(pid, "Max open files"),
            fd_targets(pid),
            highest_fd(pid),
        )
    });
    vm.signal(libc::SIGTERM);
    let started = vm.started;
    let (_, out) = vm.wait(Duration::from_secs(5), started);
    let Some((uid, gid, cap_eff, cap_prm, cap_bnd, nnp, root_id, mnt_ns, core, nofile, fds, highest_fd)) = facts else {
        panic!("the jailed guest never ran\n{}", out.describe());
    };
    assert_eq!(uid, "65534 65534 65534 65534");
    assert_eq!(gid, "65534 65534 65534 65534");
    assert_eq!(
        (cap_eff.as_str(), cap_prm.as_str(), cap_bnd.as_str()),
        ("0000000000000000", "0000000000000000", "0000000000000000")
    );
    assert_eq!(nnp, "1");
    let jail_meta = std::fs::metadata(&root).unwrap();
    assert_eq!(root_id, (jail_meta.dev(), jail_meta.ino()), "the process's root is the jail directory");
    assert_ne!(mnt_ns, std::fs::read_link("/proc/self/ns/mnt").unwrap(), "a mount namespace of its own");
    assert_eq!(core, "0 0");
    // Soft = hard = the highest descriptor at the jail + 1 + the margin for those opened
    // afterwards: above every descriptor now, and at most the margin beyond them.
    let (soft, hard) = nofile.split_once(' ').unwrap();
    assert_eq!(soft, hard);
    let limit: u64 = soft.parse().unwrap();
    assert!(highest_fd < limit && limit <= highest_fd + 1 + sandbox_fd_margin(), "{limit} for fds up to {highest_fd}");
    let mut expected = vec!["/dev/kvm", "/dev/null"];
    // Exit and reset notifiers, irqfds, the rng's ioeventfd, the device thread's wakes.
    expected.extend(["anon_inode:[eventfd]"; 11]);
    // The main loop and the virtio thread's loop.
    expected.extend(["anon_inode:[eventpoll]"; 2]);
    // stdout and stderr, and the serial chardev's own descriptor for stdout: the pipes.
    // The signalfd, the VM and its vCPU; no refill timer: the rng is not rate limited.
    expected.extend(["anon_inode:[signalfd]", "anon_inode:kvm-vcpu:0", "anon_inode:kvm-vm", "pipe", "pipe", "pipe"]);
    assert_eq!(fds, expected, "exactly the descriptors microvm uses (stdin, stdout, stderr and its own)");
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "\n{}", out.describe());
}

fn jail_error(args: &[&str], culprits: &[&str]) -> String {
    let mut cmd = microvm();
    cmd.args(["-kernel", "/nonexistent/vmlinux"]).args(args);
    assert_one_line_error(&run(cmd), culprits)
}

#[test]
fn bad_jail_input_is_one_clear_line() {
    let line = jail_error(&["-run-with", "chroot=/nonexistent/jail"], &["/nonexistent/jail"]);
    assert!(line.contains("No such file"), "{line}");
    jail_error(&["-chroot", "/etc/passwd"], &["not a directory"]);
    jail_error(&["-runas", "no-such-user-here"], &["no such user"]);
    jail_error(&["-run-with", "user=root:no-such-group-here"], &["no such group"]);
    jail_error(&["-run-with", "user=nobody:"], &["USER:GROUP"]);
    jail_error(&["-run-with", "chroot="], &["empty chroot"]);
    jail_error(&["-run-with", "root=/tmp"], &["root"]);
}

#[test]
fn a_user_other_than_root_cannot_ask_for_the_jail() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        jail_error(&["-runas", "nobody"], &["needs root"]);
        return;
    }
    let mut cmd = microvm();
    cmd.args(["-kernel", "/nonexistent/vmlinux", "-runas", "nobody"]);
    // SAFETY: setuid in the child before exec.
    unsafe { cmd.pre_exec(|| if libc::setuid(65534) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }) };
    let line = assert_one_line_error(&run(cmd), &["needs root"]);
    assert!(line.contains("uid 65534"), "{line}");
}
