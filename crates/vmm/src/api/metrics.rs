//! Firecracker's metrics destination (`PUT /metrics`, `--metrics-path`): a file or a named
//! pipe that gets one JSON line per flush. Opened as Firecracker opens it (read-write and
//! non-blocking, so a pipe without a reader neither fails nor blocks), and created if
//! missing. microvm writes the line's timestamp only, on `FlushMetrics`: it keeps none of
//! Firecracker's counters yet, and has no 60-second timer.

use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct MetricsSink {
    file: File,
}

impl MetricsSink {
    pub fn open(path: &str) -> io::Result<MetricsSink> {
        let file = OpenOptions::new().read(true).write(true).create(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        Ok(MetricsSink { file })
    }

    /// One line, as Firecracker's flush writes (a full pipe drops it, as Firecracker's would).
    pub fn flush(&mut self) -> io::Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut line = json!({ "utc_timestamp_ms": now.as_millis() as u64 }).to_string();
        line.push('\n');
        match self.file.write(line.as_bytes()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            result => result.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flush_is_one_json_line() {
        let path = std::env::temp_dir().join(format!("microvm-metrics-{}", std::process::id()));
        let mut sink = MetricsSink::open(path.to_str().unwrap()).unwrap();
        sink.flush().unwrap();
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0]["utc_timestamp_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }
}
