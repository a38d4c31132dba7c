//! `security_model=passthrough` against `none`: creations by guest users (attached with
//! their uid as `n_uname`, as Linux's v9fs with access=user does) and their chown/chmod, as
//! the host sees them; and what happens when microvm may not take another user's ids.
//! These need root (CAP_SETUID, CAP_CHOWN), as passthrough does.

use super::*;
use crate::virtio::ninep::msg::ty::TCLUNK;
use std::os::unix::fs::MetadataExt;

/// Tattach of `fid` to the share's root as guest user `uid`.
fn attach_as(s: &mut Session, fid: u32, uid: u32) {
    let r = s.rpc(|t| Msg::new(wire::ty::TATTACH, t).u32(fid).u32(!0).s("user").s("").u32(uid));
    assert_eq!(r[4], 105, "Rattach: {r:?}");
}

/// Tlcreate of `name` in `dir` (write-only) with `mode` and `gid`, on a clone of `dir`'s
/// fid (numbered dir + 100: a Tlcreate turns its fid into the new file's).
fn create(s: &mut Session, dir: u32, name: &str, mode: u32, gid: u32) -> Vec<u8> {
    let _ = s.rpc(|t| Msg::new(TCLUNK, t).u32(dir + 100));
    assert_eq!(Session::errno(&s.walk(dir, dir + 100, &[])), None, "clone of {dir}");
    s.rpc(|t| Msg::new(wire::ty::TLCREATE, t).u32(dir + 100).s(name).u32(1).u32(mode).u32(gid))
}

fn mkdir(s: &mut Session, dir: u32, name: &str, mode: u32, gid: u32) -> Vec<u8> {
    s.rpc(|t| Msg::new(wire::ty::TMKDIR, t).u32(dir).s(name).u32(mode).u32(gid))
}

/// Tsetattr of mode, uid and gid.
fn chown_chmod(s: &mut Session, fid: u32, mode: u32, uid: u32, gid: u32) -> Vec<u8> {
    s.rpc(|t| {
        let m = Msg::new(wire::ty::TSETATTR, t).u32(fid).u32(0x1 | 0x2 | 0x4).u32(mode).u32(uid).u32(gid);
        m.u64(0).u64(0).u64(0).u64(0).u64(0)
    })
}

/// (uid, gid, mode) of a host file.
fn owner(path: &std::path::Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode())
}

pub(super) fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("not root: passthrough needs CAP_SETUID and CAP_CHOWN; skipping");
    }
    root
}

#[test]
fn passthrough_creates_as_the_guest_user_with_the_guest_mode() {
    if !root() {
        return;
    }
    let dir = TempDir::new("pass");
    // Writable by the guest users below (the host checks their rights, as the guest did).
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut s = Session::open_with(&dir.0, false, SecurityModel::Passthrough, || {});
    attach_as(&mut s, 1, 1234);
    assert_eq!(Session::errno(&create(&mut s, 1, "f", 0o640, 4321)), None);
    // The guest's mode exactly: no umask of microvm's on top (0o666 would be 0o644).
    assert_eq!(owner(&dir.0.join("f")), (1234, 4321, 0o100640));
    assert_eq!(Session::errno(&mkdir(&mut s, 1, "d", 0o755, 4321)), None);
    assert_eq!(owner(&dir.0.join("d")), (1234, 4321, 0o040755));
    // A fid walked from the user's keeps the user.
    assert_eq!(Session::errno(&s.walk(1, 2, &["d"])), None);
    assert_eq!(Session::errno(&create(&mut s, 2, "g", 0o666, 5)), None);
    assert_eq!(owner(&dir.0.join("d/g")), (1234, 5, 0o100666));
    // Another user on the same session, and guest root.
    attach_as(&mut s, 3, 77);
    assert_eq!(Session::errno(&create(&mut s, 3, "h", 0o600, 77)), None);
    assert_eq!(owner(&dir.0.join("h")), (77, 77, 0o100600));
    attach_as(&mut s, 4, 0);
    assert_eq!(Session::errno(&create(&mut s, 4, "r", 0o644, 0)), None);
    assert_eq!(owner(&dir.0.join("r")), (0, 0, 0o100644));
    // chown and chmod from the guest show on the host.
    assert_eq!(Session::errno(&s.walk(4, 5, &["f"])), None);
    assert_eq!(Session::errno(&chown_chmod(&mut s, 5, 0o750, 555, 666)), None);
    assert_eq!(owner(&dir.0.join("f")), (555, 666, 0o100750));
    // The worker thread is back to microvm's ids after each creation: the server's own
    // files (none here) and later requests are unaffected.
    assert_eq!(Session::errno(&s.lcreate(ROOT, "plain")), None);
    assert_eq!(owner(&dir.0.join("plain")).0, 0);
}

#[test]
fn none_creates_as_microvm() {
    if !root() {
        return;
    }
    let dir = TempDir::new("none");
    let mut s = Session::open_with(&dir.0, false, SecurityModel::None, || {});
    attach_as(&mut s, 1, 1234);
    assert_eq!(Session::errno(&create(&mut s, 1, "f", 0o640, 4321)), None);
    let (uid, gid, _) = owner(&dir.0.join("f"));
    assert_eq!((uid, gid), (0, 0), "none: microvm's user, whoever the guest user is");
}

/// microvm without CAP_SETUID (its thread's ids dropped to nobody's): a creation as another
/// user fails with EPERM and leaves nothing, as QEMU's passthrough fails when its chown
/// does; creating as microvm's own user still works.
#[test]
fn passthrough_without_the_rights_refuses_other_users() {
    if !root() {
        return;
    }
    let dir = TempDir::new("norights");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let drop_to_nobody = || {
        // SAFETY: raw set*id calls change only this thread's credentials (the libc
        // wrappers would change every thread's).
        unsafe {
            assert_eq!(libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534), 0);
        }
    };
    let mut s = Session::open_with(&dir.0, false, SecurityModel::Passthrough, drop_to_nobody);
    attach_as(&mut s, 1, 1234);
    assert_eq!(Session::errno(&create(&mut s, 1, "f", 0o640, 4321)), Some(libc::EPERM));
    assert!(!dir.0.join("f").exists(), "nothing is left");
    assert_eq!(Session::errno(&mkdir(&mut s, 1, "d", 0o755, 1234)), Some(libc::EPERM));
    assert!(!dir.0.join("d").exists());
    attach_as(&mut s, 2, 65534);
    assert_eq!(Session::errno(&create(&mut s, 2, "mine", 0o640, 65534)), None);
    assert_eq!(owner(&dir.0.join("mine")), (65534, 65534, 0o100640));
    // chown to someone else fails on the host, as it would for QEMU.
    assert_eq!(Session::errno(&s.walk(2, 3, &["mine"])), None);
    assert_eq!(Session::errno(&chown_chmod(&mut s, 3, 0o600, 1234, 1234)), Some(libc::EPERM));
}
