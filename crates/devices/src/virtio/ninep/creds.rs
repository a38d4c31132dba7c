//! `security_model=passthrough`: what the guest creates belongs on the host to the guest
//! user who created it, with the mode the guest asked for, as with QEMU's passthrough.
//!
//! QEMU creates the file as its own user, then `fchownat`s and `fchmodat`s it (and removes
//! it if that fails). The `p9` server here keeps its descriptors to itself, so instead the
//! worker thread takes the guest user's ids as its file-system ids (`setfsuid`/`setfsgid`,
//! which Linux keeps per thread) around the one request that creates, and its thread has a
//! umask of 0 in a file-system context of its own (`unshare(CLONE_FS)`): the file is the
//! user's, with the guest's mode (the guest kernel applied the guest's umask already), from
//! its first instant. The host's permission checks for the creation are then the guest
//! user's; where QEMU (root) creates first, a creation the host would refuse that user
//! fails here with the host's error.
//!
//! The uid is the fid's: Linux's v9fs attaches each guest user (`access=user`, its default
//! for 9P2000.L) with `n_uname` set to the uid, and a walk's new fid keeps it; the gid is
//! in the creating request itself (Tlcreate, Tmkdir, Tsymlink, Tmknod). A fid attached without `n_uname` creates as microvm.
//!
//! Taking another user's ids needs CAP_SETUID and CAP_SETGID (microvm run as root, as QEMU
//! needs for passthrough). Without them the creation is answered EPERM and nothing is
//! created, as QEMU's passthrough answers when its chown fails; chmod and chown
//! (Tsetattr) reach the host file and fail there the same way.

use super::msg::{parts, ty};
use std::collections::HashMap;

/// `n_uname` when the client sent none (Linux's P9_NONUNAME).
const NO_UNAME: u32 = !0;

/// The guest user of each fid of one 9P session.
#[derive(Default)]
pub struct Creds {
    uid_of_fid: HashMap<u32, u32>,
}

/// The guest user and group a request creates as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Creds {
    /// Who `request` creates as, if it creates (Tlcreate, Tmkdir, Tsymlink, Tmknod) in a
    /// directory fid whose guest user is known.
    pub fn creator(&self, request: &[u8]) -> Option<Owner> {
        let (kind, mut b) = parts(request)?;
        if !matches!(kind, ty::TLCREATE | ty::TMKDIR | ty::TSYMLINK | ty::TMKNOD) {
            return None;
        }
        let fid = b.u32()?;
        b.string()?; // the name
                     // What lies between the name and the gid: flags and mode; mode; the target; mode,
                     // major and minor.
        match kind {
            ty::TLCREATE => b.take(8)?,
            ty::TMKDIR => b.take(4)?,
            ty::TSYMLINK => b.string()?,
            _ => b.take(12)?,
        };
        let gid = b.u32()?;
        let uid = *self.uid_of_fid.get(&fid)?;
        Some(Owner { uid, gid })
    }

    /// Follows the fids `request` made or ended, now that the server sent `answer`.
    pub fn observe(&mut self, request: &[u8], answer: &[u8]) {
        let (Some((kind, mut b)), Some(answered)) = (parts(request), answer.get(4)) else { return };
        match (kind, *answered) {
            (ty::TATTACH, ty::RATTACH) => {
                let (Some(fid), Some(_afid), Some(_), Some(_), Some(uid)) =
                    (b.u32(), b.u32(), b.string(), b.string(), b.u32())
                else {
                    return;
                };
                self.set(fid, (uid != NO_UNAME).then_some(uid));
            }
            (ty::TWALK, ty::RWALK) => {
                let (Some(fid), Some(newfid), Some(names)) = (b.u32(), b.u32(), b.u16()) else { return };
                let walked = parts(answer).and_then(|(_, mut a)| a.u16());
                // A walk that stopped short makes no new fid (9P's rule).
                if names == 0 || walked == Some(names) {
                    let uid = self.uid_of_fid.get(&fid).copied();
                    self.set(newfid, uid);
                }
            }
            (ty::TCLUNK | ty::TREMOVE, _) => {
                if let Some(fid) = b.u32() {
                    self.uid_of_fid.remove(&fid);
                }
            }
            _ => {}
        }
    }

    fn set(&mut self, fid: u32, uid: Option<u32>) {
        match uid {
            Some(uid) => self.uid_of_fid.insert(fid, uid),
            None => self.uid_of_fid.remove(&fid),
        };
    }
}

/// This thread's file-system ids while it creates for a guest user; back to the thread's
/// own when dropped.
pub struct AsOwner {
    own: Owner,
}

/// The file-system ids a `setfs*id` call leaves (it returns the previous ones; an invalid
/// id, all ones, changes nothing).
fn fsids() -> Owner {
    // SAFETY: setfsuid/setfsgid with -1 only return the current ids.
    unsafe { Owner { uid: libc::setfsuid(!0) as u32, gid: libc::setfsgid(!0) as u32 } }
}

impl AsOwner {
    /// Takes `owner`'s ids, or fails with EPERM (and keeps the thread's) where this
    /// process may not.
    pub fn take(owner: Owner) -> Result<AsOwner, u32> {
        let own = fsids();
        // SAFETY: plain system calls on this thread's credentials; checked below.
        unsafe {
            libc::setfsgid(owner.gid);
            libc::setfsuid(owner.uid);
        }
        let guard = AsOwner { own };
        if fsids() != owner {
            return Err(libc::EPERM as u32); // the guard puts the thread's ids back
        }
        Ok(guard)
    }
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        // SAFETY: back to ids this thread had; plain system calls.
        unsafe {
            libc::setfsuid(self.own.uid);
            libc::setfsgid(self.own.gid);
        }
    }
}

/// Gives this thread a file-system context of its own with a umask of 0, so a creation
/// gets exactly the mode the guest sent.
pub fn own_umask() -> std::io::Result<()> {
    // SAFETY: unshare(CLONE_FS) copies this thread's cwd/root/umask; nothing shared changes.
    if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: sets the umask of this thread's own fs context only.
    unsafe { libc::umask(0) };
    Ok(())
}
