//! How a running VM ends, and how whoever notices tells the main thread.

use std::sync::Mutex;
use vmm_sys_util::eventfd::EventFd;

/// Why the VM stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmExit {
    /// The guest reset the machine (i8042 reset, KVM reset event, triple fault). Like
    /// QEMU with `-no-reboot`, a reset ends the VM.
    Reset,
    /// The guest powered off (KVM shutdown event; later: ACPI S5).
    Shutdown,
    /// The VMM was asked to stop by a signal.
    Signal(i32),
    /// A monitor sent `quit`.
    Quit,
    /// A monitor sent `system_reset`; like a guest reset, it ends the VM.
    SystemReset,
    /// A vCPU hit something it cannot continue from.
    VcpuError { vcpu: u8, message: String },
    /// The device side of the VMM cannot go on.
    DeviceError(String),
    /// The guest wrote V to `-device isa-debug-exit`: the process ends with
    /// status (V << 1) | 1, as QEMU's does.
    DebugExit { status: u32 },
}

/// The first reason reported wins; the eventfd wakes the main thread.
pub struct ExitNotifier {
    evt: EventFd,
    reason: Mutex<Option<VmExit>>,
}

impl ExitNotifier {
    pub fn new() -> std::io::Result<Self> {
        Ok(ExitNotifier { evt: EventFd::new(libc::EFD_NONBLOCK)?, reason: Mutex::new(None) })
    }

    pub fn notify(&self, reason: VmExit) {
        let mut current = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() {
            *current = Some(reason);
        }
        drop(current);
        if let Err(e) = self.evt.write(1) {
            log::error!("cannot wake the main thread: {e}");
        }
    }

    pub fn reason(&self) -> Option<VmExit> {
        self.reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn eventfd(&self) -> &EventFd {
        &self.evt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_every_notification_wakes() {
        let n = ExitNotifier::new().unwrap();
        assert_eq!(n.reason(), None);
        n.notify(VmExit::Reset);
        n.notify(VmExit::Signal(15));
        assert_eq!(n.reason(), Some(VmExit::Reset));
        assert_eq!(n.eventfd().read().unwrap(), 2);
    }
}
