//! Whether this host can restore a snapshot, asked before anything is built (a restore)
//! or instead of building anything (`snapshot-info --check`): KVM's XSAVE area fits, every
//! CPU feature the guest was given is offered by KVM here, and the guest's TSC frequency
//! is this host's or KVM can scale to it.

use super::Snapshot;
use crate::vcpu::XsaveFits;
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Cap, Kvm};

#[derive(Debug, thiserror::Error)]
pub enum HostMismatch {
    #[error("this host's KVM lacks CPU features the guest was given: {}; restore on a host that has them, or take the snapshot of a guest started with -cpu host,-FLAG", .0.join(", "))]
    CpuFeatures(Vec<String>),
    #[error("the guest's TSC runs at {saved} kHz, this host's at {here} kHz, and this host's KVM cannot scale it (no KVM_CAP_TSC_CONTROL)")]
    Tsc { saved: u32, here: u32 },
    #[error(transparent)]
    Xsave(#[from] crate::vcpu::VcpuError),
    #[error("cannot ask KVM what it supports: {0}")]
    Kvm(#[source] kvm_ioctls::Error),
}

/// This host's TSC frequency as KVM reports it to a new vCPU, in kHz.
fn host_tsc_khz(kvm: &Kvm) -> Option<u32> {
    if !kvm.check_extension(Cap::GetTscKhz) {
        return None;
    }
    let vm = kvm.create_vm().ok()?;
    let vcpu = vm.create_vcpu(0).ok()?;
    vcpu.get_tsc_khz().ok().filter(|&khz| khz > 0)
}

/// Checks everything a restore needs of the host; `tsc_here` is the host's TSC kHz
/// when the caller already knows it (a restore's first vCPU), else it is measured.
pub fn check_host(kvm: &Kvm, snapshot: &Snapshot, tsc_here: Option<u32>) -> Result<(), HostMismatch> {
    XsaveFits::check(kvm)?;
    let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(HostMismatch::Kvm)?;
    if let Some(vcpu) = snapshot.vcpus.first() {
        let missing = arch::cpuid_check::missing_features(&vcpu.cpuid, supported.as_slice());
        if !missing.is_empty() {
            return Err(HostMismatch::CpuFeatures(missing));
        }
        let here = tsc_here.or_else(|| host_tsc_khz(kvm));
        if let (Some(saved), Some(here)) = (vcpu.tsc_khz, here) {
            if saved != here && !kvm.check_extension(Cap::TscControl) {
                return Err(HostMismatch::Tsc { saved, here });
            }
        }
    }
    Ok(())
}

/// [`check_host`] against this host's /dev/kvm (`MICROVM_KVM_DEVICE` overrides the path).
pub fn check_this_host(snapshot: &Snapshot) -> Result<(), super::SnapshotError> {
    let kvm =
        crate::kvm::open_kvm(&crate::kvm::kvm_device_path()).map_err(|e| super::SnapshotError::Kvm(Box::new(e)))?;
    check_host(&kvm, snapshot, None).map_err(super::SnapshotError::from)
}
