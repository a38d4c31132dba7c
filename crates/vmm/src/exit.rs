//! How a running VM ends, and how whoever notices tells the main thread.

use sandbox::ThreadFailure;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::EventFd;

/// Why the VM stopped. `Clone` (the first reason is stored and read by whoever asks), so
/// the errors it holds are shared.
#[derive(Clone, Debug)]
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
    VcpuError { vcpu: u8, error: VcpuFailure },
    /// The device side of the VMM cannot go on.
    DeviceError(DeviceFailure),
    /// The guest wrote V to `-device isa-debug-exit`: the process ends with
    /// status (V << 1) | 1, as QEMU's does.
    DebugExit { status: u32 },
}

/// Why a vCPU cannot go on; the CLI prints it after `vcpuN: `.
#[derive(Clone, Debug, thiserror::Error)]
pub enum VcpuFailure {
    #[error("guest reported system event {0}")]
    SystemEvent(u32),
    #[error("KVM internal error (instruction emulation failed)")]
    Internal,
    #[error("KVM could not enter the guest (hardware reason {reason:#x}, cpu {cpu})")]
    FailEntry { reason: u64, cpu: u32 },
    /// An exit microvm does not handle, as kvm-ioctls prints it (the exit borrows the
    /// vCPU's run area, so its text is kept).
    #[error("unexpected KVM exit {0}")]
    UnexpectedExit(String),
    #[error("KVM_RUN failed: {0}")]
    Run(#[source] kvm_ioctls::Error),
    #[error(transparent)]
    Thread(#[from] ThreadFailure),
}

/// Why the device side of the VMM cannot go on.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DeviceFailure {
    /// A device thread (or the main thread's confinement) failed.
    #[error(transparent)]
    Thread(#[from] ThreadFailure),
    #[error("{thread} event loop failed: {source:?}")]
    EventLoop { thread: String, source: Arc<event_manager::Error> },
    #[error(transparent)]
    Ninep(Arc<devices::virtio::ninep::NinepError>),
    /// The controller's error (a `control::ControlError`), kept whole as the source but
    /// not named: the controller sits above this module and reports through it.
    #[error("cannot stop after the guest powered off: {0}")]
    GuestShutdown(#[source] Arc<dyn std::error::Error + Send + Sync>),
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
        assert!(n.reason().is_none());
        n.notify(VmExit::Reset);
        n.notify(VmExit::Signal(15));
        assert!(matches!(n.reason(), Some(VmExit::Reset)));
        assert_eq!(n.eventfd().unwrap().read().unwrap(), 2);
    }

    #[test]
    fn the_i8042_reset_command_ends_a_solo_vm_through_the_notifier() {
        use devices::bus::BusDevice;
        let n = Arc::new(ExitNotifier::unwatched());
        let mut port = devices::legacy::I8042Reset::new(ResetByNotifier(n.clone()));
        port.write(0, &[0xd1]);
        assert!(n.reason().is_none(), "not the reset command");
        port.write(0, &[0xfe]);
        assert!(matches!(n.reason(), Some(VmExit::Reset)));
    }

    #[test]
    fn an_unwatched_notifier_keeps_the_first_reason_without_an_eventfd() {
        let n = ExitNotifier::unwatched();
        assert!(n.eventfd().is_none());
        n.notify(VmExit::DebugExit { status: 3 });
        n.notify(VmExit::Reset);
        assert!(matches!(n.reason(), Some(VmExit::DebugExit { status: 3 })));
    }

    #[test]
    fn a_failure_keeps_its_cause_and_the_line_the_cli_prints() {
        use std::error::Error;
        let panicked = ThreadFailure::Panicked { thread: "virtio", message: "boom".into() };
        let exit = VmExit::DeviceError(panicked.into());
        let VmExit::DeviceError(failure) = exit.clone() else { panic!() };
        assert_eq!(failure.to_string(), "the virtio thread panicked: boom");
        let run = VcpuFailure::Run(kvm_ioctls::Error::new(libc::EFAULT));
        assert!(run.to_string().starts_with("KVM_RUN failed: "), "{run}");
        assert!(run.source().is_some_and(|s| s.downcast_ref::<kvm_ioctls::Error>().is_some()));
        let entry = VcpuFailure::FailEntry { reason: 0x21, cpu: 1 };
        assert_eq!(entry.to_string(), "KVM could not enter the guest (hardware reason 0x21, cpu 1)");
    }
}
