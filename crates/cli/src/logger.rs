//! Log lines go to stderr as `microvm: <message>`, or to the `-D` file.
//! Warnings and errors are shown by default; `MICROVM_LOG=info|debug|trace`
//! shows more. Lines a guest can cause are capped per device and cause
//! (`devices::noise`).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct Logger {
    /// `-D FILE`; `None`: stderr.
    file: Mutex<Option<File>>,
    /// The level asked for (MICROVM_LOG); `log::max_level` is at least Info so that
    /// notices (`devices::NOTICE`) always arrive.
    level: AtomicUsize,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.target() == devices::NOTICE || metadata.level() as usize <= self.level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // What QEMU prints for the user (a pty's path...): as it is, on stderr, even with -D.
        if record.target() == devices::NOTICE {
            eprintln!("{}", record.args());
            return;
        }
        // Guest-caused lines of virtio-queue are budgeted (devices::noise).
        let Some(note) = devices::noise::admit(record.target()) else { return };
        let line = match record.level() {
            Level::Error | Level::Warn => format!("microvm: {}{note}\n", record.args()),
            level => format!("microvm: [{level}] {}{note}\n", record.args()),
        };
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        match file.as_mut() {
            // One write per line: lines from several threads do not interleave.
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => eprint!("{line}"),
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger { file: Mutex::new(None), level: AtomicUsize::new(LevelFilter::Warn as usize) };

pub fn init() {
    let level = match std::env::var("MICROVM_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("info") => LevelFilter::Info,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        _ => LevelFilter::Warn,
    };
    LOGGER.level.store(level as usize, Ordering::Relaxed);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level.max(LevelFilter::Info));
    }
}

/// Firecracker's `--level` / `PUT /logger` `level`: only lines at or above it are shown
/// (notices still are).
pub fn set_level(level: LevelFilter) {
    LOGGER.level.store(level as usize, Ordering::Relaxed);
}

/// Firecracker's `--log-path` / `PUT /logger` `log_path`: appended to, as Firecracker
/// writes to an existing file or named pipe it is given.
pub fn log_appending_to(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    *LOGGER.file.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    Ok(())
}

/// `-D FILE`: from now on the log goes to `path`, truncated first as QEMU
/// does; opened before the process daemonizes, so a relative path works.
pub fn log_to_file(path: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
    *LOGGER.file.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    Ok(())
}
