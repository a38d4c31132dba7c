use super::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct State {
    name: String,
    regs: Vec<u64>,
    flag: bool,
}

fn state() -> State {
    State { name: "vcpu0".into(), regs: vec![1, u64::MAX, 0x1000], flag: true }
}

#[test]
fn round_trip_with_memory_after_the_state() {
    let (bytes, header) =
        encode(&state(), MemoryPlacement::Inline { base: 0, len: 256 << 20, align: MEMORY_ALIGN }, "0.1.0").unwrap();
    assert_eq!(&bytes[..8], b"MVMSNAP\0");
    let off = header.memory_offset.unwrap();
    assert_eq!(off % MEMORY_ALIGN, 0);
    assert!(off >= bytes.len() as u64);
    let (read, decoded): (Header, State) = decode(&bytes).unwrap();
    assert_eq!(read, header);
    assert_eq!(read.writer, "0.1.0");
    assert_eq!(read.memory_len, 256 << 20);
    assert_eq!(decoded, state());
}

#[test]
fn memory_offset_counts_from_the_base() {
    let base = 0x1234;
    let (bytes, header) =
        encode(&state(), MemoryPlacement::Inline { base, len: 4096, align: MEMORY_ALIGN }, "x").unwrap();
    let off = header.memory_offset.unwrap();
    assert_eq!((base + off) % MEMORY_ALIGN, 0, "the absolute offset can be mapped");
    assert!(off >= bytes.len() as u64);
}

#[test]
fn separate_memory_has_no_offset() {
    let (bytes, header) = encode(&state(), MemoryPlacement::Separate { len: 4096 }, "x").unwrap();
    assert_eq!(header.memory_offset, None);
    let (read, _): (Header, State) = decode(&bytes).unwrap();
    assert_eq!(read.memory_offset, None);
}

#[test]
fn every_flipped_bit_is_caught() {
    let (bytes, _) = encode(&state(), MemoryPlacement::Separate { len: 4096 }, "0.1.0").unwrap();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            assert!(decode::<State>(&bad).is_err(), "byte {i} bit {bit} went unnoticed");
        }
    }
}

#[test]
fn truncation_anywhere_is_an_error() {
    let (bytes, _) = encode(&state(), MemoryPlacement::Separate { len: 4096 }, "0.1.0").unwrap();
    for len in 0..bytes.len() {
        let e = decode::<State>(&bytes[..len]).unwrap_err();
        assert!(matches!(e, FormatError::NotASnapshot | FormatError::Truncated { .. }), "{len}: {e}");
    }
}

#[test]
fn other_versions_are_refused_with_both_numbers() {
    let (mut bytes, _) = encode(&state(), MemoryPlacement::Separate { len: 4096 }, "0.0.9").unwrap();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    let e = decode::<State>(&bytes).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "snapshot format version 7 (written by microvm 0.0.9); this microvm reads versions 1 to {FORMAT_VERSION}"
        )
    );
}

#[test]
fn a_huge_length_is_refused_before_allocating() {
    let (mut bytes, _) = encode(&state(), MemoryPlacement::Separate { len: 4096 }, "x").unwrap();
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(decode::<State>(&bytes), Err(FormatError::TooLarge(_))));
}

#[test]
fn other_files_are_not_snapshots() {
    assert!(matches!(decode::<State>(b"\x7fELF\x02\x01\x01"), Err(FormatError::NotASnapshot)));
    assert!(matches!(decode::<State>(b""), Err(FormatError::NotASnapshot)));
}

/// Content that grew in a later format: an older file's content gets the default
/// extension, a newer one's is decoded after the state.
#[test]
fn an_extension_is_read_from_newer_files_and_defaulted_in_older_ones() {
    let (bytes, _) = encode(&(state(), 42u32), MemoryPlacement::Separate { len: 4096 }, "x").unwrap();
    let (_, got, ext) = decode_extended::<State, u32>(&bytes, FORMAT_VERSION).unwrap();
    assert_eq!((got, ext), (state(), 42));
    let (mut old, _) = encode(&state(), MemoryPlacement::Separate { len: 4096 }, "x").unwrap();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    // The CRC covers the version field: sum it again as version 1's writer did.
    let crc = checksum(&old);
    old[12..16].copy_from_slice(&crc.to_le_bytes());
    let (header, got, ext) = decode_extended::<State, u32>(&old, FORMAT_VERSION).unwrap();
    assert_eq!((header.format_version, got, ext), (1, state(), 0));
}

/// A larger alignment puts memory at the same offset for states of different lengths.
#[test]
fn memory_aligned_to_a_mib_starts_at_the_same_offset_for_any_small_state() {
    let placement = MemoryPlacement::Inline { base: 0, len: 4096, align: 1 << 20 };
    let (_, short) = encode(&state(), placement, "x").unwrap();
    let longer = State { regs: vec![7; 300], ..state() };
    let (_, long) = encode(&longer, placement, "x").unwrap();
    assert_eq!(short.memory_offset, Some(1 << 20));
    assert_eq!(long.memory_offset, short.memory_offset);
}
