//! What keeps the 9p server inside its shared folder, checked on the raw request before
//! the `p9` server sees it. The `p9` crate assumes a jail around it (crosvm pivots into the
//! share): it resolves every name with `openat(dir_fd, name)`, so a walk to `..` from the
//! root fid, or a created name holding a `/`, would leave the share. Every name a request
//! resolves against a directory must therefore be one path component. Symlinks need no
//! check here: the server looks names up with O_NOFOLLOW, and re-opening an O_PATH fd of a
//! symlink through /proc fails with ELOOP, so a link the host made is never followed
//! (tested in `tests.rs`). The worker thread is also under Landlock (`worker.rs`).
//!
//! `readonly=on` is enforced here too: every request that would change the share is
//! answered EROFS, as QEMU's readonly export does.

use super::msg::{ty, HEADER_LEN};

/// Open flags (Linux's, which 9P2000.L carries as they are) that change a file.
const WRITE_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC | libc::O_APPEND | libc::O_CREAT) as u32;

/// Why a request is answered with an error without reaching the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A name that is not one component of the current directory (`..`, `.`, empty, or
    /// holding `/` or NUL): EPERM, as a jail would leave nothing to reach.
    Escape,
    /// A change to a `readonly=on` share: EROFS.
    ReadOnly,
    /// A message too short for what its type carries: EINVAL.
    Malformed,
}

impl Refusal {
    pub fn errno(self) -> u32 {
        match self {
            Refusal::Escape => libc::EPERM as u32,
            Refusal::ReadOnly => libc::EROFS as u32,
            Refusal::Malformed => libc::EINVAL as u32,
        }
    }
}

/// A little-endian reader over the message body, as 9P encodes it.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        if self.rest.len() < n {
            return Err(Refusal::Malformed);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn skip(&mut self, n: usize) -> Result<(), Refusal> {
        self.take(n).map(|_| ())
    }
    fn u16(&mut self) -> Result<u16, Refusal> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Refusal> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A 9P string: a 16-bit length, then the bytes.
    fn string(&mut self) -> Result<&'a [u8], Refusal> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
    /// A string that names an entry of a directory.
    fn name(&mut self) -> Result<(), Refusal> {
        let name = self.string()?;
        if is_one_component(name) {
            Ok(())
        } else {
            Err(Refusal::Escape)
        }
    }
}

/// A name `openat(dir, name)` resolves inside `dir` and nowhere else.
pub fn is_one_component(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Checks one whole request (header included). `Ok` lets the server answer it.
pub fn check(request: &[u8], read_only: bool) -> Result<(), Refusal> {
    if request.len() < HEADER_LEN {
        // The server answers nothing it cannot frame; the caller deals with it.
        return Ok(());
    }
    let kind = request[4];
    let mut f = Fields { rest: &request[HEADER_LEN..] };
    if read_only && changes_the_share(kind, &mut Fields { rest: f.rest })? {
        return Err(Refusal::ReadOnly);
    }
    match kind {
        ty::TWALK => {
            f.skip(8)?;
            let count = f.u16()?;
            for _ in 0..count {
                f.name()?;
            }
        }
        ty::TLCREATE | ty::TSYMLINK | ty::TMKNOD | ty::TMKDIR | ty::TUNLINKAT => {
            f.skip(4)?;
            f.name()?;
        }
        ty::TRENAME | ty::TLINK => {
            f.skip(8)?;
            f.name()?;
        }
        ty::TRENAMEAT => {
            f.skip(4)?;
            f.name()?;
            f.skip(4)?;
            f.name()?;
        }
        _ => {}
    }
    Ok(())
}

/// Whether a request of type `kind` (body in `f`) would change the share.
fn changes_the_share(kind: u8, f: &mut Fields) -> Result<bool, Refusal> {
    Ok(match kind {
        ty::TLCREATE
        | ty::TSYMLINK
        | ty::TMKNOD
        | ty::TRENAME
        | ty::TSETATTR
        | ty::TXATTRCREATE
        | ty::TLINK
        | ty::TMKDIR
        | ty::TRENAMEAT
        | ty::TUNLINKAT
        | ty::TWRITE
        | ty::TREMOVE => true,
        ty::TLOPEN => {
            f.skip(4)?;
            f.u32()? & WRITE_FLAGS != 0
        }
        // Walks, reads, attribute and directory reads change nothing.
        _ => false,
    })
}

/// The `Rlerror` answer (type 7) with `errno` for the request tagged `tag`.
pub fn rlerror(tag: u16, errno: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4);
    out.extend_from_slice(&11u32.to_le_bytes());
    out.push(ty::RLERROR);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&errno.to_le_bytes());
    out
}

/// The tag of a request (0 for one too short to carry it).
pub fn tag_of(request: &[u8]) -> u16 {
    match request.get(5..7) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_components_are_names() {
        for good in [&b"a"[..], b"..a", b"a..", b"...", b".hidden", b"with space"] {
            assert!(is_one_component(good), "{good:?}");
        }
        for bad in [&b""[..], b".", b"..", b"a/b", b"/etc", b"../x", b"x\0y"] {
            assert!(!is_one_component(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_truncated_walk_is_malformed_not_a_panic() {
        let walk = [0, 0, 0, 0, ty::TWALK, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5, 0, 3, 0, b'a'];
        for len in 0..walk.len() {
            let _ = check(&walk[..len], false);
        }
        assert_eq!(check(&walk, false), Err(Refusal::Malformed));
    }

    #[test]
    fn rlerror_is_framed_as_linux_reads_it() {
        assert_eq!(rlerror(0x0102, 13), vec![11, 0, 0, 0, 7, 2, 1, 13, 0, 0, 0]);
    }
}
