//! The tag at the end of a memory file of its own (Firecracker's `mem_file_path`): one
//! 4 KiB page after guest RAM naming the snapshot whose memory the file holds, and
//! whether it holds all of it or only a diff's pages (and then of which base).
//!
//! Why a tag: a diff's memory file alone is guest RAM with holes where the base's pages
//! belong; loaded as it is, the guest would find zeros there. The state file says it is a
//! diff; the tag says whether this memory file has been merged into its base
//! (`microvm rebase-snap`, which rewrites the tag), so a restore can refuse the unmerged
//! one in one line, and `rebase-snap` can refuse a diff of another base.
//!
//! Snapshots are named by their state's CRC32 (the header's, as the page lists of
//! `prefetch.rs` do). Layout, little-endian: magic `MVMMTAG\0`, the snapshot's CRC (u32),
//! flags (u32: bit 0 complete, bit 1 a base follows), the base's CRC (u32), zeros.

use std::fs::File;
use std::os::unix::fs::FileExt;

pub const TAG_LEN: u64 = 4096;
const MAGIC: [u8; 8] = *b"MVMMTAG\0";
const COMPLETE: u32 = 1;
const HAS_BASE: u32 = 2;

/// What a memory file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryTag {
    /// The CRC of the snapshot whose memory this is.
    pub snapshot: u32,
    /// The memory of the whole guest (a full snapshot, or a diff merged into its base);
    /// otherwise only the pages a diff wrote, and `base` names what they go on.
    pub complete: bool,
    pub base: Option<u32>,
}

impl MemoryTag {
    pub fn full(snapshot: u32) -> Self {
        MemoryTag { snapshot, complete: true, base: None }
    }

    pub fn diff(snapshot: u32, base: u32) -> Self {
        MemoryTag { snapshot, complete: false, base: Some(base) }
    }

    fn encode(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&self.snapshot.to_le_bytes());
        let flags = if self.complete { COMPLETE } else { 0 } | if self.base.is_some() { HAS_BASE } else { 0 };
        out[12..16].copy_from_slice(&flags.to_le_bytes());
        out[16..20].copy_from_slice(&self.base.unwrap_or(0).to_le_bytes());
        out
    }

    fn decode(bytes: &[u8; 20]) -> Option<Self> {
        if bytes[..8] != MAGIC {
            return None;
        }
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let flags = word(12);
        Some(MemoryTag {
            snapshot: word(8),
            complete: flags & COMPLETE != 0,
            base: (flags & HAS_BASE != 0).then(|| word(16)),
        })
    }

    /// Writes the tag at `at` of `file` (right after guest RAM), a page of its own that
    /// ends the file.
    pub fn write(&self, file: &File, at: u64) -> std::io::Result<()> {
        file.set_len(at + TAG_LEN)?;
        file.write_all_at(&self.encode(), at)
    }

    /// The tag at `at` of `file` (right after guest RAM), if it has one (files written by
    /// microvm before tags, or by another tool, have none).
    pub fn read(file: &File, at: u64) -> std::io::Result<Option<Self>> {
        if file.metadata()?.len() < at + TAG_LEN {
            return Ok(None);
        }
        let mut bytes = [0u8; 20];
        file.read_exact_at(&mut bytes, at)?;
        Ok(Self::decode(&bytes))
    }

    /// The tag of a file that ends with one (what `rebase-snap` reads, knowing no state
    /// file): the tag and where it starts.
    pub fn read_last(file: &File) -> std::io::Result<Option<(Self, u64)>> {
        let len = file.metadata()?.len();
        let Some(mem_len) = len.checked_sub(TAG_LEN) else { return Ok(None) };
        Ok(Self::read(file, mem_len)?.map(|tag| (tag, mem_len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_reads_back_and_a_file_without_one_has_none() {
        let path = std::env::temp_dir().join(format!("microvm-tag-{}", std::process::id()));
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(8192).unwrap();
        assert_eq!(MemoryTag::read(&file, 8192).unwrap(), None);
        assert_eq!(MemoryTag::read_last(&file).unwrap(), None, "zeros are not a tag");
        let tag = MemoryTag::diff(0x1234_5678, 0x9abc_def0);
        tag.write(&file, 8192).unwrap();
        assert_eq!(MemoryTag::read(&file, 8192).unwrap(), Some(tag));
        assert_eq!(MemoryTag::read_last(&file).unwrap(), Some((tag, 8192)));
        MemoryTag::full(7).write(&file, 8192).unwrap();
        assert_eq!(MemoryTag::read(&file, 8192).unwrap(), Some(MemoryTag { snapshot: 7, complete: true, base: None }));
        std::fs::remove_file(&path).unwrap();
    }
}
