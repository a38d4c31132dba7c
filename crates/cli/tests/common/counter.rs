//! The counting tiny guest's output in a `-serial file:` (tiny_guest::counter_on_serial):
//! its complete lines as numbers, and waiting for them.

use super::RUN_TIMEOUT;
use std::path::Path;
use std::time::{Duration, Instant};

/// The complete lines of `path` as numbers (a last, unfinished line is left out).
pub fn numbers(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(|l| l.parse().unwrap_or_else(|_| panic!("not a number: {l:?} in {text:?}"))).collect()
}

/// Waits until `path` holds `count` complete lines.
pub fn wait_lines(path: &Path, count: usize) {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while numbers(path).len() < count {
        assert!(Instant::now() < deadline, "{} never had {count} lines", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}
