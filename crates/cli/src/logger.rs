//! Log lines go to stderr as `microvm: <message>`. Warnings and errors are
//! shown by default; `MICROVM_LOG=info|debug|trace` shows more. Lines a guest can cause
//! are capped per device and cause (`devices::noise`).

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Guest-caused lines of virtio-queue are budgeted (devices::noise).
        let Some(note) = devices::noise::admit(record.target()) else { return };
        match record.level() {
            Level::Error | Level::Warn => eprintln!("microvm: {}{note}", record.args()),
            level => eprintln!("microvm: [{level}] {}{note}", record.args()),
        }
    }

    fn flush(&self) {}
}

pub fn init() {
    let level = match std::env::var("MICROVM_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("info") => LevelFilter::Info,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        _ => LevelFilter::Warn,
    };
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
