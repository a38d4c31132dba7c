//! Interrupt lines as eventfds (KVM's irqfd): the platform devices' and the virtio
//! transports' way to raise a GSI without a trip through the VMM. Its own module so the
//! devices' set-up code needs nothing of `Vm`.

use crate::error::{io_err, Error};
use devices::EventFdTrigger;
use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// An edge-triggered interrupt line: writing the eventfd injects `gsi` in the kernel.
pub(crate) fn irqfd(vm: &VmFd, gsi: u32, what: &'static str) -> Result<EventFdTrigger, Error> {
    let irq = EventFd::new(EFD_NONBLOCK).map_err(io_err("eventfd"))?;
    vm.register_irqfd(&irq, gsi).map_err(|source| crate::kvm::KvmError::Ioctl { what, source })?;
    Ok(EventFdTrigger::new(irq))
}
