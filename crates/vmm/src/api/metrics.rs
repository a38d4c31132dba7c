//! Firecracker's metrics (`PUT /metrics`, `--metrics-path`): one JSON line per flush, in
//! Firecracker's shape and names, from the counters of the `metrics` crate. A flush happens
//! when the VM starts (as Firecracker writes one line when its periodic writer starts),
//! every 60 seconds on a timerfd of the main event loop, on the `FlushMetrics` action and
//! once more when the VM ends (so the reason it failed, a vCPU failure or a panic, is on
//! record). Counters are deltas since the previous line, gauges are values, as
//! Firecracker's `SharedIncMetric`/`SharedStoreMetric`. The destination is a file or a
//! named pipe, opened as Firecracker opens it (read-write and non-blocking, so a pipe
//! without a reader neither fails nor blocks), and created if missing.

use fc_api::ApiRequest;
use metrics::Counter;
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vmm_sys_util::timerfd::TimerFd;

/// Firecracker's period between two lines.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

/// Overrides the period, in milliseconds, for tests that cannot wait a minute.
pub const PERIOD_ENV: &str = "MICROVM_METRICS_PERIOD_MS";

pub struct MetricsSink {
    file: File,
    timer: TimerFd,
}

impl MetricsSink {
    /// Opens the destination and makes its timer (armed by [`MetricsSink::start`]).
    pub fn open(path: &str) -> io::Result<MetricsSink> {
        let file = OpenOptions::new().read(true).write(true).create(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        metrics::set_last_line_fd(Some(file.as_raw_fd()));
        // A fatal signal from now on writes its `signals` line there before the end.
        sandbox::install_fatal_signal_handlers()?;
        Ok(MetricsSink { file, timer: TimerFd::new()? })
    }

    /// Writes the first line and arms the periodic timer.
    pub fn start(&mut self) -> io::Result<()> {
        let period = period(std::env::var(PERIOD_ENV).ok().as_deref());
        self.timer.reset(period, Some(period))?;
        self.flush()
    }

    /// The timer's descriptor, for the event loop.
    pub fn timer_fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }

    /// The timer fired: consume its expiry and write a line.
    pub fn on_timer(&mut self) {
        // Readable, so the read does not block; several expiries still make one line.
        let _ = self.timer.wait();
        if let Err(e) = self.flush() {
            log::warn!("metrics: cannot write the metrics: {e}");
        }
    }

    /// One line, as Firecracker's flush writes (a full pipe drops it, as Firecracker's
    /// would, counted in `logger.missed_metrics_count`).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut line = line(SystemTime::now()).to_string();
        line.push('\n');
        match self.file.write(line.as_bytes()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                metrics::LOGGER.missed_metrics_count.inc();
                Ok(())
            }
            Err(e) => {
                metrics::LOGGER.metrics_fails.inc();
                Err(e)
            }
            Ok(_) => Ok(()),
        }
    }
}

/// A request's `get_api_requests`/`put_api_requests`/`patch_api_requests` counters, as
/// Firecracker counts them: each request, and for PUT and PATCH each refused one. Endpoints
/// Firecracker has no counter for (balloon, snapshot, `/vm`, entropy) count nothing.
#[derive(Clone, Copy, Debug)]
pub struct RequestCount {
    count: &'static Counter,
    fails: Option<&'static Counter>,
}

impl RequestCount {
    /// The counters of `request`'s `Verb` row (fc-api's route.rs), if Firecracker counts it.
    pub fn of(request: &ApiRequest) -> Option<RequestCount> {
        let verb = request.verb();
        Some(RequestCount { count: verb.count?, fails: verb.fails })
    }

    /// Counts the request once it is answered with `status`.
    pub fn answered(self, status: u16) {
        self.count.inc();
        if status >= 300 {
            if let Some(fails) = self.fails {
                fails.inc();
            }
        }
    }
}

/// The API-level `latencies_us` field a request sets once answered, if it has one.
pub fn api_latency(request: &ApiRequest) -> Option<&'static metrics::Gauge> {
    use fc_api::model::{SnapshotType, VmState};
    let l = &metrics::LATENCIES;
    match request {
        ApiRequest::PatchVm(VmState::Paused) => Some(&l.pause_vm),
        ApiRequest::PatchVm(VmState::Resumed) => Some(&l.resume_vm),
        ApiRequest::CreateSnapshot(p) if p.snapshot_type == SnapshotType::Diff => Some(&l.diff_create_snapshot),
        ApiRequest::CreateSnapshot(_) => Some(&l.full_create_snapshot),
        _ => None,
    }
}

impl Drop for MetricsSink {
    fn drop(&mut self) {
        // The descriptor closes now: no dying line may go to whatever reuses its number.
        metrics::set_last_line_fd(None);
    }
}

/// The period of `MICROVM_METRICS_PERIOD_MS` if it is a positive number, else 60 s.
fn period(env: Option<&str>) -> Duration {
    match env.and_then(|v| v.parse::<u64>().ok()) {
        Some(ms) if ms > 0 => Duration::from_millis(ms),
        _ => DEFAULT_PERIOD,
    }
}

/// The JSON object of one flush; reading the counters starts their next period.
fn line(now: SystemTime) -> Value {
    let mut line = Map::new();
    let ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    line.insert("utc_timestamp_ms".into(), ms.into());
    for (section, fields) in metrics::flush() {
        // Inserted one by one: collecting into the map would sort first, code the binary
        // does not otherwise carry.
        let mut values = Map::new();
        for (name, value) in fields {
            values.insert(name.to_owned(), value.into());
        }
        line.insert(section, Value::Object(values));
    }
    Value::Object(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flush_is_one_json_line_of_deltas() {
        let path = std::env::temp_dir().join(format!("microvm-metrics-{}", std::process::id()));
        let mut sink = MetricsSink::open(path.to_str().unwrap()).unwrap();
        metrics::VCPU.exit_io_out.add(7);
        sink.flush().unwrap();
        sink.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0]["utc_timestamp_ms"].as_u64().unwrap() > 1_600_000_000_000);
        // Other tests of this process may count too, but never take away.
        assert!(lines[0]["vcpu"]["exit_io_out"].as_u64().unwrap() >= 7);
        assert!(lines[1]["vcpu"]["exit_io_out"].as_u64().unwrap() < 7);
        for section in ["block", "net", "vcpu", "uart", "put_api_requests", "get_api_requests", "seccomp", "vmm"] {
            assert!(lines[1][section].is_object(), "{section} missing");
        }
    }

    #[test]
    fn the_period_is_a_minute_unless_the_environment_gives_milliseconds() {
        assert_eq!(period(None), Duration::from_secs(60));
        assert_eq!(period(Some("250")), Duration::from_millis(250));
        assert_eq!(period(Some("0")), Duration::from_secs(60));
        assert_eq!(period(Some("soon")), Duration::from_secs(60));
    }
}
