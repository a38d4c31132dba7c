//! KVM_PRE_FAULT_MEMORY (Linux 6.10): guest pages mapped into the second-level page
//! table (AMD's NPT, Intel's EPT) before the guest runs, so that its first access to each
//! is no exit. A restore uses it for the snapshot's working-set list
//! (`snapshot::prefetch`); KVMs without it (older, or shadow paging) refuse the call and
//! the guest faults the pages in itself, as it always did.

use super::Vcpu;
use kvm_bindings::kvm_pre_fault_memory;
use vmm_sys_util::ioctl::ioctl_with_mut_ref;

vmm_sys_util::ioctl_iowr_nr!(KVM_PRE_FAULT_MEMORY, kvm_bindings::KVMIO, 0xd5, kvm_pre_fault_memory);

/// How often, in all, the calls for one range may come back interrupted (a pending
/// signal) before the range is given up: the guest then faults the rest in itself.
const RETRIES: u32 = 8;

impl Vcpu {
    /// Maps guest-physical [gpa, gpa + size) into the second-level page table, as a read
    /// by this vCPU would (a page this process has its own writable copy of is mapped
    /// writable, a page of the file's page cache read-only). The error is the kernel's:
    /// ENOTTY or EINVAL where KVM lacks the call, EOPNOTSUPP without two-dimensional
    /// paging.
    pub(crate) fn pre_fault_memory(&self, gpa: u64, size: u64) -> std::io::Result<()> {
        let mut range = kvm_pre_fault_memory { gpa, size, ..Default::default() };
        let mut retries = 0;
        while range.size > 0 {
            // SAFETY: the request's argument is a kvm_pre_fault_memory, which `range` is;
            // the kernel reads it and writes back how far it got, during the call only.
            let rc = unsafe { ioctl_with_mut_ref(&self.fd, KVM_PRE_FAULT_MEMORY(), &mut range) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                let again = matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN));
                if !again || retries == RETRIES {
                    return Err(e);
                }
                retries += 1;
            }
        }
        Ok(())
    }
}
