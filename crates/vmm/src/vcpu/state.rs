//! A vCPU's architectural state as data, read from KVM at snapshot and written back at
//! restore: registers, special registers, XSAVE area, XCRs, debug registers, LAPIC, MSRs,
//! multiprocessing state, pending events, and the CPUID and TSC frequency the guest was
//! given (so a restore can check the new host offers them).

use super::{Vcpu, VcpuError};
use kvm_bindings::{
    kvm_cpuid_entry2, kvm_debugregs, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs,
    kvm_vcpu_events, kvm_xcrs, kvm_xsave, CpuId, Msrs,
};
use serde::{Deserialize, Serialize};

/// MSRs KVM lists but that must not be written back: they are read-only or
/// host-specific, and KVM_SET_MSRS stops at the first one it refuses.
const MSR_IA32_TSC: u32 = 0x10;
/// The TSC deadline is written after the TSC, as KVM's own ordering needs (Linux's
/// `msrs_to_save_base` lists it late for the same reason).
const MSR_IA32_TSC_DEADLINE: u32 = 0x6e0;

#[derive(Debug, Serialize, Deserialize)]
pub struct VcpuState {
    pub id: u8,
    pub cpuid: Vec<kvm_cpuid_entry2>,
    /// The guest's TSC frequency, when KVM can tell it.
    pub tsc_khz: Option<u32>,
    pub msrs: Vec<kvm_msr_entry>,
    pub regs: kvm_regs,
    pub sregs: kvm_sregs,
    pub xsave: kvm_xsave,
    pub xcrs: kvm_xcrs,
    pub debug_regs: kvm_debugregs,
    pub lapic: kvm_lapic_state,
    pub mp_state: kvm_mp_state,
    pub events: kvm_vcpu_events,
}

impl VcpuState {
    /// The CPU features the guest was given, by name (QEMU's, or CPUID notation).
    pub fn feature_names(&self) -> Vec<String> {
        arch::cpuid_check::feature_names(&self.cpuid)
    }
}

/// Proof that this host's KVM XSAVE area fits `kvm_xsave` (4096 bytes): hosts with
/// larger areas (AMX) need KVM_GET_XSAVE2, which microvm does not use yet.
#[derive(Clone, Copy, Debug)]
pub struct XsaveFits(());

impl XsaveFits {
    pub fn check(kvm: &kvm_ioctls::Kvm) -> Result<Self, VcpuError> {
        // 0: no XSAVE2, so the legacy 4096-byte area is the whole state.
        let size = kvm.check_extension_int(kvm_ioctls::Cap::Xsave2);
        if size > std::mem::size_of::<kvm_xsave>() as i32 {
            return Err(VcpuError::XsaveTooLarge(size));
        }
        Ok(XsaveFits(()))
    }
}

impl Vcpu {
    /// Reads the whole state. The vCPU must be out of KVM_RUN (paused). An exit the
    /// thread handled (a port read's value) is only folded into the registers by the
    /// next KVM_RUN, so one is made first with `immediate_exit` set: KVM completes the
    /// instruction and returns at once without running guest code (KVM's API
    /// documentation asks for this before saving state).
    pub fn save_state(&mut self, msr_indices: &[u32]) -> Result<VcpuState, VcpuError> {
        let id = self.id;
        let err = |what| move |source| VcpuError::Save { id, what, source };
        self.fd.set_kvm_immediate_exit(1);
        let completed = self.fd.run().map(|_| ());
        self.fd.set_kvm_immediate_exit(0);
        match completed {
            Err(e) if e.errno() != libc::EINTR && e.errno() != libc::EAGAIN => {
                return Err(VcpuError::Save { id, what: "pending I/O completion", source: e })
            }
            _ => {}
        }
        Ok(VcpuState {
            id,
            cpuid: self.cpuid.clone(),
            tsc_khz: self.tsc_khz(),
            msrs: self.save_msrs(msr_indices)?,
            regs: self.fd.get_regs().map_err(err("registers"))?,
            sregs: self.fd.get_sregs().map_err(err("special registers"))?,
            xsave: self.fd.get_xsave().map_err(err("XSAVE area"))?,
            xcrs: self.fd.get_xcrs().map_err(err("XCRs"))?,
            debug_regs: self.fd.get_debug_regs().map_err(err("debug registers"))?,
            lapic: self.fd.get_lapic().map_err(err("LAPIC"))?,
            mp_state: self.fd.get_mp_state().map_err(err("MP state"))?,
            events: self.fd.get_vcpu_events().map_err(err("pending events"))?,
        })
    }

    /// Every MSR of `indices` KVM will read for this vCPU. KVM_GET_MSRS stops at the
    /// first MSR it cannot read (returning how many it read): that one is dropped and
    /// the rest read again, so one unreadable MSR costs one entry, not the snapshot.
    fn save_msrs(&self, indices: &[u32]) -> Result<Vec<kvm_msr_entry>, VcpuError> {
        let id = self.id;
        let mut saved = Vec::with_capacity(indices.len());
        let mut rest: Vec<u32> = indices.to_vec();
        while !rest.is_empty() {
            let entries: Vec<kvm_msr_entry> =
                rest.iter().map(|&index| kvm_msr_entry { index, ..Default::default() }).collect();
            let mut msrs =
                Msrs::from_entries(&entries).map_err(|_| VcpuError::Msrs { id, set: 0, total: rest.len() })?;
            let read = self.fd.get_msrs(&mut msrs).map_err(|source| VcpuError::Save { id, what: "MSRs", source })?;
            saved.extend_from_slice(&msrs.as_slice()[..read]);
            // Skip the one KVM refused, if any, and go on after it.
            rest.drain(..(read + 1).min(rest.len()));
        }
        // The TSC first and its deadline last: KVM computes the deadline against it.
        saved.sort_by_key(|m| match m.index {
            MSR_IA32_TSC => 0,
            MSR_IA32_TSC_DEADLINE => 2,
            _ => 1,
        });
        Ok(saved)
    }

    /// Writes a saved state into this (new, never run) vCPU, in the order KVM needs:
    /// CPUID before anything that depends on the features, the TSC frequency before the
    /// MSRs, special registers before the LAPIC (its base), pending events last.
    pub fn restore_state(&mut self, state: &VcpuState, fits: XsaveFits) -> Result<(), VcpuError> {
        self.restore_untimed(state, fits)?;
        self.restore_timed(state)
    }

    /// The first part of [`Vcpu::restore_state`]: what does not count time (CPUID, TSC
    /// frequency, MP state, registers, XSAVE, XCRs, debug registers), so a clone waiting
    /// for its request loads it ahead. KVM_SET_CPUID2 alone is ~0.1 ms on the project's
    /// machine (docs/snapshot.md, "The clone server").
    pub fn restore_untimed(&mut self, state: &VcpuState, _fits: XsaveFits) -> Result<(), VcpuError> {
        let id = self.id;
        let err = |what| move |source| VcpuError::Setup { id, what, source };
        let cpuid = CpuId::from_entries(&state.cpuid).map_err(|_| VcpuError::Setup {
            id,
            what: "CPUID",
            source: kvm_ioctls::Error::new(libc::E2BIG),
        })?;
        self.fd.set_cpuid2(&cpuid).map_err(err("CPUID"))?;
        self.cpuid = state.cpuid.clone();
        if let (Some(saved), Some(here)) = (state.tsc_khz, self.tsc_khz()) {
            if saved != here {
                self.fd.set_tsc_khz(saved).map_err(|source| VcpuError::TscScaling { id, saved, here, source })?;
            }
        }
        self.fd.set_mp_state(state.mp_state).map_err(err("MP state"))?;
        self.fd.set_regs(&state.regs).map_err(err("registers"))?;
        self.fd.set_sregs(&state.sregs).map_err(err("special registers"))?;
        // SAFETY: KVM_SET_XSAVE reads the host's XSAVE size from the pointer; `XsaveFits`
        // proves that size is at most `kvm_xsave`'s 4096 bytes, all of which we own.
        unsafe { self.fd.set_xsave(&state.xsave) }.map_err(err("XSAVE area"))?;
        self.fd.set_xcrs(&state.xcrs).map_err(err("XCRs"))?;
        self.fd.set_debug_regs(&state.debug_regs).map_err(err("debug registers"))?;
        Ok(())
    }

    /// The rest of [`Vcpu::restore_state`], loaded just before the vCPU may run: the
    /// LAPIC (its timer counts from the load), the MSRs (the TSC counts from the write),
    /// pending events.
    pub fn restore_timed(&mut self, state: &VcpuState) -> Result<(), VcpuError> {
        let id = self.id;
        let err = |what| move |source| VcpuError::Setup { id, what, source };
        self.fd.set_lapic(&state.lapic).map_err(err("LAPIC"))?;
        let msrs =
            Msrs::from_entries(&state.msrs).map_err(|_| VcpuError::Msrs { id, set: 0, total: state.msrs.len() })?;
        let set = self.fd.set_msrs(&msrs).map_err(err("MSRs"))?;
        if set != state.msrs.len() {
            let refused = state.msrs[set].index;
            return Err(VcpuError::MsrRefused { id, index: refused, set, total: state.msrs.len() });
        }
        self.fd.set_vcpu_events(&state.events).map_err(err("pending events"))?;
        Ok(())
    }
}
