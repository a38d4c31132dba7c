//! vCPUs: creating them and setting their boot-time architectural state (here), and the
//! thread each one runs on, driven by commands (`thread.rs`).

mod guest_errors;
mod pre_fault;
mod state;
mod thread;

pub use guest_errors::GuestErrorLog;
pub use state::{VcpuState, XsaveFits};
pub use thread::{install_kick_handler, VcpuAck, VcpuCommand, VcpuContext, VcpuHandle, VcpuThreadOptions};

use crate::exit::{VcpuFailure, VmExit};
use arch::cpu_features::{apply_features, CpuFeatures, CpuFlag};
use arch::cpu_template::{MsrModifier, TemplateError};
use arch::cpuid::{patch_cpuid, CpuidParams};
use arch::regs::{boot_fpu, boot_msrs, boot_regs, boot_sregs, configure_lapic, BootEntry};
use kvm_bindings::{kvm_cpuid_entry2, kvm_msr_entry, CpuId, Msrs};
use kvm_ioctls::{VcpuFd, VmFd};

#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    #[error("cannot create vCPU {id}: {source}")]
    Create { id: u8, source: kvm_ioctls::Error },
    #[error("cannot set {what} of vCPU {id}: {source}")]
    Setup { id: u8, what: &'static str, source: kvm_ioctls::Error },
    #[error("KVM refused {set} of {total} boot MSRs of vCPU {id}")]
    Msrs { id: u8, set: usize, total: usize },
    #[error("cannot start the thread of vCPU {id}: {source}")]
    Spawn { id: u8, source: std::io::Error },
    #[error("cannot read {what} of vCPU {id}: {source}")]
    Save { id: u8, what: &'static str, source: kvm_ioctls::Error },
    #[error("KVM refused MSR {index:#x} of vCPU {id} ({set} of {total} restored)")]
    MsrRefused { id: u8, index: u32, set: usize, total: usize },
    #[error("vCPU {id}: the snapshot's TSC runs at {saved} kHz, this host's at {here} kHz, and KVM cannot scale it: {source}")]
    TscScaling { id: u8, saved: u32, here: u32, source: kvm_ioctls::Error },
    #[error("this host's XSAVE area is {0} bytes (AMX?); microvm snapshots only the 4096-byte area")]
    XsaveTooLarge(i32),
    #[error("vCPU {id} is running: pause the VM before saving its state")]
    NotPaused { id: u8 },
    #[error("vCPU {id} did not {what} within {timeout_ms} ms")]
    NoAck { id: u8, what: &'static str, timeout_ms: u128 },
    #[error("cannot set the signal mask of vCPU {id} in the guest: {source}")]
    SignalMask { id: u8, source: std::io::Error },
    /// The custom CPU template changes a leaf or an MSR KVM does not have (Firecracker's
    /// message, which names it).
    #[error("{source}")]
    Template { id: u8, source: arch::cpu_template::TemplateError },
}

/// What every vCPU's CPUID derives from.
pub struct CpuidTemplate {
    /// KVM_GET_SUPPORTED_CPUID's buffer as it came: each vCPU copies its entries once.
    pub supported: CpuId,
    pub tsc_khz: Option<u32>,
    pub tsc_deadline: bool,
    /// `-cpu MODEL,...`: the model and its flags, applied last.
    pub features: CpuFeatures,
}

pub struct Vcpu {
    id: u8,
    fd: VcpuFd,
    /// The CPUID this vCPU was given, for snapshots. Kept rather than read back with
    /// KVM_GET_CPUID2: some KVMs (PVM, on the project's machines) answer that with the
    /// host's CPUID, not the guest's.
    cpuid: Vec<kvm_cpuid_entry2>,
}

/// Value a read from an address no device claims returns: all ones, what an
/// empty ISA bus and unassigned MMIO give on a PC.
const UNCLAIMED_READ: u8 = 0xff;

impl Vcpu {
    pub fn new(vm: &VmFd, id: u8) -> Result<Self, VcpuError> {
        let fd = vm.create_vcpu(u64::from(id)).map_err(|source| VcpuError::Create { id, source })?;
        Ok(Vcpu { id, fd, cpuid: Vec::new() })
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    /// KVM_SET_SIGNAL_MASK: the signals blocked while this vCPU is in KVM_RUN (`set`, the
    /// kernel's 64-bit sigset); outside KVM_RUN the thread's own mask applies again.
    pub(crate) fn set_guest_signal_mask(&self, set: [u8; 8]) -> Result<(), VcpuError> {
        /// `struct kvm_signal_mask` with the x86_64 kernel's sigset: the set follows the
        /// length unaligned, at offset 4.
        #[repr(C)]
        struct SignalMask {
            len: u32,
            set: [u8; 8],
        }
        vmm_sys_util::ioctl_iow_nr!(KVM_SET_SIGNAL_MASK, kvm_bindings::KVMIO, 0x8b, kvm_bindings::kvm_signal_mask);
        let mask = SignalMask { len: 8, set };
        // SAFETY: the request's argument is a kvm_signal_mask whose `len` bytes of set
        // follow it, which `mask` is; the kernel only reads it, during the call.
        let rc = unsafe { vmm_sys_util::ioctl::ioctl_with_ref(&self.fd, KVM_SET_SIGNAL_MASK(), &mask) };
        if rc < 0 {
            return Err(VcpuError::SignalMask { id: self.id, source: std::io::Error::last_os_error() });
        }
        Ok(())
    }

    /// The guest TSC frequency KVM uses, if it can tell.
    pub fn tsc_khz(&self) -> Option<u32> {
        self.fd.get_tsc_khz().ok().filter(|&khz| khz > 0)
    }

    /// CPUID, MSRs, FPU and LAPIC for every vCPU; registers for the boot vCPU
    /// (`entry` is `Some` only for it: the others wait for INIT/SIPI in KVM).
    /// Returns the features `-cpu` asked for that KVM does not offer (left off).
    pub fn configure(
        &mut self,
        cpuid: &CpuidTemplate,
        count: u8,
        entry: Option<BootEntry>,
    ) -> Result<Vec<&'static CpuFlag>, VcpuError> {
        let id = self.id;
        let err = |what| move |source| VcpuError::Setup { id, what, source };
        // Room for the one leaf patch_cpuid may add: growing the copy would be one more
        // allocation and copy, and musl maps and unmaps each new one here (docs/start-path.md).
        let supported = cpuid.supported.as_slice();
        let mut entries = Vec::with_capacity(supported.len() + 1);
        entries.extend_from_slice(supported);
        let params =
            CpuidParams { vcpu_id: id, vcpu_count: count, tsc_khz: cpuid.tsc_khz, tsc_deadline: cpuid.tsc_deadline };
        patch_cpuid(&mut entries, &params);
        let not_applied = apply_features(&mut entries, &cpuid.features);
        let template = &cpuid.features.template;
        template.apply_cpuid(&mut entries).map_err(|source| VcpuError::Template { id, source })?;
        let cpuid = CpuId::from_entries(&entries).map_err(|_| VcpuError::Setup {
            id,
            what: "CPUID",
            source: kvm_ioctls::Error::new(libc::E2BIG),
        })?;
        self.fd.set_cpuid2(&cpuid).map_err(err("CPUID"))?;
        // Now, while it is the start arena's latest allocation: its room goes back for the
        // buffers below (start_arena.rs).
        drop(cpuid);
        self.cpuid = entries;

        let msr_list = boot_msrs();
        let msrs = Msrs::from_entries(&msr_list).map_err(|_| VcpuError::Msrs { id, set: 0, total: msr_list.len() })?;
        let set = self.fd.set_msrs(&msrs).map_err(err("MSRs"))?;
        if set != msr_list.len() {
            return Err(VcpuError::Msrs { id, set, total: msr_list.len() });
        }
        for modifier in &template.msrs {
            self.apply_msr_modifier(modifier)?;
        }
        self.fd.set_fpu(&boot_fpu()).map_err(err("FPU"))?;
        let mut lapic = self.fd.get_lapic().map_err(err("LAPIC"))?;
        configure_lapic(&mut lapic);
        self.fd.set_lapic(&lapic).map_err(err("LAPIC"))?;

        if let Some(entry) = entry {
            let sregs = self.fd.get_sregs().map_err(err("special registers"))?;
            self.fd.set_sregs(&boot_sregs(sregs, entry)).map_err(err("special registers"))?;
            self.fd.set_regs(&boot_regs(entry)).map_err(err("registers"))?;
        }
        Ok(not_applied)
    }

    /// A custom template's MSR change: the MSR as KVM has it now (after the boot MSRs),
    /// its bits changed, written back. An MSR KVM neither reads nor writes is refused.
    fn apply_msr_modifier(&self, m: &MsrModifier) -> Result<(), VcpuError> {
        let id = self.id;
        let refused = || VcpuError::Template { id, source: TemplateError::MsrNotSupported(m.addr) };
        let entry = kvm_msr_entry { index: m.addr, ..Default::default() };
        let mut msrs = Msrs::from_entries(&[entry]).map_err(|_| refused())?;
        // KVM_GET_MSRS answers how many it read: 0 for an MSR it does not have.
        if self.fd.get_msrs(&mut msrs).map_err(|_| refused())? != 1 {
            return Err(refused());
        }
        let data = m.bitmap.apply(msrs.as_slice()[0].data);
        let msrs = Msrs::from_entries(&[kvm_msr_entry { data, ..entry }]).map_err(|_| refused())?;
        if self.fd.set_msrs(&msrs).map_err(|_| refused())? != 1 {
            return Err(refused());
        }
        Ok(())
    }

    /// Logs the register state (for the bug report) and builds the exit reason.
    fn failure(&self, error: VcpuFailure) -> VmExit {
        metrics::VCPU.failures.inc();
        log::error!("vcpu{}: {error}; {}", self.id, self.describe_state());
        VmExit::VcpuError { vcpu: self.id, error }
    }

    fn describe_state(&self) -> String {
        let regs = match self.fd.get_regs() {
            Ok(r) => format!(
                "rip={:#x} rsp={:#x} rflags={:#x} rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x}",
                r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi
            ),
            Err(e) => format!("registers unavailable: {e}"),
        };
        let sregs = match self.fd.get_sregs() {
            Ok(s) => format!(
                "cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x} cs={:#x}/{:#x}",
                s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base
            ),
            Err(e) => format!("special registers unavailable: {e}"),
        };
        format!("register state: {regs} {sregs}")
    }
}
