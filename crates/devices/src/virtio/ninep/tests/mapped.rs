//! `security_model=mapped-xattr`: the guest's owners and modes live in the host files'
//! user.virtfs.* attributes (QEMU's names and encoding), the host files stay microvm's
//! (0600 files, 0700 directories), and Rgetattr shows the stored ones.

use super::*;
use crate::virtio::ninep::msg::ty::{TGETATTR, TRENAMEAT, TSETATTR};
use std::os::unix::fs::MetadataExt;

pub(super) fn attach_as(s: &mut Session, fid: u32, uid: u32) {
    let r = s.rpc(|t| Msg::new(wire::ty::TATTACH, t).u32(fid).u32(!0).s("user").s("").u32(uid));
    assert_eq!(r[4], 105, "Rattach: {r:?}");
}

/// (mode, uid, gid) as the guest reads them (Rgetattr).
fn getattr(s: &mut Session, fid: u32) -> (u32, u32, u32) {
    let r = s.rpc(|t| Msg::new(TGETATTR, t).u32(fid).u64(0x7ff));
    assert_eq!(r[4], 25, "Rgetattr: {r:?}");
    let at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().unwrap());
    (at(28), at(32), at(36))
}

fn setattr(s: &mut Session, fid: u32, valid: u32, mode: u32, uid: u32, gid: u32) -> Vec<u8> {
    s.rpc(|t| Msg::new(TSETATTR, t).u32(fid).u32(valid).u32(mode).u32(uid).u32(gid).u64(0).u64(0).u64(0).u64(0).u64(0))
}

/// A user.virtfs.* attribute of a host file, as QEMU reads it (little-endian u32).
pub(super) fn xattr(path: &std::path::Path, name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut v = [0u8; 4];
    // SAFETY: NUL-terminated strings, a 4-byte buffer.
    let r = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), v.as_mut_ptr().cast(), 4) };
    (r == 4).then(|| u32::from_le_bytes(v))
}

fn set_xattr(path: &std::path::Path, name: &str, v: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let v = v.to_le_bytes();
    // SAFETY: NUL-terminated strings, a 4-byte value.
    assert_eq!(unsafe { libc::setxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), 4, 0) }, 0);
}

pub(super) fn host(path: &std::path::Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mode(), m.uid(), m.gid())
}

pub(super) fn me() -> (u32, u32) {
    // SAFETY: no preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

#[test]
fn creations_keep_the_guests_credentials_in_xattrs() {
    let dir = TempDir::new("mapped");
    let mut s = Session::open_with(&dir.0, false, SecurityModel::MappedXattr, || {});
    attach_as(&mut s, 1, 1234);
    assert_eq!(Session::errno(&s.walk(1, 2, &[])), None);
    let r = s.rpc(|t| Msg::new(wire::ty::TLCREATE, t).u32(2).s("f").u32(1).u32(0o640).u32(4321));
    assert_eq!(Session::errno(&r), None);
    let f = dir.0.join("f");
    let (uid, gid) = me();
    assert_eq!(host(&f), (0o100600, uid, gid), "the host file is microvm's, 0600");
    assert_eq!(
        (xattr(&f, "user.virtfs.uid"), xattr(&f, "user.virtfs.gid"), xattr(&f, "user.virtfs.mode")),
        (Some(1234), Some(4321), Some(0o100640))
    );
    // fid 2 is the new file now: the guest reads the guest's credentials.
    assert_eq!(getattr(&mut s, 2), (0o100640, 1234, 4321));
    let r = s.rpc(|t| Msg::new(wire::ty::TMKDIR, t).u32(1).s("d").u32(0o755).u32(4321));
    assert_eq!(Session::errno(&r), None);
    assert_eq!(host(&dir.0.join("d")).0, 0o040700);
    assert_eq!(Session::errno(&s.walk(1, 3, &["d"])), None);
    assert_eq!(getattr(&mut s, 3), (0o040755, 1234, 4321));
}

#[test]
fn chmod_and_chown_change_the_xattrs_not_the_host_file() {
    let dir = TempDir::new("mapped-chown");
    std::fs::write(dir.0.join("f"), b"x").unwrap();
    let before = host(&dir.0.join("f"));
    let mut s = Session::open_with(&dir.0, false, SecurityModel::MappedXattr, || {});
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["f"])), None);
    // A file without attributes shows the host's credentials.
    assert_eq!(getattr(&mut s, 1), before);
    assert_eq!(Session::errno(&setattr(&mut s, 1, 0x1 | 0x2 | 0x4, 0o100751, 77, 88)), None);
    assert_eq!(host(&dir.0.join("f")), before, "the host file is untouched");
    assert_eq!(getattr(&mut s, 1), (0o100751, 77, 88));
    // Only the uid: the gid stays.
    assert_eq!(Session::errno(&setattr(&mut s, 1, 0x2, 0, 99, 0)), None);
    assert_eq!(getattr(&mut s, 1), (0o100751, 99, 88));
    // The fid follows a rename of its file (and of its directory's entries).
    assert_eq!(Session::errno(&s.rpc(|t| Msg::new(TRENAMEAT, t).u32(ROOT).s("f").u32(ROOT).s("g"))), None);
    assert_eq!(getattr(&mut s, 1), (0o100751, 99, 88));
    assert_eq!(xattr(&dir.0.join("g"), "user.virtfs.uid"), Some(99));
}

/// A share QEMU's mapped-xattr model wrote reads the same here.
#[test]
fn a_share_written_by_qemu_reads_the_same() {
    let dir = TempDir::new("mapped-qemu");
    let f = dir.0.join("from-qemu");
    std::fs::write(&f, b"x").unwrap();
    set_xattr(&f, "user.virtfs.uid", 1000);
    set_xattr(&f, "user.virtfs.gid", 100);
    set_xattr(&f, "user.virtfs.mode", 0o100644);
    let mut s = Session::open_with(&dir.0, false, SecurityModel::MappedXattr, || {});
    assert_eq!(Session::errno(&s.walk(ROOT, 1, &["from-qemu"])), None);
    assert_eq!(getattr(&mut s, 1), (0o100644, 1000, 100));
    // With the none model the same file shows the host's.
    let mut plain = Session::open(&dir.0, false);
    assert_eq!(Session::errno(&plain.walk(ROOT, 1, &["from-qemu"])), None);
    assert_eq!(getattr(&mut plain, 1), host(&f));
}
