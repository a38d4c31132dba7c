//! The KVM ioctl requests the filters name, computed like the kernel's `_IO`/`_IOR` macros
//! (kvm-ioctls keeps its own private).

use kvm_bindings::{
    kvm_clock_data, kvm_cpuid2, kvm_debugregs, kvm_dirty_log, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_msr_list,
    kvm_msrs, kvm_pit_state2, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave, KVMIO,
};
use vmm_sys_util::ioctl::{ioctl_expr, _IOC_NONE, _IOC_READ, _IOC_WRITE};

const fn request(dir: u32, nr: u32, size: usize) -> u32 {
    ioctl_expr(dir, KVMIO, nr, size as u32) as u32
}

pub const KVM_RUN: u32 = request(_IOC_NONE, 0x80, 0);
pub const KVM_GET_REGS: u32 = request(_IOC_READ, 0x81, std::mem::size_of::<kvm_regs>());
pub const KVM_GET_SREGS: u32 = request(_IOC_READ, 0x83, std::mem::size_of::<kvm_sregs>());

// Snapshots (QMP `migrate`): what the main thread reads of the VM...
const RW: u32 = _IOC_READ | _IOC_WRITE;
pub const KVM_CHECK_EXTENSION: u32 = request(_IOC_NONE, 0x03, 0);
pub const KVM_GET_MSR_INDEX_LIST: u32 = request(RW, 0x02, std::mem::size_of::<kvm_msr_list>());
pub const KVM_GET_IRQCHIP: u32 = request(RW, 0x62, std::mem::size_of::<kvm_irqchip>());
pub const KVM_GET_PIT2: u32 = request(_IOC_READ, 0x9f, std::mem::size_of::<kvm_pit_state2>());
pub const KVM_GET_CLOCK: u32 = request(_IOC_READ, 0x7c, std::mem::size_of::<kvm_clock_data>());
/// Diff snapshots: the guest's writes since the last snapshot (read and cleared).
pub const KVM_GET_DIRTY_LOG: u32 = request(_IOC_WRITE, 0x42, std::mem::size_of::<kvm_dirty_log>());
// ... and what each vCPU thread reads of itself.
pub const KVM_GET_MSRS: u32 = request(RW, 0x88, std::mem::size_of::<kvm_msrs>());
pub const KVM_GET_LAPIC: u32 = request(_IOC_READ, 0x8e, std::mem::size_of::<kvm_lapic_state>());
pub const KVM_GET_MP_STATE: u32 = request(_IOC_READ, 0x98, std::mem::size_of::<kvm_mp_state>());
pub const KVM_GET_VCPU_EVENTS: u32 = request(_IOC_READ, 0x9f, std::mem::size_of::<kvm_vcpu_events>());
pub const KVM_GET_DEBUGREGS: u32 = request(_IOC_READ, 0xa1, std::mem::size_of::<kvm_debugregs>());
pub const KVM_GET_TSC_KHZ: u32 = request(_IOC_NONE, 0xa3, 0);
pub const KVM_GET_XSAVE: u32 = request(_IOC_READ, 0xa4, std::mem::size_of::<kvm_xsave>());
pub const KVM_GET_XCRS: u32 = request(_IOC_READ, 0xa6, std::mem::size_of::<kvm_xcrs>());
pub const KVM_KVMCLOCK_CTRL: u32 = request(_IOC_NONE, 0xad, 0);

// `migrate-incoming` (`-incoming defer`): what the main thread writes into the VM...
const W: u32 = _IOC_WRITE;
pub const KVM_GET_SUPPORTED_CPUID: u32 = request(RW, 0x05, std::mem::size_of::<kvm_cpuid2>());
pub const KVM_SET_IRQCHIP: u32 = request(_IOC_READ, 0x63, std::mem::size_of::<kvm_irqchip>());
pub const KVM_SET_PIT2: u32 = request(W, 0xa0, std::mem::size_of::<kvm_pit_state2>());
pub const KVM_SET_CLOCK: u32 = request(W, 0x7b, std::mem::size_of::<kvm_clock_data>());
// ... and what each parked vCPU thread writes into itself.
pub const KVM_SET_REGS: u32 = request(W, 0x82, std::mem::size_of::<kvm_regs>());
pub const KVM_SET_SREGS: u32 = request(W, 0x84, std::mem::size_of::<kvm_sregs>());
pub const KVM_SET_MSRS: u32 = request(W, 0x89, std::mem::size_of::<kvm_msrs>());
pub const KVM_SET_LAPIC: u32 = request(W, 0x8f, std::mem::size_of::<kvm_lapic_state>());
pub const KVM_SET_CPUID2: u32 = request(W, 0x90, std::mem::size_of::<kvm_cpuid2>());
pub const KVM_SET_MP_STATE: u32 = request(W, 0x99, std::mem::size_of::<kvm_mp_state>());
pub const KVM_SET_VCPU_EVENTS: u32 = request(W, 0xa0, std::mem::size_of::<kvm_vcpu_events>());
pub const KVM_SET_DEBUGREGS: u32 = request(W, 0xa2, std::mem::size_of::<kvm_debugregs>());
pub const KVM_SET_TSC_KHZ: u32 = request(_IOC_NONE, 0xa2, 0);
pub const KVM_SET_XSAVE: u32 = request(W, 0xa5, std::mem::size_of::<kvm_xsave>());
pub const KVM_SET_XCRS: u32 = request(W, 0xa7, std::mem::size_of::<kvm_xcrs>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_kernel_headers() {
        assert_eq!(KVM_RUN, 0xae80);
        assert_eq!(KVM_GET_REGS, 0x8090_ae81);
        assert_eq!(KVM_GET_SREGS, 0x8138_ae83);
        // Values from the kernel's headers (linux/kvm.h) on x86_64.
        assert_eq!(KVM_CHECK_EXTENSION, 0xae03);
        assert_eq!(KVM_GET_MSR_INDEX_LIST, 0xc004_ae02);
        assert_eq!(KVM_GET_IRQCHIP, 0xc208_ae62);
        assert_eq!(KVM_GET_PIT2, 0x8070_ae9f);
        assert_eq!(KVM_GET_CLOCK, 0x8030_ae7c);
        assert_eq!(KVM_GET_DIRTY_LOG, 0x4010_ae42);
        assert_eq!(KVM_GET_MSRS, 0xc008_ae88);
        assert_eq!(KVM_GET_LAPIC, 0x8400_ae8e);
        assert_eq!(KVM_GET_MP_STATE, 0x8004_ae98);
        assert_eq!(KVM_GET_VCPU_EVENTS, 0x8040_ae9f);
        assert_eq!(KVM_GET_DEBUGREGS, 0x8080_aea1);
        assert_eq!(KVM_GET_TSC_KHZ, 0xaea3);
        assert_eq!(KVM_GET_XSAVE, 0x9000_aea4);
        assert_eq!(KVM_GET_XCRS, 0x8188_aea6);
        assert_eq!(KVM_KVMCLOCK_CTRL, 0xaead);
        assert_eq!(KVM_GET_SUPPORTED_CPUID, 0xc008_ae05);
        assert_eq!(KVM_SET_IRQCHIP, 0x8208_ae63);
        assert_eq!(KVM_SET_PIT2, 0x4070_aea0);
        assert_eq!(KVM_SET_CLOCK, 0x4030_ae7b);
        assert_eq!(KVM_SET_REGS, 0x4090_ae82);
        assert_eq!(KVM_SET_SREGS, 0x4138_ae84);
        assert_eq!(KVM_SET_MSRS, 0x4008_ae89);
        assert_eq!(KVM_SET_LAPIC, 0x4400_ae8f);
        assert_eq!(KVM_SET_CPUID2, 0x4008_ae90);
        assert_eq!(KVM_SET_MP_STATE, 0x4004_ae99);
        assert_eq!(KVM_SET_VCPU_EVENTS, 0x4040_aea0);
        assert_eq!(KVM_SET_DEBUGREGS, 0x4080_aea2);
        assert_eq!(KVM_SET_TSC_KHZ, 0xaea2);
        assert_eq!(KVM_SET_XSAVE, 0x5000_aea5);
        assert_eq!(KVM_SET_XCRS, 0x4188_aea7);
    }
}
