//! `microvm rebase-snap --base-file BASE --diff-file DIFF`: merges a diff snapshot's
//! memory file into its base's, in place, as Firecracker's `rebase-snap` tool does: every
//! data extent of the diff (found with SEEK_DATA / SEEK_HOLE; its holes are the pages
//! the diff did not write) is copied to the same offset of the base. The base then holds
//! the diff's guest memory in full, and its tag says so, so the diff's state file loads
//! with it (docs/snapshot.md, "Diff snapshots").
//!
//! A snapshot file of QEMU's interface (`migrate file:`, state and memory in one file)
//! merges the same way: taken with tracking, its memory starts at the same offset as its
//! base's, so the diff's header and state, data extents too, replace the base's, and the
//! merged file is the diff's snapshot, whole.
//!
//! Unlike Firecracker's tool, the tags are checked first (`memory_tag.rs`): the diff must
//! be a diff, and the base the snapshot it is a diff of, so a merge onto the wrong base
//! (which would give a guest whose memory is two snapshots mixed) is refused.

use super::memory_tag::{MemoryTag, TAG_LEN};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The copy's unit: large enough that the system calls do not matter.
const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a microvm diff snapshot's memory file (it has no tag)", .0.display())]
    NotADiff(PathBuf),
    #[error("{} holds a full snapshot's memory ({snapshot:08x}), not a diff", .path.display())]
    Full { path: PathBuf, snapshot: u32 },
    #[error("{} has no microvm tag: the base must be the memory file of the snapshot the diff was taken after ({base:08x})", .path.display())]
    UntaggedBase { path: PathBuf, base: u32 },
    #[error("{} is the memory of snapshot {found:08x}{}, but the diff was taken after snapshot {base:08x}: merge the diffs in the order they were taken, onto that snapshot's memory file", .path.display(), if *.complete { "" } else { " (a diff itself)" })]
    WrongBase { path: PathBuf, found: u32, complete: bool, base: u32 },
    #[error("the base holds {base} bytes of guest memory and the diff {diff}: they are of different machines")]
    Size { base: u64, diff: u64 },
    #[error("the base's guest memory starts at byte {base:?} of its file and the diff's at {diff:?} (None: a memory file of its own): they cannot be merged")]
    Layout { base: Option<u64>, diff: Option<u64> },
}

/// What a merge did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rebased {
    /// Guest memory bytes copied from the diff.
    pub copied: u64,
    /// The snapshot the base's memory now is.
    pub snapshot: u32,
}

/// Merges the diff memory file `diff` into `base`, in place.
pub fn rebase(base: &Path, diff: &Path) -> Result<Rebased, RebaseError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RebaseError::Io { path, source }
    };
    let diff_file = File::open(diff).map_err(io(diff))?;
    let base_file = File::options().read(true).write(true).open(base).map_err(io(base))?;
    let (tag, diff_len) =
        MemoryTag::read_last(&diff_file).map_err(io(diff))?.ok_or(RebaseError::NotADiff(diff.into()))?;
    let Some(parent) = tag.base.filter(|_| !tag.complete) else {
        return Err(RebaseError::Full { path: diff.into(), snapshot: tag.snapshot });
    };
    let (base_tag, base_len) = MemoryTag::read_last(&base_file)
        .map_err(io(base))?
        .ok_or(RebaseError::UntaggedBase { path: base.into(), base: parent })?;
    if base_tag.snapshot != parent || !base_tag.complete {
        let (found, complete) = (base_tag.snapshot, base_tag.complete);
        return Err(RebaseError::WrongBase { path: base.into(), found, complete, base: parent });
    }
    if base_len != diff_len {
        return Err(RebaseError::Size { base: base_len, diff: diff_len });
    }
    let (base_memory, diff_memory) =
        (inline_memory(&base_file).map_err(io(base))?, inline_memory(&diff_file).map_err(io(diff))?);
    if base_memory != diff_memory {
        return Err(RebaseError::Layout { base: base_memory, diff: diff_memory });
    }
    let mut copied = 0;
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0;
    while let Some((start, end)) = next_extent(&diff_file, at, diff_len).map_err(io(diff))? {
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(CHUNK as u64) as usize;
            diff_file.read_exact_at(&mut buf[..n], pos).map_err(io(diff))?;
            base_file.write_all_at(&buf[..n], pos).map_err(io(base))?;
            pos += n as u64;
        }
        copied += end - start;
        at = end;
    }
    // Last, so that an interrupted merge leaves a base that still says it is the base
    // (and a second run completes it): the tag is what a restore checks.
    MemoryTag::full(tag.snapshot).write(&base_file, base_len).map_err(io(base))?;
    base_file.sync_all().map_err(io(base))?;
    debug_assert_eq!(base_file.metadata().map(|m| m.len()).ok(), Some(base_len + TAG_LEN));
    Ok(Rebased { copied, snapshot: tag.snapshot })
}

/// Where guest memory starts in a snapshot file holding its state too (its header's
/// memory offset); `None` for a memory file of its own.
fn inline_memory(file: &File) -> std::io::Result<Option<u64>> {
    let mut head = [0u8; snapshot::HEADER_LEN];
    match file.read_exact_at(&mut head, 0) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    Ok(snapshot::decode_header(&head).ok().and_then(|h| h.memory_offset))
}

/// The next data extent of `file` at or after `from`, cut at `limit` (the tag after guest
/// memory is not copied); `None` past the last one.
fn next_extent(file: &File, from: u64, limit: u64) -> std::io::Result<Option<(u64, u64)>> {
    if from >= limit {
        return Ok(None);
    }
    let seek = |whence, at: u64| {
        // SAFETY: lseek on a descriptor `file` owns; it moves only that file's offset,
        // which nothing else here uses (every read names its position).
        let r = unsafe { libc::lseek(file.as_raw_fd(), at as libc::off_t, whence) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r as u64)
        }
    };
    let start = match seek(libc::SEEK_DATA, from) {
        Ok(start) => start,
        // No data after `from`.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(None),
        Err(e) => return Err(e),
    };
    if start >= limit {
        return Ok(None);
    }
    let end = seek(libc::SEEK_HOLE, start)?.min(limit);
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: u64 = 64 * 4096;

    fn file(name: &str) -> (PathBuf, File) {
        let path = std::env::temp_dir().join(format!("microvm-rebase-{name}-{}", std::process::id()));
        let f = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        f.set_len(MEM).unwrap();
        (path, f)
    }

    fn page(f: &File, n: u64) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        f.read_exact_at(&mut b, n * 4096).unwrap();
        b
    }

    /// The diff's pages (zeros written included) replace the base's; the base's other
    /// pages stay; the tag says the base is now the diff's snapshot, complete.
    #[test]
    fn the_diff_s_pages_replace_the_base_s_and_the_rest_stays() {
        let (base_path, base) = file("base");
        let (diff_path, diff) = file("diff");
        for n in [1, 2, 40] {
            base.write_all_at(&[0xbb; 4096], n * 4096).unwrap();
        }
        MemoryTag::full(0xb).write(&base, MEM).unwrap();
        diff.write_all_at(&[0xdd; 4096], 2 * 4096).unwrap();
        diff.write_all_at(&[0; 4096], 40 * 4096).unwrap();
        diff.write_all_at(&[0xdd; 4096], 50 * 4096).unwrap();
        MemoryTag::diff(0xd, 0xb).write(&diff, MEM).unwrap();

        let done = rebase(&base_path, &diff_path).unwrap();
        assert_eq!(done.snapshot, 0xd);
        assert!(done.copied >= 3 * 4096, "{done:?}");
        assert_eq!(page(&base, 1), vec![0xbb; 4096]);
        assert_eq!(page(&base, 2), vec![0xdd; 4096]);
        assert_eq!(page(&base, 40), vec![0; 4096], "a page the diff zeroed is zero");
        assert_eq!(page(&base, 50), vec![0xdd; 4096]);
        assert_eq!(MemoryTag::read(&base, MEM).unwrap(), Some(MemoryTag::full(0xd)));

        // The same diff again: the base is now its own snapshot, not the diff's base.
        let e = rebase(&base_path, &diff_path).unwrap_err();
        assert!(matches!(e, RebaseError::WrongBase { found: 0xd, base: 0xb, .. }), "{e}");
        // A full snapshot's file is no diff.
        let e = rebase(&diff_path, &base_path).unwrap_err();
        assert!(matches!(e, RebaseError::Full { snapshot: 0xd, .. }), "{e}");
        std::fs::remove_file(&base_path).unwrap();
        std::fs::remove_file(&diff_path).unwrap();
    }

    #[test]
    fn files_without_tags_are_refused() {
        let (base_path, base) = file("untagged-base");
        let (diff_path, diff) = file("untagged-diff");
        assert!(matches!(rebase(&base_path, &diff_path).unwrap_err(), RebaseError::NotADiff(_)));
        MemoryTag::diff(0xd, 0xb).write(&diff, MEM).unwrap();
        let e = rebase(&base_path, &diff_path).unwrap_err();
        assert!(matches!(e, RebaseError::UntaggedBase { base: 0xb, .. }), "{e}");
        drop(base);
        std::fs::remove_file(&base_path).unwrap();
        std::fs::remove_file(&diff_path).unwrap();
    }
}
