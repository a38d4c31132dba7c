//! The path of each fid below the share, as microvm follows it beside the `p9` server
//! (which keeps its descriptors to itself): attach, walks, the fid a Tlcreate turns into
//! the new file, renames, clunks. What microvm does itself on a fid's file (mapped-xattr's
//! attributes, `mapped.rs`; the symlinks and nodes of `nodes.rs`) reaches it through the
//! share's descriptor, one component at a time with O_NOFOLLOW as the server does, so a
//! symlink in the share is reached as itself and never walked through. Every name here
//! passed `confine.rs` (one component, not `..`).
//!
//! Where microvm differs: a fid whose file was moved on the host behind the guest's back
//! is not found by its path any more (QEMU keeps a descriptor per fid).

use super::msg::{parts, ty};
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// One path below the share, a component per entry.
pub type Path = Vec<Vec<u8>>;

/// The share and each fid's path below it.
pub struct FidPaths {
    share: OwnedFd,
    paths: HashMap<u32, Path>,
}

impl FidPaths {
    pub fn new(share: OwnedFd) -> FidPaths {
        FidPaths { share, paths: HashMap::new() }
    }

    /// The path of `fid`, if the session has it.
    pub fn get(&self, fid: u32) -> io::Result<&Path> {
        self.paths.get(&fid).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// `fid`'s file, as an O_PATH descriptor.
    pub fn open(&self, fid: u32) -> io::Result<OwnedFd> {
        self.open_path(self.get(fid)?)
    }

    /// `path` below the share, as an O_PATH descriptor.
    pub fn open_path(&self, path: &[Vec<u8>]) -> io::Result<OwnedFd> {
        open_beneath(&self.share, path)
    }

    /// Keeps each fid's path as the server's fids move, now that it sent `answer`.
    pub fn follow(&mut self, request: &[u8], answer: &[u8]) {
        let (Some((kind, mut b)), Some(answered)) = (parts(request), answer.get(4).copied()) else { return };
        match (kind, answered) {
            // A new version ends every fid of the session (the server clears its own).
            (ty::TVERSION, _) => self.paths.clear(),
            (ty::TATTACH, ty::RATTACH) => {
                if let Some(fid) = b.u32() {
                    self.paths.insert(fid, Vec::new());
                }
            }
            (ty::TWALK, ty::RWALK) => {
                let (Some(fid), Some(newfid), Some(count)) = (b.u32(), b.u32(), b.u16()) else { return };
                let names: Option<Path> = (0..count).map(|_| b.string().map(<[u8]>::to_vec)).collect();
                let walked = parts(answer).and_then(|(_, mut a)| a.u16());
                // A walk that stopped short makes no new fid (9P's rule).
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

/// A name as the C calls take it (a NUL inside is EINVAL; `confine.rs` refuses it first).
pub fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `path` below `share`, each component looked up with O_NOFOLLOW (a symlink is reached as
/// itself and cannot be walked through), as an O_PATH descriptor.
fn open_beneath(share: &OwnedFd, path: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let mut at = share.try_clone()?;
    for name in path {
        let name = c_name(name)?;
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

/// The file behind a descriptor, for the path-based calls (xattrs, re-opening an O_PATH
/// descriptor): the magic link gives that very file, whatever its name is now.
pub fn proc_path(file: &impl AsRawFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
}

/// The host's `stat` of a descriptor (an O_PATH one too: symlinks are not followed).
pub fn fstat(file: &impl AsRawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: the kernel writes at most a `stat` into `st`; the result is checked.
    if unsafe { libc::fstat(file.as_raw_fd(), st.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so `st` is initialized (and it was zeroed before).
    Ok(unsafe { st.assume_init() })
}

/// An errno for the guest from a host error.
pub fn errno(e: io::Error) -> u32 {
    e.raw_os_error().unwrap_or(libc::EIO) as u32
}
