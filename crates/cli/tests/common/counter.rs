//! A tiny guest with its serial port in a file and a QMP socket (the snapshot tests'
//! machine), and the counting guest's output there (tiny_guest::counter_on_serial): its
//! complete lines as numbers, and waiting for them.

use super::RUN_TIMEOUT;
use std::path::Path;
use std::process::Command;
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

/// `-M MACHINE -m 32m -nodefaults -kernel KERNEL`, the serial port in `serial`, a QMP
/// socket at `qmp`, then `extra`.
pub fn machine(machine: &str, kernel: &Path, serial: &Path, qmp: &Path, extra: &[&str]) -> Command {
    let mut cmd = super::microvm();
    cmd.args(["-M", machine, "-m", "32m", "-nodefaults", "-kernel"])
        .arg(kernel)
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()))
        .args(extra);
    cmd
}
