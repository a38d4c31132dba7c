//! The snapshot state file: a fixed header (magic, format version, the microvm version
//! that wrote it, where guest memory is, a CRC32 over header and content) followed by the
//! state itself, a serde value encoded with postcard.
//!
//! The crate knows nothing of KVM or devices: the VMM chooses what the state value is,
//! this crate only frames it, so the reader can be fuzzed on its own. Reading never
//! trusts the input: every length is checked against the bytes present, the checksum
//! before decoding, and any failure is one typed error.
//!
//! Layout (all integers little-endian), at `base` (0, or QEMU's `file:PATH,offset=N`):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `MVMSNAP\0` |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]; [`OLDEST_FORMAT_VERSION`] and later are read) |
//! | 12 | 4 | CRC32 (IEEE) of the header with this field zero, then the content |
//! | 16 | 8 | content length |
//! | 24 | 8 | memory offset in this file, from `base`; 0 when memory is in a file of its own or not saved |
//! | 32 | 8 | memory length (guest RAM bytes) |
//! | 40 | 24 | microvm version that wrote it, NUL-padded UTF-8 |
//! | 64 | n | content |

use serde::de::DeserializeOwned;
use serde::Serialize;

pub const MAGIC: [u8; 8] = *b"MVMSNAP\0";
/// Bumped whenever the content's shape changes: a newer file, or one older than
/// [`OLDEST_FORMAT_VERSION`], is refused with both numbers named, never decoded into the
/// wrong fields. The reader ([`Header::format_version`]) decides how to decode older
/// content. Version 2 appended the snapshot's lineage (full, or diff of which base).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this microvm still reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;
const VERSION_FIELD: std::ops::Range<usize> = 40..64;
const CRC_FIELD: std::ops::Range<usize> = 12..16;
/// Content larger than this is refused before any allocation: a VM's state is KiBs.
pub const MAX_CONTENT_LEN: u64 = 64 << 20;
/// Guest memory that follows the state in the same file starts at a multiple of this,
/// so that it can be mapped (`mmap` offsets are page-aligned).
pub const MEMORY_ALIGN: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a microvm snapshot (no MVMSNAP header)")]
    NotASnapshot,
    #[error("the snapshot file is truncated: {what} needs {needed} bytes, {present} are there")]
    Truncated { what: &'static str, needed: u64, present: u64 },
    #[error(
        "snapshot format version {found} (written by microvm {writer}); this microvm reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
    )]
    Version { found: u32, writer: String },
    #[error("the snapshot's state is {0} bytes, more than any microvm writes: the file is corrupt")]
    TooLarge(u64),
    #[error("the snapshot file is corrupt: its checksum is {found:#010x}, its content sums to {computed:#010x}")]
    Checksum { found: u32, computed: u32 },
    #[error("the snapshot's state cannot be decoded ({0}): the file is corrupt or from another build")]
    Decode(#[source] postcard::Error),
    #[error("the snapshot's state cannot be encoded: {0}")]
    Encode(#[source] postcard::Error),
    #[error("the snapshot's memory offset {0:#x} is not page-aligned")]
    MemoryOffset(u64),
}

/// What the header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u32,
    /// The microvm version that wrote the file.
    pub writer: String,
    pub content_len: u64,
    /// Where guest memory starts, from the header's start; `None` when it is elsewhere.
    pub memory_offset: Option<u64>,
    pub memory_len: u64,
}

/// Where guest memory goes relative to the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryPlacement {
    /// In this file, at the first multiple of `align` (of [`MEMORY_ALIGN`]; larger for
    /// snapshots a diff may be merged into, whose memory must start at the same offset
    /// whatever their state's length) after the state, counting from the file's start,
    /// `base` bytes before the header.
    Inline { base: u64, len: u64, align: u64 },
    /// In a file of its own (Firecracker's `mem_file_path`), or shared and not saved.
    Separate { len: u64 },
}

/// The first multiple of [`MEMORY_ALIGN`] at or after `pos`.
pub fn align_up(pos: u64) -> u64 {
    pos.div_ceil(MEMORY_ALIGN) * MEMORY_ALIGN
}

/// Header and content, ready to write at `base`. With inline memory, the memory's offset
/// (from `base`) is in the header; the caller writes memory there.
pub fn encode<T: Serialize>(
    state: &T,
    memory: MemoryPlacement,
    writer: &str,
) -> Result<(Vec<u8>, Header), FormatError> {
    let content = postcard::to_allocvec(state).map_err(FormatError::Encode)?;
    Ok(frame(&content, memory, writer))
}

/// Header and `content` (already encoded), with a valid checksum: what [`encode`] writes,
/// and how a fuzzer gets arbitrary content past the checksum to the decoder.
pub fn frame(content: &[u8], memory: MemoryPlacement, writer: &str) -> (Vec<u8>, Header) {
    let content_len = content.len() as u64;
    let (memory_offset, memory_len) = match memory {
        MemoryPlacement::Inline { base, len, align } => {
            let align = align.max(MEMORY_ALIGN).next_multiple_of(MEMORY_ALIGN);
            (Some((base + HEADER_LEN as u64 + content_len).next_multiple_of(align) - base), len)
        }
        MemoryPlacement::Separate { len } => (None, len),
    };
    let header = Header {
        format_version: FORMAT_VERSION,
        writer: writer.chars().take(VERSION_FIELD.len()).collect(),
        content_len,
        memory_offset,
        memory_len,
    };
    let mut bytes = Vec::with_capacity(HEADER_LEN + content.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&content_len.to_le_bytes());
    bytes.extend_from_slice(&memory_offset.unwrap_or(0).to_le_bytes());
    bytes.extend_from_slice(&memory_len.to_le_bytes());
    let mut version = [0u8; VERSION_FIELD.end - VERSION_FIELD.start];
    let writer_bytes = header.writer.as_bytes();
    let n = writer_bytes.len().min(version.len());
    version[..n].copy_from_slice(&writer_bytes[..n]);
    bytes.extend_from_slice(&version);
    bytes.extend_from_slice(content);
    let crc = checksum(&bytes);
    bytes[CRC_FIELD].copy_from_slice(&crc.to_le_bytes());
    (bytes, header)
}

fn checksum(bytes: &[u8]) -> u32 {
    let mut hasher = crc32::Crc32::new();
    hasher.update(&bytes[..CRC_FIELD.start]);
    hasher.update(&[0; 4]);
    hasher.update(&bytes[CRC_FIELD.end..]);
    hasher.finalize()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads the header of `bytes` (at least [`HEADER_LEN`] of them): magic and format version
/// are checked, the checksum is not (it needs the content: [`decode`]).
pub fn decode_header(bytes: &[u8]) -> Result<Header, FormatError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(FormatError::NotASnapshot);
    }
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated {
            what: "the header",
            needed: HEADER_LEN as u64,
            present: bytes.len() as u64,
        });
    }
    let version_field = &bytes[VERSION_FIELD];
    let end = version_field.iter().position(|&b| b == 0).unwrap_or(version_field.len());
    let writer = String::from_utf8_lossy(&version_field[..end]).into_owned();
    let format_version = u32_at(bytes, 8);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&format_version) {
        return Err(FormatError::Version { found: format_version, writer });
    }
    let content_len = u64_at(bytes, 16);
    if content_len > MAX_CONTENT_LEN {
        return Err(FormatError::TooLarge(content_len));
    }
    let memory_offset = match u64_at(bytes, 24) {
        0 => None,
        off if off % MEMORY_ALIGN != 0 => return Err(FormatError::MemoryOffset(off)),
        off => Some(off),
    };
    Ok(Header { format_version, writer, content_len, memory_offset, memory_len: u64_at(bytes, 32) })
}

/// Reads header and state from `bytes` (the file from the header on): checks magic,
/// version, length and checksum, then decodes the content as `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(Header, T), FormatError> {
    let (header, content) = checked_content(bytes)?;
    let state = postcard::from_bytes(content).map_err(FormatError::Decode)?;
    Ok((header, state))
}

/// [`decode`] for content that grew: `T`, then (from format `since` on) `U`, which an
/// older file lacks and gets as `U::default()`. The writer encodes the pair `(T, U)`
/// (postcard lays a tuple out as its fields one after another).
pub fn decode_extended<T: DeserializeOwned, U: DeserializeOwned + Default>(
    bytes: &[u8],
    since: u32,
) -> Result<(Header, T, U), FormatError> {
    let (header, content) = checked_content(bytes)?;
    if header.format_version < since {
        let state = postcard::from_bytes(content).map_err(FormatError::Decode)?;
        return Ok((header, state, U::default()));
    }
    let (state, rest) = postcard::take_from_bytes(content).map_err(FormatError::Decode)?;
    let extension = postcard::from_bytes(rest).map_err(FormatError::Decode)?;
    Ok((header, state, extension))
}

/// The header and the content it frames, every check but the decoding done.
fn checked_content(bytes: &[u8]) -> Result<(Header, &[u8]), FormatError> {
    let header = decode_header(bytes)?;
    let needed = HEADER_LEN as u64 + header.content_len;
    if (bytes.len() as u64) < needed {
        return Err(FormatError::Truncated { what: "the state", needed, present: bytes.len() as u64 });
    }
    let framed = &bytes[..needed as usize];
    let found = u32_at(framed, CRC_FIELD.start);
    let computed = checksum(framed);
    if found != computed {
        return Err(FormatError::Checksum { found, computed });
    }
    if let Some(off) = header.memory_offset {
        if off < needed {
            return Err(FormatError::MemoryOffset(off));
        }
    }
    Ok((header, &framed[HEADER_LEN..]))
}

mod crc32;

#[cfg(test)]
mod tests;
