//! Symlinks, FIFOs, device nodes and hard links the guest makes (Tsymlink, Tmknod, Tlink,
//! Treadlink; `nodes.rs`), per security model, and that a symlink the guest makes is data
//! the server never follows.

use super::mapped::{attach_as, host, me, xattr};
use super::passthrough::root;
use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

const S_IFIFO: u32 = libc::S_IFIFO;
const S_IFCHR: u32 = libc::S_IFCHR;
const S_IFLNK: u32 = libc::S_IFLNK;
/// The answers' types (the request's + 1).
const RSYMLINK: u8 = 17;
const RMKNOD: u8 = 19;
const RLINK: u8 = 71;

impl Session {
    fn symlink(&mut self, dir: u32, name: &str, target: &str) -> Vec<u8> {
        self.rpc(|t| wire::symlink(t, dir, name, target, 4321))
    }
    fn mknod(&mut self, dir: u32, name: &str, mode: u32, dev: (u32, u32)) -> Vec<u8> {
        self.rpc(|t| wire::mknod(t, dir, name, mode, dev, 4321))
    }
    fn link(&mut self, dir: u32, fid: u32, name: &str) -> Vec<u8> {
        self.rpc(|t| wire::link(t, dir, fid, name))
    }
    /// Treadlink's target, or the errno.
    fn readlink(&mut self, fid: u32) -> Result<Vec<u8>, i32> {
        let r = self.rpc(|t| wire::readlink(t, fid));
        match Session::errno(&r) {
            Some(e) => Err(e),
            None => Ok(wire::readlink_target(&r).unwrap().to_vec()),
        }
    }
    /// Rgetattr's (mode, uid, gid, rdev).
    fn attrs(&mut self, fid: u32) -> (u32, u32, u32, u64) {
        let r = self.rpc(|t| wire::getattr(t, fid));
        wire::getattr_fields(&r).unwrap_or_else(|| panic!("Rgetattr: {r:?}"))
    }
}

/// A share beside a secret file, for the escape checks.
fn share_beside_a_secret(name: &str) -> (TempDir, PathBuf) {
    let outer = TempDir::new(name);
    std::fs::write(outer.0.join("secret"), b"outside").unwrap();
    let share = outer.0.join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::set_permissions(&share, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(share.join("f"), b"data").unwrap();
    (outer, share)
}

/// What every model must refuse or keep: names that are not one component, and links out
/// of the share that the server must never follow.
fn links_lead_nowhere(s: &mut Session, outer: &std::path::Path, share: &std::path::Path) {
    for r in [
        s.symlink(ROOT, "../escaped", "x"),
        s.mknod(ROOT, "..", S_IFIFO | 0o644, (0, 0)),
        s.link(ROOT, ROOT, "../escaped"),
    ] {
        assert_eq!(Session::errno(&r), Some(libc::EPERM));
    }
    assert!(!outer.join("escaped").exists());
    let secret = outer.join("secret");
    assert_eq!(Session::errno(&s.symlink(ROOT, "out", secret.to_str().unwrap())), None);
    assert_eq!(Session::errno(&s.symlink(ROOT, "up", "..")), None);
    // Walking through the links stops at them (one qid, no new fid)...
    for (link, beyond) in [("up", "secret"), ("out", "x")] {
        let r = s.walk(ROOT, 50, &[link, beyond]);
        assert_eq!((r[4], u16::from_le_bytes([r[7], r[8]])), (111, 1), "{link}: Rwalk stops at the link");
        assert_eq!(Session::errno(&s.walk(50, 51, &[])), Some(libc::EBADF), "no fid was made through {link}");
    }
    // ...opening one does not reach its target (a real link is not opened; under
    // mapped-xattr the link is a file whose content is the target's name)...
    assert_eq!(Session::errno(&s.walk(ROOT, 52, &["out"])), None);
    if Session::errno(&s.lopen(52, libc::O_RDONLY)).is_none() {
        assert_ne!(s.read(52, 100), b"outside", "the server followed the link");
    }
    // ...and a hard link of it names the link, not its target.
    assert_eq!(Session::errno(&s.link(ROOT, 52, "hard-out")), None);
    assert_eq!(std::fs::read(&secret).unwrap(), b"outside");
    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1, "the secret got no second name");
    assert!(!share.join("escaped").exists());
}

#[test]
fn none_makes_real_symlinks_fifos_and_hard_links() {
    let (outer, share) = share_beside_a_secret("nodes-none");
    let mut s = Session::open(&share, false);
    let r = s.symlink(ROOT, "ln", "/etc/passwd");
    assert_eq!((Session::errno(&r), r[4], r[7]), (None, RSYMLINK, 0x02), "Rsymlink with a symlink qid");
    assert_eq!(std::fs::read_link(share.join("ln")).unwrap().to_str(), Some("/etc/passwd"));
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["ln"])), None);
    assert_eq!(s.readlink(1), Ok(b"/etc/passwd".to_vec()), "Treadlink gives the target back");
    assert_eq!(Session::errno(&s.lopen(1, libc::O_RDONLY)), Some(libc::ELOOP), "the server never follows it");

    let r = s.mknod(ROOT, "pipe", S_IFIFO | 0o644, (0, 0));
    assert_eq!((Session::errno(&r), r[4]), (None, RMKNOD));
    assert!(std::fs::symlink_metadata(share.join("pipe")).unwrap().file_type().is_fifo());
    // The guest opens FIFOs itself; the server would wait for a writer forever.
    assert_eq!(Session::errno(&s.walk(ROOT, 2, &["pipe"])), None);
    assert_eq!(Session::errno(&s.lopen(2, libc::O_RDONLY)), Some(libc::EPERM));
    assert_eq!(s.attrs(2).0 & libc::S_IFMT, S_IFIFO);

    // Tlink (the server's own): a second name for the same file.
    assert_eq!(Session::errno(&s.walk(ROOT, 3, &["f"])), None);
    let r = s.link(ROOT, 3, "g");
    assert_eq!((Session::errno(&r), r[4]), (None, RLINK));
    let (f, g) = (std::fs::metadata(share.join("f")).unwrap(), std::fs::metadata(share.join("g")).unwrap());
    assert_eq!((f.ino(), f.nlink()), (g.ino(), 2));
    assert_eq!(Session::errno(&s.symlink(ROOT, "ln", "again")), Some(libc::EEXIST));
    links_lead_nowhere(&mut s, &outer.0, &share);
}

#[test]
fn passthrough_makes_nodes_as_the_guest_user() {
    if !root() {
        return;
    }
    let (outer, share) = share_beside_a_secret("nodes-pass");
    let mut s = Session::open_with(&share, false, SecurityModel::Passthrough, || {});
    attach_as(&mut s, 1, 1234);
    assert_eq!(Session::errno(&s.symlink(1, "ln", "target")), None);
    let m = std::fs::symlink_metadata(share.join("ln")).unwrap();
    assert_eq!((m.file_type().is_symlink(), m.uid(), m.gid()), (true, 1234, 4321), "the guest user's symlink");
    assert_eq!(Session::errno(&s.mknod(1, "pipe", S_IFIFO | 0o640, (0, 0))), None);
    assert_eq!(host(&share.join("pipe")), (S_IFIFO | 0o640, 1234, 4321), "its exact mode, umask 0");
    // A guest user other than root has no CAP_MKNOD on the host (setfsuid drops it).
    assert_eq!(Session::errno(&s.mknod(1, "null", S_IFCHR | 0o666, (1, 3))), Some(libc::EPERM));
    assert!(!share.join("null").exists());
    // The guest's root makes the real device node; the server never opens it.
    attach_as(&mut s, 2, 0);
    assert_eq!(Session::errno(&s.mknod(2, "null", S_IFCHR | 0o666, (1, 3))), None);
    let m = std::fs::symlink_metadata(share.join("null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), libc::makedev(1, 3));
    assert_eq!(Session::errno(&s.walk(ROOT, 3, &["null"])), None);
    assert_eq!(s.attrs(3), (S_IFCHR | 0o666, 0, 4321, libc::makedev(1, 3)));
    assert_eq!(Session::errno(&s.lopen(3, libc::O_RDWR)), Some(libc::EPERM), "no host device through the share");
    let truncate = s.rpc(|t| {
        Msg::new(wire::ty::TSETATTR, t).u32(3).u32(0x8).u32(0).u32(0).u32(0).u64(0).u64(0).u64(0).u64(0).u64(0)
    });
    assert_eq!(Session::errno(&truncate), Some(libc::EPERM));
    links_lead_nowhere(&mut s, &outer.0, &share);
}

/// An 8-byte user.virtfs.rdev, as QEMU writes it.
fn rdev_xattr(path: &std::path::Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut v = [0u8; 8];
    // SAFETY: NUL-terminated strings, an 8-byte buffer.
    let r = unsafe { libc::getxattr(c.as_ptr(), c"user.virtfs.rdev".as_ptr(), v.as_mut_ptr().cast(), 8) };
    (r == 8).then(|| u64::from_le_bytes(v))
}

#[test]
fn mapped_xattr_makes_plain_files_with_the_type_in_xattrs() {
    let (outer, share) = share_beside_a_secret("nodes-mapped");
    let mut s = Session::open_with(&share, false, SecurityModel::MappedXattr, || {});
    attach_as(&mut s, 1, 1234);
    let (uid, gid) = me();
    let r = s.symlink(1, "ln", "/etc/passwd");
    assert_eq!((Session::errno(&r), r[4]), (None, RSYMLINK));
    let ln = share.join("ln");
    assert_eq!(host(&ln), (libc::S_IFREG | 0o600, uid, gid), "a plain host file, microvm's");
    assert_eq!(std::fs::read(&ln).unwrap(), b"/etc/passwd", "holding the target");
    let stored =
        |p: &std::path::Path| (xattr(p, "user.virtfs.uid"), xattr(p, "user.virtfs.gid"), xattr(p, "user.virtfs.mode"));
    assert_eq!(stored(&ln), (Some(1234), Some(4321), Some(S_IFLNK | 0o777)));
    assert_eq!(Session::errno(&s.walk(ROOT, 2, &["ln"])), None);
    assert_eq!(s.attrs(2), (S_IFLNK | 0o777, 1234, 4321, 0), "the guest sees a symlink");
    assert_eq!(s.readlink(2), Ok(b"/etc/passwd".to_vec()));

    assert_eq!(Session::errno(&s.mknod(1, "pipe", S_IFIFO | 0o640, (0, 0))), None);
    assert_eq!(host(&share.join("pipe")), (libc::S_IFREG | 0o600, uid, gid));
    assert_eq!(stored(&share.join("pipe")), (Some(1234), Some(4321), Some(S_IFIFO | 0o640)));
    // A device node needs no right on the host: it is a file there, never the device.
    assert_eq!(Session::errno(&s.mknod(1, "null", S_IFCHR | 0o666, (1, 3))), None);
    let null = share.join("null");
    assert_eq!(std::fs::read(&null).unwrap(), b"", "an empty host file");
    assert_eq!(rdev_xattr(&null), Some(libc::makedev(1, 3)));
    assert_eq!(Session::errno(&s.walk(ROOT, 3, &["null"])), None);
    assert_eq!(s.attrs(3), (S_IFCHR | 0o666, 1234, 4321, libc::makedev(1, 3)));
    assert_eq!(Session::errno(&s.mknod(1, "dir", libc::S_IFDIR | 0o755, (0, 0))), Some(libc::EINVAL));
    assert!(!share.join("dir").exists());

    // A file that is no symlink to the guest is no link; a hard link keeps the type.
    assert_eq!(Session::errno(&s.walk(ROOT, 4, &["f"])), None);
    assert_eq!(s.readlink(4), Err(libc::EINVAL));
    assert_eq!(Session::errno(&s.link(ROOT, 2, "ln2")), None);
    assert_eq!(Session::errno(&s.walk(ROOT, 5, &["ln2"])), None);
    assert_eq!(s.readlink(5), Ok(b"/etc/passwd".to_vec()));
    assert_eq!(s.attrs(5).0, S_IFLNK | 0o777);
    links_lead_nowhere(&mut s, &outer.0, &share);
    // Under mapped-xattr the links are files: their target is only their content.
    assert_eq!(std::fs::read(share.join("out")).unwrap(), outer.0.join("secret").as_os_str().as_encoded_bytes());
}

/// A host symlink in a mapped-xattr share still reads as the host's link.
#[test]
fn mapped_xattr_reads_host_symlinks_from_the_host() {
    let dir = TempDir::new("nodes-mapped-host");
    std::os::unix::fs::symlink("elsewhere", dir.0.join("hostlink")).unwrap();
    let mut s = Session::open_with(&dir.0, false, SecurityModel::MappedXattr, || {});
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["hostlink"])), None);
    assert_eq!(s.readlink(1), Ok(b"elsewhere".to_vec()));
}

#[test]
fn a_read_only_share_makes_no_nodes() {
    let dir = TempDir::new("nodes-ro");
    std::fs::write(dir.0.join("f"), b"x").unwrap();
    for model in [SecurityModel::None, SecurityModel::MappedXattr] {
        let mut s = Session::open_with(&dir.0, true, model, || {});
        assert_eq!(Session::errno(&s.symlink(ROOT, "ln", "x")), Some(libc::EROFS));
        assert_eq!(Session::errno(&s.mknod(ROOT, "p", S_IFIFO | 0o644, (0, 0))), Some(libc::EROFS));
        assert_eq!(Session::errno(&s.walk(ROOT, 1, &["f"])), None);
        assert_eq!(Session::errno(&s.link(ROOT, 1, "g")), Some(libc::EROFS));
    }
    let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["f"]);
}
