//! `-d guest_errors`: guest accesses to ports and addresses no device claims,
//! logged as QEMU logs them (its "invalid access" lines), at most
//! `PER_SECOND` lines a second so that a guest probing in a loop cannot
//! flood the log; the lines held back are counted and reported.
//!
//! Only the unclaimed-access path of the exit loop calls it, and only when
//! asked for, so it costs nothing to the accesses devices serve.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most lines logged in one second.
const PER_SECOND: u32 = 10;
const WINDOW: Duration = Duration::from_secs(1);

/// What kind of unclaimed access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    PortRead,
    PortWrite,
    MmioRead,
    MmioWrite,
}

struct Window {
    start: Instant,
    logged: u32,
    held_back: u64,
}

/// Shared by the vCPU threads.
pub struct GuestErrorLog {
    window: Mutex<Window>,
}

impl Default for GuestErrorLog {
    fn default() -> Self {
        GuestErrorLog { window: Mutex::new(Window { start: Instant::now(), logged: 0, held_back: 0 }) }
    }
}

/// One log line, QEMU's wording.
pub fn describe(vcpu: u8, access: Access, addr: u64, data: &[u8]) -> String {
    let size = data.len();
    let value = data.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    match access {
        Access::PortRead => format!("vcpu{vcpu}: invalid read of I/O port {addr:#x} (size {size}): no device"),
        Access::PortWrite => {
            format!("vcpu{vcpu}: invalid write of {value:#x} to I/O port {addr:#x} (size {size}): no device")
        }
        Access::MmioRead => format!("vcpu{vcpu}: invalid read at address {addr:#x} (size {size}): unassigned"),
        Access::MmioWrite => {
            format!("vcpu{vcpu}: invalid write of {value:#x} at address {addr:#x} (size {size}): unassigned")
        }
    }
}

impl GuestErrorLog {
    /// Logs one unclaimed access (or counts it, past the rate limit).
    pub fn report(&self, vcpu: u8, access: Access, addr: u64, data: &[u8]) {
        if let Some(line) = self.admit(Instant::now(), || describe(vcpu, access, addr, data)) {
            log::warn!("guest_errors: {line}");
        }
    }

    /// The line to log at `now`, if the rate limit lets it through; the first
    /// line of a new window says how many were held back in the last one.
    fn admit(&self, now: Instant, line: impl FnOnce() -> String) -> Option<String> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let mut note = String::new();
        if now.duration_since(w.start) >= WINDOW {
            if w.held_back > 0 {
                note = format!(" ({} more held back before this)", w.held_back);
            }
            *w = Window { start: now, logged: 0, held_back: 0 };
        }
        if w.logged >= PER_SECOND {
            w.held_back += 1;
            return None;
        }
        w.logged += 1;
        Some(line() + &note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_what_was_accessed() {
        assert_eq!(
            describe(0, Access::PortWrite, 0x2e0, &[0x34, 0x12]),
            "vcpu0: invalid write of 0x1234 to I/O port 0x2e0 (size 2): no device"
        );
        assert_eq!(
            describe(1, Access::MmioRead, 0xd000_0000, &[0; 4]),
            "vcpu1: invalid read at address 0xd0000000 (size 4): unassigned"
        );
    }

    #[test]
    fn at_most_ten_lines_a_second_and_the_rest_counted() {
        let log = GuestErrorLog::default();
        let t0 = Instant::now();
        let passed = (0..25).filter(|i| log.admit(t0, || i.to_string()).is_some()).count();
        assert_eq!(passed, PER_SECOND as usize);
        let next = log.admit(t0 + WINDOW, || "x".into()).unwrap();
        assert_eq!(next, "x (15 more held back before this)");
        assert_eq!(log.admit(t0 + WINDOW, || "y".into()).unwrap(), "y");
    }
}
