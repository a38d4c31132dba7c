//! virtio-9p on the host's /dev/kvm (issue 18 item 6): a tiny guest drives the device in
//! slot 0 as a driver would and echoes every answer to the serial port; the test checks
//! what the guest read and what the share holds afterwards. The sandbox is on (the
//! default), so the 9p thread runs under its seccomp list and Landlock.

mod common;

use common::*;
use tiny_guest::ninep::{self as wire, errno, split_answers};
use tiny_guest::virtio::virtio_requests_echoed_then_reset;

/// VIRTIO_9P_MOUNT_TAG in the low word, VIRTIO_F_VERSION_1 (bit 32) in the high word.
const FEATURES: [u32; 2] = [1, 1];
const O_RDONLY: u32 = 0;
const EPERM: u32 = 1;
const EROFS: u32 = 30;
const ELOOP: u32 = 40;

/// The session every test runs: read the host's file, write one, and try to leave.
fn session() -> Vec<Vec<u8>> {
    vec![
        wire::version(1, 8192).done(),
        wire::attach(2, 0).done(),
        wire::walk(3, 0, 1, &["hello"]).done(),
        wire::lopen(4, 1, O_RDONLY).done(),
        wire::read(5, 1, 100).done(),
        wire::walk(6, 0, 2, &[]).done(),
        wire::lcreate(7, 2, "new").done(),
        wire::write(8, 2, b"from the guest").done(),
        wire::walk(9, 0, 3, &[".."]).done(),
        wire::walk(10, 0, 4, &["passwd"]).done(),
        wire::lopen(11, 4, O_RDONLY).done(),
    ]
}

/// Runs the session against a fresh share with `args` (which name SHARE for its path).
fn run_session(args: &[&str]) -> (TempDir, Vec<Vec<u8>>) {
    run_requests(args, &session())
}

/// Runs `requests` against a fresh share (writable by anyone) with `args`.
fn run_requests(args: &[&str], requests: &[Vec<u8>]) -> (TempDir, Vec<Vec<u8>>) {
    let dir = TempDir::new("9p");
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::set_permissions(&share, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(share.join("hello"), b"from the host").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", share.join("passwd")).unwrap();
    let kernel = dir.file("9p.elf", &virtio_requests_echoed_then_reset(FEATURES, requests));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(args.iter().map(|a| a.replace("SHARE", share.to_str().unwrap())));
    let out = run(cmd);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stderr.trim().is_empty(), "{}", out.describe());
    let answers: Vec<Vec<u8>> = split_answers(&out.stdout).into_iter().map(<[u8]>::to_vec).collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request\n{}", out.describe());
    (dir, answers)
}

/// What every spelling must show: the host's file read, the escapes refused.
fn check_reads_and_escapes(answers: &[Vec<u8>]) {
    assert_eq!(answers[0][4], 101, "Rversion");
    assert_eq!(errno(&answers[1]), None, "Rattach");
    assert_eq!(errno(&answers[3]), None, "Rlopen");
    assert_eq!(&answers[4][11..], b"from the host", "Rread carries the host's file");
    assert_eq!(errno(&answers[8]), Some(EPERM), "a walk to .. is refused");
    assert_eq!(errno(&answers[9]), None, "the walk reaches the link itself");
    assert_eq!(errno(&answers[10]), Some(ELOOP), "the host symlink to /etc/passwd is not followed");
}

#[test]
fn fsdev_and_virtio_9p_device_serve_the_share() {
    if !kvm_tests_enabled() {
        return;
    }
    let (dir, answers) = run_session(&[
        "-fsdev",
        "local,id=fs0,path=SHARE,security_model=none",
        "-device",
        "virtio-9p-device,fsdev=fs0,mount_tag=host0",
    ]);
    check_reads_and_escapes(&answers);
    assert_eq!(errno(&answers[7]), None, "Rwrite");
    assert_eq!(std::fs::read(dir.path().join("share/new")).unwrap(), b"from the guest");
    assert!(!dir.path().join("new").exists());
}

#[test]
fn virtfs_serves_the_share() {
    if !kvm_tests_enabled() {
        return;
    }
    let (dir, answers) = run_session(&["-virtfs", "local,path=SHARE,mount_tag=host0,security_model=passthrough"]);
    check_reads_and_escapes(&answers);
    assert_eq!(std::fs::read(dir.path().join("share/new")).unwrap(), b"from the guest");
}

/// A guest user's session: attached as uid 1234 (as Linux's v9fs attaches each user), it
/// creates "mine" with its group 4321 and mode 0640 (fid 2 becomes the file) and writes.
fn guest_user_creates() -> Vec<Vec<u8>> {
    let user = wire::Msg::new(wire::ty::TATTACH, 2).u32(0).u32(!0).s("u").s("").u32(1234).done();
    let create = wire::Msg::new(wire::ty::TLCREATE, 4).u32(2).s("mine").u32(1).u32(0o640).u32(4321).done();
    vec![wire::version(1, 8192).done(), user, wire::walk(3, 0, 2, &[]).done(), create, wire::write(5, 2, b"x").done()]
}

/// security_model=passthrough with the sandbox on: a guest user (attached as uid 1234, as
/// Linux's v9fs attaches each user) creates a file with its group 4321 and mode 0640, and
/// the host file is theirs with that mode. Needs microvm to be root, as QEMU's
/// passthrough does (devices' ninep/tests/passthrough.rs covers the case without rights).
#[test]
fn passthrough_creates_as_the_guest_user() {
    if !kvm_tests_enabled() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: skipping passthrough, which needs microvm to be root");
        return;
    }
    let requests = guest_user_creates();
    let (dir, answers) =
        run_requests(&["-virtfs", "local,path=SHARE,mount_tag=host0,security_model=passthrough"], &requests);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(errno(a), None, "request {i}");
    }
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir.path().join("share/mine")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode()), (1234, 4321, 0o100640));
}

#[test]
fn a_readonly_share_is_read_but_not_written() {
    if !kvm_tests_enabled() {
        return;
    }
    let (dir, answers) = run_session(&["-virtfs", "local,path=SHARE,mount_tag=host0,security_model=none,readonly=on"]);
    check_reads_and_escapes(&answers);
    assert_eq!(errno(&answers[6]), Some(EROFS), "Tlcreate");
    assert!(!dir.path().join("share/new").exists());
}

#[test]
fn a_missing_share_is_one_line_before_the_guest_runs() {
    if !kvm_tests_enabled() {
        return;
    }
    let dir = TempDir::new("9p-missing");
    let kernel = dir.file("k.elf", &tiny_guest::serial_then_reset("never\n"));
    let mut cmd = microvm_legacy(&kernel);
    cmd.args(["-virtfs", "local,path=/nonexistent/share,mount_tag=t,security_model=none"]);
    let out = run(cmd);
    assert_no_panic(&out);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "the guest never ran");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].contains("-fsdev t: 9p share /nonexistent/share: No such file or directory"), "{}", out.stderr);
}

/// security_model=mapped-xattr with the sandbox on: the same guest user's creation leaves
/// a host file that is microvm's (mode 0600), with the guest's uid, gid and mode in QEMU's
/// user.virtfs.* xattrs, and Rgetattr shows the guest its own values.
#[test]
fn mapped_xattr_keeps_the_guests_credentials_in_xattrs() {
    if !kvm_tests_enabled() {
        return;
    }
    let mut requests = guest_user_creates();
    // Tgetattr (24) of the new file, every basic field.
    requests.push(wire::Msg::new(24, 6).u32(2).u64(0x7ff).done());
    let (dir, answers) =
        run_requests(&["-virtfs", "local,path=SHARE,mount_tag=host0,security_model=mapped-xattr"], &requests);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(errno(a), None, "request {i}");
    }
    // Rgetattr: header[7] valid[8] qid[13], then mode, uid, gid.
    let field = |at: usize| u32::from_le_bytes(answers[5][at..at + 4].try_into().unwrap());
    assert_eq!((field(28), field(32), field(36)), (0o100640, 1234, 4321), "what the guest sees");
    use std::os::unix::fs::MetadataExt;
    let path = dir.path().join("share/mine");
    let m = std::fs::metadata(&path).unwrap();
    // SAFETY: geteuid and getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((m.uid(), m.gid(), m.mode()), (uid, gid, 0o100600), "the host file stays microvm's");
    let xattr = |name: &str| {
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let c_name = std::ffi::CString::new(name).unwrap();
        let mut v = [0u8; 4];
        // SAFETY: both strings are NUL-terminated and `v` is writable for its length.
        let n = unsafe { libc::getxattr(c_path.as_ptr(), c_name.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert_eq!(n, 4, "{name}");
        u32::from_le_bytes(v)
    };
    assert_eq!(xattr("user.virtfs.uid"), 1234);
    assert_eq!(xattr("user.virtfs.gid"), 4321);
    assert_eq!(xattr("user.virtfs.mode"), 0o100640);
}

/// `ln -s`, `mkfifo`, `mknod c 1 3` and `ln` as Linux's v9fs sends them, then what the
/// guest reads back: the answers, and the share on the host, per security model.
fn nodes_session() -> Vec<Vec<u8>> {
    vec![
        wire::version(1, 8192).done(),
        wire::attach(2, 0).done(),
        wire::symlink(3, 0, "ln", "/etc/passwd", 0).done(),
        wire::mknod(4, 0, "pipe", libc::S_IFIFO | 0o640, (0, 0), 0).done(),
        wire::mknod(5, 0, "null", libc::S_IFCHR | 0o666, (1, 3), 0).done(),
        wire::walk(6, 0, 1, &["ln"]).done(),
        wire::readlink(7, 1).done(),
        wire::walk(8, 0, 2, &["hello"]).done(),
        wire::link(9, 0, 2, "hello2").done(),
        wire::walk(10, 0, 3, &["pipe"]).done(),
        wire::lopen(11, 3, O_RDONLY).done(),
        wire::getattr(12, 3).done(),
        wire::walk(13, 0, 4, &["null"]).done(),
        wire::getattr(14, 4).done(),
        wire::lopen(15, 4, O_RDONLY).done(),
        // Through the new link: the walk stops at it (one qid of two).
        wire::walk(16, 0, 5, &["ln", "passwd"]).done(),
    ]
}

/// Symlinks, FIFOs, device nodes and hard links on `/dev/kvm` with the sandbox on (the 9p
/// thread's symlinkat and mknodat): the real objects under none and passthrough (microvm
/// is root here, so the device node is made too), plain files with the type in xattrs
/// under mapped-xattr; the guest sees each as what it made, and the server opens neither
/// a host FIFO nor a host device node.
#[test]
fn the_guest_makes_symlinks_fifos_device_nodes_and_hard_links() {
    if !kvm_tests_enabled() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: skipping, device nodes and passthrough need microvm to be root");
        return;
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let null_dev = libc::makedev(1, 3);
    for model in ["none", "passthrough", "mapped-xattr"] {
        let virtfs = format!("local,path=SHARE,mount_tag=host0,security_model={model}");
        let (dir, a) = run_requests(&["-virtfs", &virtfs], &nodes_session());
        let share = dir.path().join("share");
        for i in [2, 3, 4, 5, 7, 8, 9, 12, 13] {
            assert_eq!(errno(&a[i]), None, "{model}: request {i}");
        }
        assert_eq!(wire::readlink_target(&a[6]), Some(&b"/etc/passwd"[..]), "{model}: Rreadlink");
        let fifo = wire::getattr_fields(&a[11]).unwrap();
        assert_eq!(fifo.0 & libc::S_IFMT, libc::S_IFIFO, "{model}: the guest sees a FIFO");
        let node = wire::getattr_fields(&a[13]).unwrap();
        // none: the mode less microvm's umask, as QEMU's none.
        let perms = if model == "none" { node.0 & 0o7777 } else { 0o666 };
        assert_eq!((node.0, node.3), (libc::S_IFCHR | perms, null_dev), "{model}: and a device");
        let stop = &a[15];
        assert_eq!((stop[4], u16::from_le_bytes([stop[7], stop[8]])), (111, 1), "{model}: Rwalk stops at the link");
        let (hello, hello2) = (share.join("hello"), share.join("hello2"));
        assert_eq!(std::fs::metadata(&hello).unwrap().ino(), std::fs::metadata(&hello2).unwrap().ino(), "{model}");
        let ln = std::fs::symlink_metadata(share.join("ln")).unwrap();
        let pipe = std::fs::symlink_metadata(share.join("pipe")).unwrap();
        let null = std::fs::symlink_metadata(share.join("null")).unwrap();
        if model == "mapped-xattr" {
            // Plain host files, microvm's: the link's target is its content.
            for m in [&ln, &pipe, &null] {
                assert_eq!(m.mode(), libc::S_IFREG | 0o600, "{model}");
            }
            assert_eq!(std::fs::read(share.join("ln")).unwrap(), b"/etc/passwd");
            assert_eq!(errno(&a[10]), None, "{model}: the host FIFO is a file");
            assert_eq!(errno(&a[14]), None, "{model}: the host device node is a file");
        } else {
            assert!(ln.file_type().is_symlink(), "{model}");
            assert_eq!(std::fs::read_link(share.join("ln")).unwrap().to_str(), Some("/etc/passwd"));
            assert!(pipe.file_type().is_fifo(), "{model}");
            assert!(null.file_type().is_char_device() && null.rdev() == null_dev, "{model}");
            assert_eq!(errno(&a[10]), Some(EPERM), "{model}: the server does not open a host FIFO");
            assert_eq!(errno(&a[14]), Some(EPERM), "{model}: nor a host device node");
        }
        if model == "passthrough" {
            assert_eq!(pipe.mode(), libc::S_IFIFO | 0o640, "passthrough: the guest's mode exactly");
        }
    }
}
