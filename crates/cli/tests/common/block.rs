//! What the tiny guest's write-read-copy driver leaves in an image.

use tiny_guest::{pattern_byte, COPY_SECTOR, PATTERN_SECTOR, READ_BYTES};

/// The pattern at [`PATTERN_SECTOR`] (the write reached the image) and at [`COPY_SECTOR`]
/// (the read returned it), and nothing written elsewhere; `what` names the run.
pub fn assert_pattern_twice(image: &[u8], what: &str) {
    let len = READ_BYTES as usize;
    let want: Vec<u8> = (0..len).map(pattern_byte).collect();
    let at = |sector: u64| (sector * 512) as usize;
    assert_eq!(&image[at(PATTERN_SECTOR)..at(PATTERN_SECTOR) + len], &want[..], "{what}: the write");
    assert_eq!(&image[at(COPY_SECTOR)..at(COPY_SECTOR) + len], &want[..], "{what}: what the read returned");
    let elsewhere = image
        .iter()
        .enumerate()
        .filter(|(i, _)| !(at(PATTERN_SECTOR)..at(PATTERN_SECTOR) + len).contains(i))
        .filter(|(i, _)| !(at(COPY_SECTOR)..at(COPY_SECTOR) + len).contains(i));
    assert!(elsewhere.clone().all(|(_, &b)| b == 0), "{what}: nothing written elsewhere");
}
