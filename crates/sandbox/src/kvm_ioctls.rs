//! The KVM ioctl requests the filters name, computed like the kernel's `_IO`/`_IOR` macros
//! (kvm-ioctls keeps its own private).

use kvm_bindings::{kvm_regs, kvm_sregs, KVMIO};
use vmm_sys_util::ioctl::{ioctl_expr, _IOC_NONE, _IOC_READ};

const fn request(dir: u32, nr: u32, size: usize) -> u32 {
    ioctl_expr(dir, KVMIO, nr, size as u32) as u32
}

pub const KVM_RUN: u32 = request(_IOC_NONE, 0x80, 0);
pub const KVM_GET_REGS: u32 = request(_IOC_READ, 0x81, std::mem::size_of::<kvm_regs>());
pub const KVM_GET_SREGS: u32 = request(_IOC_READ, 0x83, std::mem::size_of::<kvm_sregs>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_kernel_headers() {
        assert_eq!(KVM_RUN, 0xae80);
        assert_eq!(KVM_GET_REGS, 0x8090_ae81);
        assert_eq!(KVM_GET_SREGS, 0x8138_ae83);
    }
}
