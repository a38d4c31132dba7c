//! How a running VM ends, and how whoever notices tells the main thread.

use std::sync::{Arc, Mutex};
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
    /// `None` in solo mode: nothing waits, the vCPU loop asks [`ExitNotifier::reason`].
    evt: Option<EventFd>,
    reason: Mutex<Option<VmExit>>,
}

impl ExitNotifier {
    pub fn new() -> std::io::Result<Self> {
        Ok(ExitNotifier { evt: Some(EventFd::new(libc::EFD_NONBLOCK)?), reason: Mutex::new(None) })
    }

    /// A notifier with no eventfd, for solo mode, whose only thread looks at the reason
    /// after each exit from KVM_RUN (no event loop to wake).
    pub fn unwatched() -> Self {
        ExitNotifier { evt: None, reason: Mutex::new(None) }
    }

    pub fn notify(&self, reason: VmExit) {
        let mut current = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() {
            *current = Some(reason);
        }
        drop(current);
        if let Some(Err(e)) = self.evt.as_ref().map(|evt| evt.write(1)) {
            log::error!("cannot wake the main thread: {e}");
        }
    }

    pub fn reason(&self) -> Option<VmExit> {
        self.reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What wakes the main thread; `None` for [`ExitNotifier::unwatched`].
    pub fn eventfd(&self) -> Option<&EventFd> {
        self.evt.as_ref()
    }
}

/// A reset line that ends the VM through the notifier itself, for solo mode: the i8042's
/// reset command needs no eventfd when the only thread asks [`ExitNotifier::reason`]
/// after each exit anyway (`vcpu/thread.rs`, `run_solo`).
pub struct ResetByNotifier(pub Arc<ExitNotifier>);

impl vm_superio::Trigger for ResetByNotifier {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.notify(VmExit::Reset);
        Ok(())
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
        assert_eq!(n.eventfd().unwrap().read().unwrap(), 2);
    }

    #[test]
    fn the_i8042_reset_command_ends_a_solo_vm_through_the_notifier() {
        use devices::bus::BusDevice;
        let n = Arc::new(ExitNotifier::unwatched());
        let mut port = devices::legacy::I8042Reset::new(ResetByNotifier(n.clone()));
        port.write(0, &[0xd1]);
        assert_eq!(n.reason(), None, "not the reset command");
        port.write(0, &[0xfe]);
        assert_eq!(n.reason(), Some(VmExit::Reset));
    }

    #[test]
    fn an_unwatched_notifier_keeps_the_first_reason_without_an_eventfd() {
        let n = ExitNotifier::unwatched();
        assert!(n.eventfd().is_none());
        n.notify(VmExit::DebugExit { status: 3 });
        n.notify(VmExit::Reset);
        assert_eq!(n.reason(), Some(VmExit::DebugExit { status: 3 }));
    }
}
