//! The boot-trace port: a guest writes a checkpoint code to port 0xf4 and
//! the VMM records when it happened. Only present when boot tracing is on.
//! The codes are those of the qemu-boot-time method: a two-line kernel patch
//! writes 6 at `start_kernel` and 7 just before running init.

use crate::bus::BusDevice;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The port the checkpoints are written to (also QEMU's isa-debug-exit port).
pub const BOOT_TRACE_PORT: u16 = 0xf4;
pub const CODE_LINUX_START_KERNEL: u8 = 6;
pub const CODE_LINUX_START_USER: u8 = 7;

/// When each guest checkpoint was first reached, relative to process start.
#[derive(Debug)]
pub struct GuestCheckpoints {
    start: Instant,
    pub linux_start_kernel: OnceLock<Duration>,
    pub linux_start_user: OnceLock<Duration>,
}

impl GuestCheckpoints {
    pub fn new(start: Instant) -> Self {
        GuestCheckpoints { start, linux_start_kernel: OnceLock::new(), linux_start_user: OnceLock::new() }
    }

    /// Records `code` (the first time it is seen); unknown codes are ignored.
    pub fn record(&self, code: u8) {
        let slot = match code {
            CODE_LINUX_START_KERNEL => &self.linux_start_kernel,
            CODE_LINUX_START_USER => &self.linux_start_user,
            _ => return,
        };
        let _ = slot.set(self.start.elapsed());
    }
}

pub struct BootTracePort {
    checkpoints: Arc<GuestCheckpoints>,
}

impl BootTracePort {
    pub fn new(checkpoints: Arc<GuestCheckpoints>) -> Self {
        BootTracePort { checkpoints }
    }
}

impl BusDevice for BootTracePort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        if let Some(&code) = data.first() {
            self.checkpoints.record(code);
        }
    }

    /// Nothing to save: the checkpoints are this process's boot times, not the guest's.
    fn save(&mut self) -> Result<crate::state::DeviceState, crate::state::StateError> {
        Ok(crate::state::DeviceState::Stateless)
    }

    fn restore(&mut self, state: crate::state::DeviceState) -> Result<(), crate::state::StateError> {
        crate::state::restore_stateless(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_write_of_each_code_is_kept_and_others_ignored() {
        let cp = Arc::new(GuestCheckpoints::new(Instant::now()));
        let mut port = BootTracePort::new(cp.clone());
        port.write(0, &[0x42]);
        assert!(cp.linux_start_kernel.get().is_none() && cp.linux_start_user.get().is_none());
        port.write(0, &[CODE_LINUX_START_KERNEL]);
        let kernel = *cp.linux_start_kernel.get().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        port.write(0, &[CODE_LINUX_START_USER, 0, 0, 0]);
        port.write(0, &[CODE_LINUX_START_KERNEL]);
        assert_eq!(*cp.linux_start_kernel.get().unwrap(), kernel);
        assert!(*cp.linux_start_user.get().unwrap() > kernel);
    }
}
