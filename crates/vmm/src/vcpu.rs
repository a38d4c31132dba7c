//! One thread per vCPU: set the architectural state, then loop on KVM_RUN,
//! handing port and MMIO exits to the buses.

use crate::exit::{ExitNotifier, VmExit};
use crate::startup::StartupClock;
use arch::cpuid::{patch_cpuid, CpuidParams};
use arch::regs::{boot_fpu, boot_msrs, boot_regs, boot_sregs, configure_lapic, BootEntry};
use devices::bus::Bus;
use kvm_bindings::{kvm_cpuid_entry2, CpuId, Msrs};
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

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
}

/// What every vCPU's CPUID derives from.
pub struct CpuidTemplate {
    pub supported: Vec<kvm_cpuid_entry2>,
    pub tsc_khz: Option<u32>,
    pub tsc_deadline: bool,
}

/// Shared by all vCPU threads.
pub struct VcpuContext {
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub exit: Arc<ExitNotifier>,
    pub clock: Arc<StartupClock>,
    /// Set when the VM is being torn down; a kick signal then makes KVM_RUN
    /// return and the thread end.
    pub stop: AtomicBool,
}

/// The signal that kicks a vCPU thread out of KVM_RUN.
pub fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the (empty) handler for the kick signal: its only job is to
/// interrupt KVM_RUN with EINTR.
pub fn install_kick_handler() -> std::io::Result<()> {
    vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
}

pub struct Vcpu {
    id: u8,
    fd: VcpuFd,
}

/// Value a read from an address no device claims returns: all ones, what an
/// empty ISA bus and unassigned MMIO give on a PC.
const UNCLAIMED_READ: u8 = 0xff;

impl Vcpu {
    pub fn new(vm: &VmFd, id: u8) -> Result<Self, VcpuError> {
        let fd = vm.create_vcpu(u64::from(id)).map_err(|source| VcpuError::Create { id, source })?;
        Ok(Vcpu { id, fd })
    }

    /// The guest TSC frequency KVM uses, if it can tell.
    pub fn tsc_khz(&self) -> Option<u32> {
        self.fd.get_tsc_khz().ok().filter(|&khz| khz > 0)
    }

    /// CPUID, MSRs, FPU and LAPIC for every vCPU; registers for the boot vCPU
    /// (`entry` is `Some` only for it: the others wait for INIT/SIPI in KVM).
    pub fn configure(&self, cpuid: &CpuidTemplate, count: u8, entry: Option<BootEntry>) -> Result<(), VcpuError> {
        let id = self.id;
        let err = |what| move |source| VcpuError::Setup { id, what, source };
        let mut entries = cpuid.supported.clone();
        let params =
            CpuidParams { vcpu_id: id, vcpu_count: count, tsc_khz: cpuid.tsc_khz, tsc_deadline: cpuid.tsc_deadline };
        patch_cpuid(&mut entries, &params);
        let cpuid = CpuId::from_entries(&entries).map_err(|_| VcpuError::Setup {
            id,
            what: "CPUID",
            source: kvm_ioctls::Error::new(libc::E2BIG),
        })?;
        self.fd.set_cpuid2(&cpuid).map_err(err("CPUID"))?;

        let msr_list = boot_msrs();
        let msrs = Msrs::from_entries(&msr_list).map_err(|_| VcpuError::Msrs { id, set: 0, total: msr_list.len() })?;
        let set = self.fd.set_msrs(&msrs).map_err(err("MSRs"))?;
        if set != msr_list.len() {
            return Err(VcpuError::Msrs { id, set, total: msr_list.len() });
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
        Ok(())
    }

    pub fn spawn(self, ctx: Arc<VcpuContext>) -> Result<JoinHandle<()>, VcpuError> {
        let id = self.id;
        std::thread::Builder::new()
            .name(format!("vcpu{id}"))
            .spawn(move || self.run(&ctx))
            .map_err(|source| VcpuError::Spawn { id, source })
    }

    fn run(mut self, ctx: &VcpuContext) {
        if self.id == 0 {
            ctx.clock.mark_first_run();
        }
        loop {
            if ctx.stop.load(Ordering::Acquire) {
                return;
            }
            let outcome = match self.fd.run() {
                Ok(VcpuExit::IoIn(port, data)) => {
                    if !ctx.pio.read(u64::from(port), data) {
                        data.fill(UNCLAIMED_READ);
                    }
                    continue;
                }
                Ok(VcpuExit::IoOut(port, data)) => {
                    ctx.pio.write(u64::from(port), data);
                    continue;
                }
                Ok(VcpuExit::MmioRead(addr, data)) => {
                    if !ctx.mmio.read(addr, data) {
                        data.fill(UNCLAIMED_READ);
                    }
                    continue;
                }
                Ok(VcpuExit::MmioWrite(addr, data)) => {
                    ctx.mmio.write(addr, data);
                    continue;
                }
                Ok(VcpuExit::Intr) => continue,
                Ok(VcpuExit::Shutdown) => VmExit::Shutdown,
                Ok(VcpuExit::SystemEvent(kind, _)) => match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => VmExit::Reset,
                    kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => VmExit::Shutdown,
                    other => self.failure(format!("guest reported system event {other}")),
                },
                Ok(VcpuExit::InternalError) => self.failure("KVM internal error (instruction emulation failed)".into()),
                Ok(VcpuExit::FailEntry(reason, cpu)) => {
                    self.failure(format!("KVM could not enter the guest (hardware reason {reason:#x}, cpu {cpu})"))
                }
                Ok(other) => {
                    let message = format!("unexpected KVM exit {other:?}");
                    self.failure(message)
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                // Teardown in progress: whatever KVM says now is not the guest's doing.
                Err(_) if ctx.stop.load(Ordering::Acquire) => return,
                Err(e) => self.failure(format!("KVM_RUN failed: {e}")),
            };
            if !ctx.stop.load(Ordering::Acquire) {
                ctx.exit.notify(outcome);
            }
            return;
        }
    }

    /// Logs the register state (for the bug report) and builds the exit reason.
    fn failure(&self, message: String) -> VmExit {
        log::error!("vcpu{}: {message}; {}", self.id, self.describe_state());
        VmExit::VcpuError { vcpu: self.id, message }
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
