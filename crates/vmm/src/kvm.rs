//! Opening /dev/kvm and creating the VM with its in-kernel devices, with
//! errors that tell the user what to fix.

use arch::layout::KVM_TSS_ADDRESS;
use kvm_bindings::{kvm_pit_config, kvm_reinject_control, KVMIO};
use kvm_ioctls::{Cap, Kvm, VmFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_io_nr;

/// Overrides the KVM device path (tests use it to exercise the errors).
pub const KVM_DEVICE_ENV: &str = "MICROVM_KVM_DEVICE";
const DEFAULT_KVM_DEVICE: &str = "/dev/kvm";
const KVM_API_VERSION: i32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error(
        "{path} does not exist: this host has no KVM (load kvm_intel or kvm_amd, or enable nested virtualization)"
    )]
    Missing { path: PathBuf },
    #[error("no permission to open {path}: run as root or join the group that owns it (usually 'kvm')")]
    PermissionDenied { path: PathBuf },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a KVM device ({source})")]
    NotKvm { path: PathBuf, source: kvm_ioctls::Error },
    #[error("{path} speaks KVM API version {version}, microvm needs {KVM_API_VERSION}")]
    ApiVersion { path: PathBuf, version: i32 },
    #[error("KVM lacks {0}, which microvm needs")]
    MissingCapability(&'static str),
    #[error("KVM {what} failed: {source}")]
    Ioctl { what: &'static str, source: kvm_ioctls::Error },
}

pub fn kvm_device_path() -> PathBuf {
    std::env::var_os(KVM_DEVICE_ENV).map_or_else(|| PathBuf::from(DEFAULT_KVM_DEVICE), PathBuf::from)
}

pub fn open_kvm(path: &Path) -> Result<Kvm, KvmError> {
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| KvmError::Missing { path: path.to_owned() })?;
    let kvm = Kvm::new_with_path(c_path).map_err(|e| match e.errno() {
        libc::ENOENT => KvmError::Missing { path: path.to_owned() },
        libc::EACCES | libc::EPERM => KvmError::PermissionDenied { path: path.to_owned() },
        _ => KvmError::Open { path: path.to_owned(), source: std::io::Error::from_raw_os_error(e.errno()) },
    })?;
    let version = kvm.get_api_version();
    if version < 0 {
        let source = kvm_ioctls::Error::new(-version);
        return Err(KvmError::NotKvm { path: path.to_owned(), source });
    }
    if version != KVM_API_VERSION {
        return Err(KvmError::ApiVersion { path: path.to_owned(), version });
    }
    for (cap, name) in [
        (Cap::Irqchip, "an in-kernel irqchip (KVM_CAP_IRQCHIP)"),
        (Cap::Irqfd, "irqfd (KVM_CAP_IRQFD)"),
        (Cap::UserMemory, "user memory slots (KVM_CAP_USER_MEMORY)"),
        (Cap::SetTssAddr, "KVM_CAP_SET_TSS_ADDR"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(KvmError::MissingCapability(name));
        }
    }
    Ok(kvm)
}

pub fn create_vm(kvm: &Kvm) -> Result<VmFd, KvmError> {
    kvm.create_vm().map_err(|source| KvmError::Ioctl { what: "VM creation", source })
}

// KVM's header declares it _IO although it passes a struct (kvm-ioctls has no wrapper).
ioctl_io_nr!(KVM_REINJECT_CONTROL, KVMIO, 0x71);

/// The in-kernel PIC, IOAPIC and LAPICs, and optionally the PIT. Called
/// after the memory slots exist: the other order costs ~10x more here
/// (see PLATFORM-KVM.md §5). `pit_reinject: false` makes the PIT drop the
/// ticks the guest missed instead of delivering them late (QEMU's
/// `kvm-pit.lost_tick_policy=discard`).
pub fn create_irqchip(vm: &VmFd, pit: bool, pit_reinject: bool) -> Result<(), KvmError> {
    let ioctl = |what| move |source| KvmError::Ioctl { what, source };
    vm.set_tss_address(KVM_TSS_ADDRESS as usize).map_err(ioctl("KVM_SET_TSS_ADDR"))?;
    vm.create_irq_chip().map_err(ioctl("irqchip creation"))?;
    if pit {
        // flags 0: no PC speaker port emulation, only the PIT's 0x40-0x43.
        vm.create_pit2(kvm_pit_config::default()).map_err(ioctl("PIT creation"))?;
        if !pit_reinject {
            set_pit_reinject(vm, false).map_err(ioctl("KVM_REINJECT_CONTROL"))?;
        }
    }
    Ok(())
}

/// Whether the in-kernel PIT re-injects missed ticks (on when the PIT is created).
fn set_pit_reinject(vm: &VmFd, on: bool) -> Result<(), kvm_ioctls::Error> {
    let control = kvm_reinject_control { pit_reinject: u8::from(on), ..Default::default() };
    // SAFETY: the VM fd is valid, KVM only reads the 32-byte struct, which lives across the call.
    let rc = unsafe { ioctl_with_ref(vm, KVM_REINJECT_CONTROL(), &control) };
    if rc < 0 {
        return Err(kvm_ioctls::Error::last());
    }
    Ok(())
}
