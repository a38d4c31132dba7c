//! `security_model=mapped-xattr` (QEMU's `mapped`): the guest's owners and modes are kept
//! in extended attributes of the host files, `user.virtfs.uid`, `user.virtfs.gid`,
//! `user.virtfs.mode` (and `user.virtfs.rdev`), little-endian as QEMU writes them, so a
//! share QEMU used reads the same here. The host files belong to microvm's user: files are
//! created 0600 and directories 0700 (QEMU's SM_LOCAL_MODE_BITS, SM_LOCAL_DIR_MODE_BITS),
//! and the guest's chmod and chown change the attributes, not the host file. What the guest
//! reads (Rgetattr) is the host's, with each attribute present put in its place.
//!
//! The `p9` server keeps its descriptors to itself, so this module follows the path of each
//! fid (attach, walks, the fid a Tlcreate turns into the new file, renames) and reaches the
//! file through the share's descriptor, one component at a time with O_NOFOLLOW (as the
//! server does), to read or write its attributes through `/proc/self/fd`. Where microvm
//! differs: a fid whose file was removed, or moved by the host behind the guest's back,
//! shows the host's owner and mode (the path no longer leads to it); QEMU reads the
//! attributes through the fid's own descriptor.

use super::creds::Creds;
use super::msg::{parts, ty, HEADER_LEN as HEADER};
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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
pub struct Mapped {
    share: OwnedFd,
    creds: Creds,
    /// Each fid's path below the share, one component per entry.
    paths: HashMap<u32, Vec<Vec<u8>>>,
}

/// Writes `v` at `at` of `buf` (little-endian), if it fits.
fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(b) = buf.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

impl Mapped {
    pub fn new(share: OwnedFd) -> Mapped {
        Mapped { share, creds: Creds::default(), paths: HashMap::new() }
    }

    /// Rewrites `request` for the server, doing its credential part here; `Err(errno)` when
    /// that part fails (the request is then answered with it).
    pub fn before(&mut self, request: &mut [u8]) -> Result<Option<Pending>, u32> {
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
                let file = self.open(fid).map_err(errno)?;
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

    /// Finishes `pending` on the server's `answer` and follows the fids; returns the answer
    /// the guest gets.
    pub fn after(&mut self, request: &[u8], pending: Option<Pending>, mut answer: Vec<u8>) -> Vec<u8> {
        let tag = super::confine::tag_of(request);
        match (pending, answer.get(4).copied()) {
            (Some(Pending::Create { dir, name, uid, gid, mode }), Some(ty::RLCREATE | ty::RMKDIR)) => {
                if let Err(e) = self.store(dir, &name, uid, gid, mode) {
                    // As QEMU: a creation whose credentials cannot be kept is undone.
                    self.undo(dir, &name, mode);
                    return super::confine::rlerror(tag, errno(e));
                }
            }
            (Some(Pending::GetAttr { fid }), Some(ty::RGETATTR)) => self.show(fid, &mut answer),
            _ => {}
        }
        self.creds.observe(request, &answer);
        self.follow(request, &answer);
        answer
    }

    fn store(&self, dir: u32, name: &[u8], uid: Option<u32>, gid: u32, mode: u32) -> io::Result<()> {
        let mut path = self.paths.get(&dir).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?.clone();
        path.push(name.to_vec());
        let file = open_beneath(&self.share, &path)?;
        // SAFETY: geteuid has no preconditions; a fid attached without a user creates as
        // microvm's, as QEMU's mapped model records its own ids then.
        let uid = uid.unwrap_or_else(|| unsafe { libc::geteuid() });
        set_xattr(&file, UID, &uid.to_le_bytes())?;
        set_xattr(&file, GID, &gid.to_le_bytes())?;
        set_xattr(&file, MODE, &mode.to_le_bytes())
    }

    fn undo(&self, dir: u32, name: &[u8], mode: u32) {
        let (Some(path), Ok(name)) = (self.paths.get(&dir), CString::new(name)) else { return };
        let Ok(dir) = open_beneath(&self.share, path) else { return };
        let flags = if mode & libc::S_IFMT == libc::S_IFDIR { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: a NUL-terminated name in a directory fd we own; the result is not needed.
        unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
    }

    /// Puts the stored credentials into an Rgetattr.
    fn show(&self, fid: u32, answer: &mut [u8]) {
        let Ok(file) = self.open(fid) else { return };
        for (i, name) in [MODE, UID, GID].into_iter().enumerate() {
            if let Some(v) = get_xattr::<4>(&file, name) {
                put_u32(answer, GETATTR_MODE_AT + 4 * i, u32::from_le_bytes(v));
            }
        }
        if let (Some(v), Some(b)) = (get_xattr::<8>(&file, RDEV), answer.get_mut(GETATTR_RDEV_AT..GETATTR_RDEV_AT + 8))
        {
            b.copy_from_slice(&v);
        }
    }

    fn open(&self, fid: u32) -> io::Result<OwnedFd> {
        let path = self.paths.get(&fid).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        open_beneath(&self.share, path)
    }

    /// Keeps each fid's path as the server's fids move.
    fn follow(&mut self, request: &[u8], answer: &[u8]) {
        let (Some((kind, mut b)), Some(answered)) = (parts(request), answer.get(4).copied()) else { return };
        match (kind, answered) {
            (ty::TATTACH, ty::RATTACH) => {
                if let Some(fid) = b.u32() {
                    self.paths.insert(fid, Vec::new());
                }
            }
            (ty::TWALK, ty::RWALK) => {
                let (Some(fid), Some(newfid), Some(count)) = (b.u32(), b.u32(), b.u16()) else { return };
                let names: Option<Vec<Vec<u8>>> = (0..count).map(|_| b.string().map(<[u8]>::to_vec)).collect();
                let walked = parts(answer).and_then(|(_, mut a)| a.u16());
                if let (Some(mut path), Some(names)) = (self.paths.get(&fid).cloned(), names) {
                    if count == 0 || walked == Some(count) {
                        path.extend(names);
                        self.paths.insert(newfid, path);
                    }
                }
            }
            (ty::TLCREATE, ty::RLCREATE) => {
                let (Some(fid), Some(name)) = (b.u32(), b.string()) else { return };
                if let Some(path) = self.paths.get_mut(&fid) {
                    path.push(name.to_vec());
                }
            }
            (ty::TRENAMEAT, ty::RRENAMEAT) => {
                let (Some(old_dir), Some(old), Some(new_dir), Some(new)) = (b.u32(), b.string(), b.u32(), b.string())
                else {
                    return;
                };
                let (Some(mut from), Some(mut to)) =
                    (self.paths.get(&old_dir).cloned(), self.paths.get(&new_dir).cloned())
                else {
                    return;
                };
                from.push(old.to_vec());
                to.push(new.to_vec());
                for path in self.paths.values_mut() {
                    if path.starts_with(&from) {
                        let rest = path.split_off(from.len());
                        *path = to.iter().cloned().chain(rest).collect();
                    }
                }
            }
            (ty::TCLUNK | ty::TREMOVE, _) => {
                if let Some(fid) = b.u32() {
                    self.paths.remove(&fid);
                }
            }
            _ => {}
        }
    }
}

fn errno(e: io::Error) -> u32 {
    e.raw_os_error().unwrap_or(libc::EIO) as u32
}

/// `path` below `share`, each component looked up with O_NOFOLLOW (a symlink is reached as
/// itself and cannot be walked through), as an O_PATH descriptor.
fn open_beneath(share: &OwnedFd, path: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let mut at = share.try_clone()?;
    for name in path {
        let name = CString::new(name.as_slice()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a NUL-terminated name relative to a directory fd we own; checked below.
        let fd =
            unsafe { libc::openat(at.as_raw_fd(), name.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just opened, owned by nothing else.
        at = unsafe { OwnedFd::from_raw_fd(fd) };
    }
    Ok(at)
}

/// The file behind an O_PATH descriptor, for the path-based xattr calls.
fn proc_path(file: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
}

fn set_xattr(file: &OwnedFd, name: &str, value: &[u8]) -> io::Result<()> {
    let (path, name) = (proc_path(file), CString::new(name).unwrap_or_default());
    // SAFETY: NUL-terminated path and name, a value of `value.len()` bytes.
    let r = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An attribute of exactly `N` bytes, if the file has one.
fn get_xattr<const N: usize>(file: &OwnedFd, name: &str) -> Option<[u8; N]> {
    let (path, name) = (proc_path(file), CString::new(name).ok()?);
    let mut v = [0u8; N];
    // SAFETY: NUL-terminated path and name; the kernel writes at most N bytes into `v`.
    let r = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), N) };
    (r == N as isize).then_some(v)
}
