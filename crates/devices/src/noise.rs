//! Guest-driven log noise. A guest can repeat a mistake (a bad register write, a corrupt
//! ring) as fast as it likes; the host's log must not grow with it. Every line a guest can
//! cause goes through a [`LineBudget`] for its device and cause: a few lines, the last one
//! saying that further ones are dropped, then nothing.
//!
//! rust-vmm's virtio-queue logs some guest mistakes itself (an invalid queue at DRIVER_OK,
//! a bad avail index), naming no device: those lines share one process-wide budget, which
//! the binary's logger applies through [`admit`].

use std::sync::atomic::{AtomicU32, Ordering};

/// Lines one cause of one device may log over the VM's life.
pub const LINES_PER_CAUSE: u32 = 3;

/// What to do with the next line of a cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Log,
    /// Log it, saying it is the last.
    LogLast,
    Drop,
}

/// How many lines one cause has logged.
#[derive(Debug, Default)]
pub struct LineBudget(AtomicU32);

impl LineBudget {
    pub const fn new() -> Self {
        LineBudget(AtomicU32::new(0))
    }

    pub fn take(&self) -> Verdict {
        let before =
            self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1)).unwrap_or(u32::MAX);
        match before + 1 {
            n if n < LINES_PER_CAUSE => Verdict::Log,
            LINES_PER_CAUSE => Verdict::LogLast,
            _ => Verdict::Drop,
        }
    }
}

/// Logs a guest-caused warning through `budget`: `guest_warn!(self.used_ring_lines, "...")`.
#[macro_export]
macro_rules! guest_warn {
    ($budget:expr, $($arg:tt)+) => {
        match $budget.take() {
            $crate::noise::Verdict::Log => log::warn!($($arg)+),
            $crate::noise::Verdict::LogLast => {
                log::warn!("{} (further such lines are not logged)", format_args!($($arg)+))
            }
            $crate::noise::Verdict::Drop => {}
        }
    };
}

static VIRTIO_QUEUE_LINES: LineBudget = LineBudget::new();

/// The logger's filter: `None` drops a record from `target`; `Some(note)` logs it with
/// `note` appended. Only virtio-queue's records are budgeted; others pass untouched.
pub fn admit(target: &str) -> Option<&'static str> {
    if !target.starts_with("virtio_queue") {
        return Some("");
    }
    match VIRTIO_QUEUE_LINES.take() {
        Verdict::Log => Some(""),
        Verdict::LogLast => Some(" (further virtio-queue errors are not logged)"),
        Verdict::Drop => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_logs_a_few_lines_then_nothing() {
        let budget = LineBudget::new();
        let verdicts: Vec<Verdict> = (0..100_000).map(|_| budget.take()).collect();
        assert_eq!(verdicts[..3], [Verdict::Log, Verdict::Log, Verdict::LogLast]);
        assert!(verdicts[3..].iter().all(|v| *v == Verdict::Drop));
    }

    #[test]
    fn other_targets_pass() {
        for _ in 0..10 {
            assert_eq!(admit("devices::virtio::mmio"), Some(""));
        }
    }
}
