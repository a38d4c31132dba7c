//! Plain configuration structs a `Vmm` is built from. The CLI (or, later, an
//! API server) fills them; nothing here touches KVM.

use std::path::PathBuf;

/// Everything needed to build and run one microVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmConfig {
    pub machine: MachineConfig,
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// What backs guest RAM (anonymous memory by default).
    pub memory: MemoryConfig,
    /// Number of vCPUs, 1..=arch::layout::MAX_VCPUS.
    pub vcpu_count: u8,
    pub kernel: KernelConfig,
    /// Where the legacy 16550A's output goes; `None` when no ISA serial exists.
    pub serial: Option<SerialConfig>,
    /// Report the time from process start to the first KVM_RUN on stderr.
    pub report_start_time: bool,
    /// virtio-mmio devices, one slot each, in this order.
    pub devices: Vec<DeviceConfig>,
    /// `packed=on`: the indices in `devices` whose transport also offers the packed
    /// virtqueue (VIRTIO_F_RING_PACKED). Never a vhost device's (the front ends refuse it).
    pub packed_rings: Vec<usize>,
    /// Boot-time breakdown (`-trace-boot`); `None` adds no port and costs nothing.
    pub trace_boot: Option<BootTraceConfig>,
    /// `-S`: build everything, then wait in `prelaunch` until a monitor sends `cont`.
    pub start_paused: bool,
    /// `-name NAME[,debug-threads=on]`: reported by `query-name`.
    pub name: Option<String>,
    /// `debug-threads=on`: vCPU threads get QEMU's names (`CPU 0/KVM`) instead of `vcpu0`.
    pub debug_threads: bool,
    /// `-uuid`: already validated, in canonical lower-case 8-4-4-4-12 form.
    pub uuid: Option<String>,
    /// QMP monitors (`-qmp`, `-mon chardev=ID,mode=control`), in command-line order.
    pub monitors: Vec<MonitorConfig>,
    /// `-sandbox on` (the default): every thread runs under its seccomp allowlist.
    pub sandbox: bool,
    /// `-cpu host,...`: feature flags applied on top of KVM's supported CPUID.
    pub cpu: CpuFeatures,
    /// `-rtc base=localtime`: the CMOS clock shows the host's local time, not UTC.
    pub rtc_localtime: bool,
    /// `-overcommit mem-lock=on`: guest RAM is locked into host memory (mlock).
    pub mem_lock: bool,
    /// `-d guest_errors`: guest accesses no device claims are logged (rate-limited).
    pub guest_errors: bool,
    /// `-device isa-debug-exit`: the port whose writes end microvm with a status.
    pub debug_exit: Option<DebugExitConfig>,
    /// Mux chardevs and human monitors; front ends name them with `ChardevBackend::MuxPort`.
    pub muxes: Vec<MuxConfig>,
    /// `-device i8042`: the whole keyboard controller (ports 0x60 and 0x64, IRQ 1, a PS/2
    /// keyboard for `send-key`) instead of the reset-only command port.
    pub i8042: bool,
    /// `-no-shutdown`: a guest power-off stops the vCPUs instead of ending microvm.
    pub no_shutdown: bool,
    /// `-incoming file:PATH[,offset=N]`: restore this snapshot instead of booting.
    pub incoming: Option<crate::snapshot::SnapshotSource>,
    /// `-incoming defer`: build, then wait (`inmigrate`) for QMP `migrate-incoming`.
    pub incoming_defer: bool,
    /// `-device vmgenid` (`acpi=on` only): the VM Generation ID a restore changes.
    pub vmgenid: Option<crate::guid::VmGenIdConfig>,
    /// Dirty-page tracking (Firecracker's `track_dirty_pages`): KVM logs the guest's
    /// writes and each RAM region a bitmap of the VMM's, so that a diff snapshot writes
    /// only the pages changed since the last snapshot (docs/snapshot.md). Off: no cost.
    pub track_dirty_pages: bool,
}

/// Guest RAM when none is asked for (QEMU's default, `-m` absent).
pub const DEFAULT_MEM_SIZE: u64 = 128 << 20;

impl VmConfig {
    /// Whether this VM runs in solo mode (`solo.rs`: one vCPU and nothing for an event
    /// loop to serve, so the main thread runs the vCPU), and `dump-seccomp` reports one
    /// `solo` thread.
    pub fn runs_solo(&self) -> bool {
        self.vcpu_count == 1
            && self.devices.is_empty()
            && self.monitors.is_empty()
            && self.muxes.is_empty()
            && self.serial.is_none()
            && !self.machine.rtc
            && !self.machine.acpi
            && !self.i8042
            && !self.start_paused
    }

    /// A VM that boots `kernel` with QEMU's defaults: 128 MiB, one vCPU, no devices, no
    /// serial port, the sandbox on. The CLI and tests change what they need from here.
    pub fn new(kernel: KernelConfig) -> Self {
        VmConfig {
            machine: MachineConfig::default(),
            mem_size: DEFAULT_MEM_SIZE,
            memory: MemoryConfig::default(),
            vcpu_count: 1,
            kernel,
            serial: None,
            report_start_time: false,
            devices: Vec::new(),
            trace_boot: None,
            start_paused: false,
            name: None,
            debug_threads: false,
            uuid: None,
            monitors: Vec::new(),
            sandbox: true,
            cpu: Default::default(),
            rtc_localtime: false,
            mem_lock: false,
            guest_errors: false,
            debug_exit: None,
            muxes: Vec::new(),
            i8042: false,
            no_shutdown: false,
            incoming: None,
            incoming_defer: false,
            vmgenid: None,
            track_dirty_pages: false,
            packed_rings: Vec::new(),
        }
    }
}

/// A chardev shared by several front ends (`-chardev ...,mux=on`, `-serial
/// mon:stdio`) or a human monitor's own chardev (`-monitor stdio`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MuxConfig {
    /// The backend (never `MuxPort`).
    pub chardev: ChardevConfig,
    /// A human monitor (readline HMP) is one of its front ends.
    pub monitor: bool,
    /// The escape key (`-echr`; C-a = 1).
    pub escape: u8,
}

pub use crate::chardev_config::{ChardevBackend, ChardevConfig, LogFile};
/// Each device kind's config is its descriptor's (`device_kinds/`).
pub use crate::device_kinds::{
    BalloonConfig, BalloonOptions, BlockConfig, ConsoleConfig, DebugExitConfig, DeviceConfig, FsConfig,
    HybridVsockConfig, MmdsAttachment, NetBackend, NetConfig, NetLimits, NinePConfig, RngConfig, SerialPortConfig,
    SocketAddress, VirtioSerialConfig, VsockConfig, FS_MAX_QUEUE_SIZE, FS_TAG_LEN, NINEP_TAG_LEN,
};
pub use arch::cpu_features::CpuFeatures;

/// One QMP monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    pub socket: MonitorSocket,
    /// `pretty=on`: replies and events are indented JSON.
    pub pretty: bool,
    /// The chardev id of `-mon chardev=ID`; `None` for `-qmp`, which QEMU labels
    /// `compat_monitorN` in `query-chardev`.
    pub label: Option<String>,
}

/// Where a QMP monitor talks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorSocket {
    /// Listen on a Unix socket (`server=on`). With `wait`, set-up blocks until the first
    /// client connects, as QEMU does.
    UnixListen { path: PathBuf, wait: bool },
    /// Connect to a Unix socket a client listens on (`server=off`).
    UnixConnect { path: PathBuf },
    /// Listen on TCP (`tcp:HOST:PORT,server=on`).
    TcpListen { host: String, port: u16, wait: bool },
    /// Connect to a TCP listener (`tcp:HOST:PORT,server=off`).
    TcpConnect { host: String, port: u16 },
    /// Standard input and output (`-qmp stdio`).
    Stdio,
    /// An inherited, already connected stream socket (`-chardev socket,id=ID,fd=N`), as
    /// QEMU's Python test harness passes one.
    Fd(i32),
}

/// Machine properties, `-M microvm,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// In-kernel PIT (i8254). `pit=off` removes it.
    pub pit: bool,
    /// Append `virtio_mmio.device=` entries (and nothing else) to the command line.
    pub auto_kernel_cmdline: bool,
    /// Hardware-reduced ACPI: tables, the GED (power button) and the sleep registers.
    pub acpi: bool,
    /// CMOS real-time clock on ports 0x70-0x71, IRQ 8 (`rtc=on`; off by default).
    pub rtc: bool,
    /// The in-kernel PIT re-injects ticks the guest missed (KVM's default, QEMU's
    /// `kvm-pit.lost_tick_policy=delay`); false drops them (`discard`).
    pub pit_reinject: bool,
    /// `mem-merge=on` (QEMU's default): guest RAM is offered to KSM (MADV_MERGEABLE).
    pub mem_merge: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            pit: true,
            auto_kernel_cmdline: true,
            rtc: false,
            acpi: false,
            pit_reinject: true,
            mem_merge: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// ELF vmlinux with a PVH note, or a bzImage.
    pub path: PathBuf,
    pub cmdline: String,
    pub initrd: Option<PathBuf>,
}

/// Backend of the legacy ISA serial port (QEMU's label `serial0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialConfig {
    /// Guest output to stdout, stdin to the guest.
    Stdio,
    /// The UART exists (early boot code can probe it) but is connected to nothing.
    Null,
    /// Any other chardev: `-serial chardev:ID|file:|pty|unix:|tcp:`, `-device isa-serial,chardev=ID`.
    Chardev(ChardevConfig),
}

pub use devices::rate_limiter::{BucketConfig, LimiterConfig};
/// QEMU's `cache=` modes; the block device defines what each means.
pub use devices::virtio::block::{CacheMode, DriveLimits, Engine, ImageFormat, ImageOptions};

/// Where guest RAM lives: `-object memory-backend-*` selected by `-machine
/// memory-backend=` or `-numa node,memdev=`, `-mem-path`, `-mem-prealloc`.
/// The default is anonymous private memory, reserved lazily.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryConfig {
    pub backend: MemoryBackend,
    /// `share=on`: mapped MAP_SHARED, so that another process (a vhost-user
    /// backend) mapping the same memfd or file sees the guest's writes.
    pub shared: bool,
    /// `prealloc=on` / `-mem-prealloc`: every page allocated before the guest runs.
    pub prealloc: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MemoryBackend {
    /// `memory-backend-ram`, or no backend at all.
    #[default]
    Anonymous,
    /// `memory-backend-memfd`; `hugepage_size`: `hugetlb=on` with that page size
    /// (`None`: the kernel's default huge page size).
    Memfd { hugetlb: bool, hugepage_size: Option<u64> },
    /// `memory-backend-file,mem-path=` / `-mem-path`: a file, or a directory in
    /// which an unnamed file is created (as QEMU does with /dev/shm or a hugetlbfs mount).
    File { path: PathBuf },
}

impl MemoryConfig {
    /// Whether another process can map guest RAM: a shared memfd or file.
    pub fn is_shareable(&self) -> bool {
        self.shared && !matches!(self.backend, MemoryBackend::Anonymous)
    }
}

/// `-trace-boot[=json=FILE]`: the boot-time breakdown of `boot_trace.rs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootTraceConfig {
    /// Also write the figures as JSON to this file.
    pub json: Option<PathBuf>,
}
