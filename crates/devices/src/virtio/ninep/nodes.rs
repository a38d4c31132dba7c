//! Symlinks, FIFOs, sockets and device nodes the guest makes (`ln -s`, `mkfifo`, `mknod`):
//! Tsymlink and Tmknod, which the `p9` server refuses under every model (EACCES), are
//! answered here, per security model as QEMU's `local` backend does:
//!
//! - `none` and `passthrough`: the real object, `symlinkat`/`mknodat` in the directory
//!   fid's host directory. With passthrough the caller has taken the guest user's ids as
//!   the thread's file-system ids (`creds.rs`), so the object is that user's from its first
//!   instant (QEMU makes it as root, then `fchownat`s it); with none it is microvm's, the
//!   mode less microvm's umask. A device node needs CAP_MKNOD on the host (microvm as root).
//! - `mapped-xattr`: a regular host file, 0600 and microvm's, holding the symlink's target
//!   (empty for a node), and the guest's type, mode, owner and device numbers in its
//!   `user.virtfs.*` attributes (`mapped.rs`, QEMU's layout): the guest sees a symlink, a
//!   FIFO or a device where the host has plain files, and Treadlink reads the target back
//!   from the file's content.
//!
//! A symlink's target is data: nothing here or in the server ever resolves it (every
//! lookup is O_NOFOLLOW, one component at a time; `paths.rs`), and the guest's v9fs
//! resolves it in the guest. The names were checked by `confine.rs` (one component).
//!
//! The guest's v9fs opens FIFOs, sockets and device nodes in the guest (its
//! `init_special_inode`), never through the server. So a Tlopen (or a truncating Tsetattr,
//! which the server does through an open) of a host FIFO, socket or device node is refused
//! here with EPERM: opening a device node the guest made would reach the host's device,
//! and opening a FIFO would stop the server thread until a writer came.

use super::confine::rlerror;
use super::mapped::{store_on, stored_mode, Stored};
use super::msg::{parts, ty, HEADER_LEN};
use super::paths::{c_name, errno, fstat, proc_path, FidPaths};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// The host mode of what mapped-xattr makes (QEMU's SM_LOCAL_MODE_BITS).
const MAPPED_FILE_MODE: libc::mode_t = 0o600;
/// A symlink's mode as the guest sees it (QEMU's v9fs_co_symlink gives 0777).
const SYMLINK_MODE: u32 = 0o777;
/// Tsetattr's valid bit for a new size (Linux's P9_ATTR_SIZE).
const SET_SIZE: u32 = 0x8;
/// The longest symlink target Linux makes (PATH_MAX, terminator included).
const TARGET_MAX: usize = libc::PATH_MAX as usize;

/// What a Tsymlink or Tmknod asks for.
struct NodeRequest<'a> {
    kind: u8,
    dir: u32,
    name: &'a [u8],
    node: Node<'a>,
    gid: u32,
}

enum Node<'a> {
    Symlink {
        target: &'a [u8],
    },
    /// A FIFO, socket, device node (or regular file) with the guest's mode, type bits
    /// included, and device number.
    Special {
        mode: u32,
        rdev: u64,
    },
}

fn parse(request: &[u8]) -> Option<NodeRequest<'_>> {
    let (kind, mut b) = parts(request)?;
    let (dir, name) = (b.u32()?, b.string()?);
    let node = match kind {
        ty::TSYMLINK => Node::Symlink { target: b.string()? },
        ty::TMKNOD => {
            let (mode, major, minor) = (b.u32()?, b.u32()?, b.u32()?);
            Node::Special { mode, rdev: libc::makedev(major, minor) }
        }
        _ => return None,
    };
    Some(NodeRequest { kind, dir, name, node, gid: b.u32()? })
}

/// Whether `request` is one this module answers in place of the server.
pub fn is_creation(request: &[u8]) -> bool {
    matches!(request.get(4), Some(&ty::TSYMLINK | &ty::TMKNOD))
}

/// How a creation is made on the host.
pub enum How {
    /// The real object (none, passthrough: the caller has set the thread's ids).
    Real,
    /// A regular file with the guest's credentials in xattrs; `uid` is the directory
    /// fid's guest user (`None`: microvm's own).
    Mapped { uid: Option<u32> },
}

/// Makes what a Tsymlink or Tmknod asks; the answer (Rsymlink/Rmknod with the new qid, or
/// Rlerror with the host's errno).
pub fn create(paths: &FidPaths, how: How, request: &[u8]) -> Vec<u8> {
    let tag = super::confine::tag_of(request);
    let Some(req) = parse(request) else { return rlerror(tag, libc::EINVAL as u32) };
    let made = match how {
        How::Real => create_real(paths, &req),
        How::Mapped { uid } => create_mapped(paths, &req, uid),
    };
    match made {
        Ok(st) => frame(if req.kind == ty::TSYMLINK { ty::RSYMLINK } else { ty::RMKNOD }, tag, &qid(&st)),
        Err(e) => rlerror(tag, errno(e)),
    }
}

fn create_real(paths: &FidPaths, req: &NodeRequest) -> io::Result<libc::stat> {
    let dir = paths.open(req.dir)?;
    let name = c_name(req.name)?;
    let r = match req.node {
        Node::Symlink { target } => {
            let target = c_name(target)?;
            // SAFETY: NUL-terminated strings and a directory descriptor we own (an O_PATH
            // one serves as the base of *at calls); the result is checked below.
            unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }
        }
        // SAFETY: a NUL-terminated name in a directory descriptor we own; checked below.
        Node::Special { mode, rdev } => unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev) },
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    stat_at(&dir, &name)
}

fn create_mapped(paths: &FidPaths, req: &NodeRequest, uid: Option<u32>) -> io::Result<libc::stat> {
    let (content, mode, rdev) = match req.node {
        Node::Symlink { target } if target.is_empty() || target.contains(&0) => {
            return Err(io::Error::from_raw_os_error(libc::EINVAL))
        }
        Node::Symlink { target } if target.len() >= TARGET_MAX => {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
        }
        Node::Symlink { target } => (target, libc::S_IFLNK | SYMLINK_MODE, None),
        Node::Special { mode, rdev } => {
            let kind = match mode & libc::S_IFMT {
                0 => libc::S_IFREG,
                k @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK) => k,
                _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
            };
            (&[][..], kind | (mode & 0o7777), Some(rdev))
        }
    };
    let dir = paths.open(req.dir)?;
    let name = c_name(req.name)?;
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated name in a directory descriptor we own; checked below.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, MAPPED_FILE_MODE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created and opened, owned by nothing else.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let stored = file.write_all_at(content, 0).and_then(|()| store_on(&file, Stored { uid, gid: req.gid, mode, rdev }));
    if let Err(e) = stored {
        // As QEMU: what cannot be given its credentials is not left behind.
        // SAFETY: the same name in the same directory; the result is not needed.
        unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
        return Err(e);
    }
    fstat(&file)
}

/// mapped-xattr's Treadlink of a symlink the guest made: the host file's content; EINVAL
/// for a file that is no symlink to the guest. `None` for a host symlink, whose target the
/// server reads.
pub fn readlink_mapped(paths: &FidPaths, request: &[u8]) -> Option<Vec<u8>> {
    let tag = super::confine::tag_of(request);
    let (kind, mut b) = parts(request)?;
    if kind != ty::TREADLINK {
        return None;
    }
    let file = paths.open(b.u32()?).ok()?;
    let st = fstat(&file).ok()?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return None;
    }
    if stored_mode(&file).map(|m| m & libc::S_IFMT) != Some(libc::S_IFLNK) {
        // Linux's answer for a file that is no link (the server's readlinkat of an O_PATH
        // descriptor would say ENOENT).
        return Some(rlerror(tag, libc::EINVAL as u32));
    }
    Some(match read_target(&file, &st) {
        Ok(target) => {
            let mut body = (target.len() as u16).to_le_bytes().to_vec();
            body.extend_from_slice(&target);
            frame(ty::RREADLINK, tag, &body)
        }
        Err(e) => rlerror(tag, errno(e)),
    })
}

/// The target a mapped symlink's host file holds.
fn read_target(file: &impl AsRawFd, st: &libc::stat) -> io::Result<Vec<u8>> {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: a NUL-terminated path (the O_PATH descriptor's magic link); checked below.
    // openat, not open: musl's open is the `open` call, which the 9p thread's list lacks.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, proc_path(file).as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nothing else.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut target = vec![0u8; TARGET_MAX];
    let n = file.read_at(&mut target, 0)?;
    target.truncate(n);
    Ok(target)
}

/// EPERM for a Tlopen or a truncating Tsetattr of a host FIFO, socket or device node (see
/// the module's text); `None` lets the request through.
pub fn refuse_special(paths: &FidPaths, request: &[u8]) -> Option<u32> {
    let (kind, mut b) = parts(request)?;
    let fid = b.u32()?;
    let opens = match kind {
        ty::TLOPEN => true,
        ty::TSETATTR => b.u32()? & SET_SIZE != 0,
        _ => false,
    };
    if !opens {
        return None;
    }
    // A fid microvm cannot follow is left to the server, which answers for it.
    let st = fstat(&paths.open(fid).ok()?).ok()?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => Some(libc::EPERM as u32),
        _ => None,
    }
}

/// `name` in `dir`, not followed.
fn stat_at(dir: &impl AsRawFd, name: &std::ffi::CStr) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: a NUL-terminated name in a directory we own; the kernel writes at most a
    // `stat` into `st`; checked below.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded (and `st` was zeroed before).
    Ok(unsafe { st.assume_init() })
}

/// The qid of a host file, as the `p9` server makes them: type, mtime as version, inode.
fn qid(st: &libc::stat) -> [u8; 13] {
    let kind: u8 = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => 0x80,
        libc::S_IFLNK => 0x02,
        _ => 0,
    };
    let mut q = [0u8; 13];
    q[0] = kind;
    q[1..5].copy_from_slice(&(st.st_mtime as u32).to_le_bytes());
    q[5..].copy_from_slice(&st.st_ino.to_le_bytes());
    q
}

/// An R-message of type `kind` with `body`.
fn frame(kind: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(body);
    out
}
