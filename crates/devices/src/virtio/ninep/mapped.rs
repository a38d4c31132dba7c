//! `security_model=mapped-xattr` (QEMU's `mapped`): the guest's owners and modes are kept
//! in extended attributes of the host files, `user.virtfs.uid`, `user.virtfs.gid`,
//! `user.virtfs.mode` (and `user.virtfs.rdev`), little-endian as QEMU writes them, so a
//! share QEMU used reads the same here. The host files belong to microvm's user: files are
//! created 0600 and directories 0700 (QEMU's SM_LOCAL_MODE_BITS, SM_LOCAL_DIR_MODE_BITS),
//! and the guest's chmod and chown change the attributes, not the host file. What the guest
//! reads (Rgetattr) is the host's, with each attribute present put in its place.
//!
//! The `p9` server keeps its descriptors to itself, so this module reaches a fid's file by
//! the path `paths.rs` follows, to read or write its attributes through `/proc/self/fd`.
//! Where microvm differs: a fid whose file was removed, or moved by the host behind the
//! guest's back, shows the host's owner and mode (the path no longer leads to it); QEMU
//! reads the attributes through the fid's own descriptor. The symlinks, FIFOs and device
//! nodes the guest makes are regular host files with their type in `user.virtfs.mode`
//! (`nodes.rs`).

use super::creds::Creds;
use super::msg::{parts, ty, HEADER_LEN as HEADER};
use super::paths::{c_name, errno, proc_path, FidPaths};
use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;

const UID: &str = "user.virtfs.uid";
const GID: &str = "user.virtfs.gid";
const MODE: &str = "user.virtfs.mode";
const RDEV: &str = "user.virtfs.rdev";
/// Host modes of what the guest creates (QEMU's SM_LOCAL_MODE_BITS, SM_LOCAL_DIR_MODE_BITS).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;
/// Tsetattr's valid bits this module takes over (Linux's P9_ATTR_MODE, _UID, _GID).
const SET_MODE: u32 = 0x1;
const SET_UID: u32 = 0x2;
const SET_GID: u32 = 0x4;
/// Rgetattr: valid[8] qid[13], then mode, uid, gid (4 each), nlink[8], rdev[8].
const GETATTR_MODE_AT: usize = HEADER + 8 + 13;
const GETATTR_RDEV_AT: usize = GETATTR_MODE_AT + 12 + 8;

/// What a request asked that this module finishes once the server has answered.
pub enum Pending {
    /// A creation in `dir` of `name`, to be given the guest's credentials.
    Create { dir: u32, name: Vec<u8>, uid: Option<u32>, gid: u32, mode: u32 },
    /// Rgetattr of `fid`, to be shown with the stored credentials.
    GetAttr { fid: u32 },
}

/// The state of one share's session.
#[derive(Default)]
pub struct Mapped {
    pub(super) creds: Creds,
}

/// Writes `v` at `at` of `buf` (little-endian), if it fits.
fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(b) = buf.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

impl Mapped {
    /// Rewrites `request` for the server, doing its credential part here; `Err(errno)` when
    /// that part fails (the request is then answered with it).
    pub fn before(&mut self, paths: &FidPaths, request: &mut [u8]) -> Result<Option<Pending>, u32> {
        let Some((kind, mut b)) = parts(request) else { return Ok(None) };
        let owner = self.creds.creator(request);
        match kind {
            ty::TLCREATE | ty::TMKDIR => {
                let (Some(dir), Some(name)) = (b.u32(), b.string()) else { return Ok(None) };
                let name = name.to_vec();
                if kind == ty::TLCREATE {
                    b.u32();
                }
                let mode_at = request.len() - b.0.len();
                let (Some(mode), Some(gid)) = (b.u32(), b.u32()) else { return Ok(None) };
                let (kind_bits, host_mode) =
                    if kind == ty::TLCREATE { (libc::S_IFREG, FILE_MODE) } else { (libc::S_IFDIR, DIR_MODE) };
                put_u32(request, mode_at, host_mode);
                let mode = (mode & 0o7777) | kind_bits;
                Ok(Some(Pending::Create { dir, name, uid: owner.map(|o| o.uid), gid, mode }))
            }
            ty::TSETATTR => {
                let (Some(fid), Some(valid), Some(mode), Some(uid), Some(gid)) =
                    (b.u32(), b.u32(), b.u32(), b.u32(), b.u32())
                else {
                    return Ok(None);
                };
                let ours = valid & (SET_MODE | SET_UID | SET_GID);
                if ours == 0 {
                    return Ok(None);
                }
                let file = paths.open(fid).map_err(errno)?;
                let set = |name, on, v: u32| if on { set_xattr(&file, name, &v.to_le_bytes()) } else { Ok(()) };
                set(MODE, valid & SET_MODE != 0, mode).map_err(errno)?;
                set(UID, valid & SET_UID != 0, uid).map_err(errno)?;
                set(GID, valid & SET_GID != 0, gid).map_err(errno)?;
                // The rest (size, times) is the server's; with nothing left it does nothing.
                put_u32(request, HEADER + 4, valid & !ours);
                Ok(None)
            }
            ty::TGETATTR => Ok(b.u32().map(|fid| Pending::GetAttr { fid })),
            _ => Ok(None),
        }
    }

    /// Finishes `pending` on the server's `answer` and follows the fids' users; returns the
    /// answer the guest gets.
    pub fn after(
        &mut self,
        paths: &FidPaths,
        request: &[u8],
        pending: Option<Pending>,
        mut answer: Vec<u8>,
    ) -> Vec<u8> {
        let tag = super::confine::tag_of(request);
        match (pending, answer.get(4).copied()) {
            (Some(Pending::Create { dir, name, uid, gid, mode }), Some(ty::RLCREATE | ty::RMKDIR)) => {
                if let Err(e) = store(paths, dir, &name, uid, gid, mode) {
                    // As QEMU: a creation whose credentials cannot be kept is undone.
                    undo(paths, dir, &name, mode);
                    return super::confine::rlerror(tag, errno(e));
                }
            }
            (Some(Pending::GetAttr { fid }), Some(ty::RGETATTR)) => show(paths, fid, &mut answer),
            _ => {}
        }
        self.creds.observe(request, &answer);
        answer
    }
}

fn store(paths: &FidPaths, dir: u32, name: &[u8], uid: Option<u32>, gid: u32, mode: u32) -> io::Result<()> {
    let mut path = paths.get(dir)?.clone();
    path.push(name.to_vec());
    store_on(&paths.open_path(&path)?, Stored { uid, gid, mode, rdev: None })
}

/// The guest's credentials of a file it creates, as QEMU's mapped model stores them.
pub struct Stored {
    /// `None` for a fid attached without a user: microvm's own, as QEMU records its ids then.
    pub uid: Option<u32>,
    pub gid: u32,
    /// The file's type bits with the guest's permission bits.
    pub mode: u32,
    /// Device nodes' (and every Tmknod's, as QEMU): the host's `makedev` of the guest's numbers.
    pub rdev: Option<u64>,
}

/// Writes `stored` into `file`'s user.virtfs.* attributes.
pub fn store_on(file: &impl AsRawFd, stored: Stored) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    let uid = stored.uid.unwrap_or_else(|| unsafe { libc::geteuid() });
    set_xattr(file, UID, &uid.to_le_bytes())?;
    set_xattr(file, GID, &stored.gid.to_le_bytes())?;
    set_xattr(file, MODE, &stored.mode.to_le_bytes())?;
    match stored.rdev {
        Some(rdev) => set_xattr(file, RDEV, &rdev.to_le_bytes()),
        None => Ok(()),
    }
}

/// The guest's mode of a file (type bits included), if it has one stored.
pub fn stored_mode(file: &impl AsRawFd) -> Option<u32> {
    get_xattr::<4>(file, MODE).map(u32::from_le_bytes)
}

fn undo(paths: &FidPaths, dir: u32, name: &[u8], mode: u32) {
    let (Ok(path), Ok(name)) = (paths.get(dir), c_name(name)) else { return };
    let Ok(dir) = paths.open_path(path) else { return };
    let flags = if mode & libc::S_IFMT == libc::S_IFDIR { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: a NUL-terminated name in a directory fd we own; the result is not needed.
    unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
}

/// Puts the stored credentials into an Rgetattr.
fn show(paths: &FidPaths, fid: u32, answer: &mut [u8]) {
    let Ok(file) = paths.open(fid) else { return };
    for (i, name) in [MODE, UID, GID].into_iter().enumerate() {
        if let Some(v) = get_xattr::<4>(&file, name) {
            put_u32(answer, GETATTR_MODE_AT + 4 * i, u32::from_le_bytes(v));
        }
    }
    if let (Some(v), Some(b)) = (get_xattr::<8>(&file, RDEV), answer.get_mut(GETATTR_RDEV_AT..GETATTR_RDEV_AT + 8)) {
        b.copy_from_slice(&v);
    }
}

fn set_xattr(file: &impl AsRawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let (path, name) = (proc_path(file), CString::new(name).unwrap_or_default());
    // SAFETY: NUL-terminated path and name, a value of `value.len()` bytes.
    let r = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An attribute of exactly `N` bytes, if the file has one.
fn get_xattr<const N: usize>(file: &impl AsRawFd, name: &str) -> Option<[u8; N]> {
    let (path, name) = (proc_path(file), CString::new(name).ok()?);
    let mut v = [0u8; N];
    // SAFETY: NUL-terminated path and name; the kernel writes at most N bytes into `v`.
    let r = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), N) };
    (r == N as isize).then_some(v)
}
