//! A vCPU thread (`vcpuN`, `CPU N/KVM`): KVM_RUN and the port and MMIO exits it hands to
//! the devices, which run on this thread: the serial's output, irqfd and ioeventfd-less
//! notifications (eventfd writes, in the common list), the CMOS clock arming its timer,
//! and a virtio device's activation.

use crate::allow;
use crate::kvm_ioctls::*;
use crate::rules::{eq, Rule};

/// Running the guest, on a vCPU thread or in solo mode (`solo.rs`).
pub const RUN: &[Rule] = &[
    allow!(SYS_ioctl, "KVM_RUN", [eq(1, KVM_RUN)]),
    // Only when the VM fails: the registers go into the error line.
    allow!(SYS_ioctl, "KVM_GET_REGS", [eq(1, KVM_GET_REGS)]),
    allow!(SYS_ioctl, "KVM_GET_SREGS", [eq(1, KVM_GET_SREGS)]),
];

/// What a vCPU thread does besides, for the devices, monitors and snapshots of a VM with
/// threads. None of it can happen in solo mode, which has no device, monitor or second
/// vCPU, so its list leaves this out (a shorter filter installs faster).
pub const VCPU: &[Rule] = &[
    // A snapshot: the parked vCPU reads its own state (registers above, and these).
    allow!(SYS_ioctl, "KVM_GET_MSRS", [eq(1, KVM_GET_MSRS)]),
    allow!(SYS_ioctl, "KVM_GET_XSAVE", [eq(1, KVM_GET_XSAVE)]),
    allow!(SYS_ioctl, "KVM_GET_XCRS", [eq(1, KVM_GET_XCRS)]),
    allow!(SYS_ioctl, "KVM_GET_DEBUGREGS", [eq(1, KVM_GET_DEBUGREGS)]),
    allow!(SYS_ioctl, "KVM_GET_LAPIC", [eq(1, KVM_GET_LAPIC)]),
    allow!(SYS_ioctl, "KVM_GET_MP_STATE", [eq(1, KVM_GET_MP_STATE)]),
    allow!(SYS_ioctl, "KVM_GET_VCPU_EVENTS", [eq(1, KVM_GET_VCPU_EVENTS)]),
    allow!(SYS_ioctl, "KVM_GET_TSC_KHZ", [eq(1, KVM_GET_TSC_KHZ)]),
    // `migrate-incoming` (-incoming defer): the parked, never run vCPU loads its state.
    allow!(SYS_ioctl, "KVM_SET_CPUID2", [eq(1, KVM_SET_CPUID2)]),
    allow!(SYS_ioctl, "KVM_SET_TSC_KHZ", [eq(1, KVM_SET_TSC_KHZ)]),
    allow!(SYS_ioctl, "KVM_SET_MP_STATE", [eq(1, KVM_SET_MP_STATE)]),
    allow!(SYS_ioctl, "KVM_SET_REGS", [eq(1, KVM_SET_REGS)]),
    allow!(SYS_ioctl, "KVM_SET_SREGS", [eq(1, KVM_SET_SREGS)]),
    allow!(SYS_ioctl, "KVM_SET_XSAVE", [eq(1, KVM_SET_XSAVE)]),
    allow!(SYS_ioctl, "KVM_SET_XCRS", [eq(1, KVM_SET_XCRS)]),
    allow!(SYS_ioctl, "KVM_SET_DEBUGREGS", [eq(1, KVM_SET_DEBUGREGS)]),
    allow!(SYS_ioctl, "KVM_SET_LAPIC", [eq(1, KVM_SET_LAPIC)]),
    allow!(SYS_ioctl, "KVM_SET_MSRS", [eq(1, KVM_SET_MSRS)]),
    allow!(SYS_ioctl, "KVM_SET_VCPU_EVENTS", [eq(1, KVM_SET_VCPU_EVENTS)]),
    // Pausing tells the guest's kvmclock it was stopped, so a long pause is no soft lockup.
    allow!(SYS_ioctl, "KVM_KVMCLOCK_CTRL", [eq(1, KVM_KVMCLOCK_CTRL)]),
    // virtio-net's activation (a status write) sets the tap's offloads to what the driver
    // acked; moving it to the device thread would delay DRIVER_OK for no narrower list there.
    allow!(SYS_ioctl, "TUNSETOFFLOAD", [eq(1, libc::TUNSETOFFLOAD as u32)]),
    // A virtio device's activation (the guest's DRIVER_OK write) hands the device its own
    // duplicates of the queue eventfds (OwnedFd::try_clone).
    allow!(SYS_fcntl, "F_DUPFD_CLOEXEC", [eq(1, libc::F_DUPFD_CLOEXEC as u32)]),
    // musl follows F_DUPFD_CLOEXEC with F_SETFD FD_CLOEXEC (for kernels that ignored it).
    allow!(SYS_fcntl, "F_SETFD", [eq(1, libc::F_SETFD as u32)]),
    // The CMOS clock re-arms its periodic/alarm timer when the guest writes its registers.
    allow!(SYS_timerfd_settime),
    // The serial port's output goes to its chardev from here (the guest's OUT): a socket
    // peer (send), or a shared stdout polled first.
    allow!(SYS_sendto),
    allow!(SYS_poll),
    // The thread records its id for `query-cpus-fast`.
    allow!(SYS_gettid),
];
