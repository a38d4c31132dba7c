//! The page-writing guest of the diff snapshot tests (`tiny_guest::page_writer_on_serial`):
//! its lines, and the check that the memory it read back is what it wrote.

use std::path::Path;

/// Where the guest writes: 16 MiB from 8 MiB, inside the tests' 32 MiB guests, more
/// pages than a test writes, so every page written between two snapshots is new.
pub const REGION: u32 = 8 << 20;
pub const PAGES: u64 = 4096;
pub const PAGE: u64 = 4096;
/// Each turn reads the page written this many turns before.
pub const BEHIND: u64 = 64;
/// Turns of busy waiting between two pages: a few hundred pages a second here.
pub const DELAY: u32 = 1000;

pub fn guest() -> Vec<u8> {
    tiny_guest::page_writer_on_serial(REGION, PAGES as u32, BEHIND as u32, DELAY)
}

/// The guest's complete lines: (what the page read held, the turn).
pub fn lines(out: &[u8]) -> Vec<(u64, u64)> {
    let text = String::from_utf8_lossy(out);
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let number = |s: &str, l: &str| s.parse().unwrap_or_else(|_| panic!("not a page line: {l:?}"));
    complete
        .lines()
        .map(|l| {
            let (old, n) = l.split_once(' ').unwrap_or_else(|| panic!("not a page line: {l:?}"));
            (number(old, l), number(n, l))
        })
        .collect()
}

pub fn last_turn(out: &[u8]) -> u64 {
    lines(out).last().expect("the guest printed nothing").1
}

/// Every turn follows the one before, and the page it read held what the guest stored
/// there `BEHIND` turns before (nothing in the first turns).
pub fn assert_memory_consistent(all: &[(u64, u64)]) {
    for (i, &(old, n)) in all.iter().enumerate() {
        assert_eq!(n, i as u64 + 1, "turn {} follows turn {}", n, i);
        let want = n.saturating_sub(BEHIND);
        assert_eq!(old, want, "turn {n} found {old} in the page of turn {want}");
    }
}

/// Allocated bytes of `path` (`st_blocks`).
pub fn allocated(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(path).unwrap()) * 512
}

/// Asserts that `file` (a diff's memory) allocates the `dirtied` bytes within 10%.
pub fn assert_holds_about(file: &Path, dirtied: u64) {
    let size = allocated(file);
    eprintln!("{}: {} KiB allocated for {} KiB dirtied", file.display(), size >> 10, dirtied >> 10);
    assert!(size.abs_diff(dirtied) <= dirtied / 10, "{}: {size} bytes for {dirtied} dirtied", file.display());
}

/// `microvm rebase-snap`, as Firecracker's tool is called.
pub fn rebase_snap(base: &Path, diff: &Path) {
    let mut cmd = super::microvm();
    cmd.arg("rebase-snap").arg("--base-file").arg(base).arg("--diff-file").arg(diff);
    let out = super::run(cmd);
    assert!(out.status.success(), "{}", out.describe());
}
