//! Plain configuration structs a `Vmm` is built from. The CLI (or, later, an
//! API server) fills them; nothing here touches KVM.

use std::path::PathBuf;

/// Everything needed to build and run one microVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    pub machine: MachineConfig,
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// Number of vCPUs, 1..=arch::layout::MAX_VCPUS.
    pub vcpu_count: u8,
    pub kernel: KernelConfig,
    /// Where the legacy 16550A's output goes; `None` when no ISA serial exists.
    pub serial: Option<SerialConfig>,
    /// Report the time from process start to the first KVM_RUN on stderr.
    pub report_start_time: bool,
}

/// Machine properties, `-M microvm,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// In-kernel PIT (i8254). `pit=off` removes it.
    pub pit: bool,
    /// Append `virtio_mmio.device=` entries (and nothing else) to the command line.
    pub auto_kernel_cmdline: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig { pit: true, auto_kernel_cmdline: true }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// ELF vmlinux with a PVH note, or a bzImage.
    pub path: PathBuf,
    pub cmdline: String,
    pub initrd: Option<PathBuf>,
}

/// Backend of the legacy ISA serial port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialConfig {
    /// Guest output to stdout, stdin to the guest.
    Stdio,
    /// The UART exists (early boot code can probe it) but is connected to nothing.
    Null,
}
