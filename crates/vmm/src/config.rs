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
    pub trace_boot: Option<crate::boot_trace::BootTraceConfig>,
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
    pub vmgenid: Option<crate::vmgenid::VmGenIdConfig>,
    /// Dirty-page tracking (Firecracker's `track_dirty_pages`): KVM logs the guest's
    /// writes and each RAM region a bitmap of the VMM's, so that a diff snapshot writes
    /// only the pages changed since the last snapshot (docs/snapshot.md). Off: no cost.
    pub track_dirty_pages: bool,
}

/// Guest RAM when none is asked for (QEMU's default, `-m` absent).
pub const DEFAULT_MEM_SIZE: u64 = 128 << 20;

impl VmConfig {
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

pub use arch::cpu_features::CpuFeatures;

/// `-device isa-debug-exit,iobase=,iosize=` (QEMU's defaults: 0x501, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugExitConfig {
    pub iobase: u16,
    pub iosize: u8,
}

impl Default for DebugExitConfig {
    fn default() -> Self {
        DebugExitConfig { iobase: 0x501, iosize: 2 }
    }
}

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

/// A virtio-mmio device, in command-line order (which is slot order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceConfig {
    Block(BlockConfig),
    Net(NetConfig),
    Console(ConsoleConfig),
    /// A multiport virtio-serial-device (several ports, a named port or `max_ports=`).
    SerialPorts(VirtioSerialConfig),
    /// virtio-rng, with Firecracker's `entropy` `rate_limiter` (unlimited from QEMU's
    /// command line, which has no limit for it).
    Rng(LimiterConfig),
    /// `-device virtio-keyboard-device`: a virtio-input keyboard for QMP's keys.
    Keyboard,
    Vsock(VsockConfig),
    /// Firecracker's hybrid vsock (`PUT /vsock`): AF_VSOCK in the guest, Unix sockets on
    /// the host, served by microvm itself.
    HybridVsock(HybridVsockConfig),
    Fs(FsConfig),
    /// `-fsdev local` + `-device virtio-9p-device` (or `-virtfs`).
    NineP(NinePConfig),
    Balloon(BalloonConfig),
}

/// `-fsdev local,id=,path=,security_model=` + `-device virtio-9p-device,fsdev=,mount_tag=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NinePConfig {
    /// The shared host directory.
    pub path: PathBuf,
    /// What the guest mounts; 1..=NINEP_TAG_LEN bytes.
    pub tag: String,
    /// `readonly=on`: every change is answered EROFS.
    pub read_only: bool,
    /// The `-fsdev`'s id, for messages and the monitor.
    pub id: String,
    /// `security_model=`: whose the files the guest creates are.
    pub security_model: devices::virtio::ninep::SecurityModel,
}

/// The longest 9p mount tag.
pub use devices::virtio::ninep::MAX_TAG_LEN as NINEP_TAG_LEN;

/// `-chardev socket,id=,path=` + `-device vhost-user-fs-device,chardev=,tag=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsConfig {
    /// virtiofsd's socket.
    pub socket: PathBuf,
    /// What the guest mounts; 1..=FS_TAG_LEN bytes.
    pub tag: String,
    pub queue_size: u16,
    pub id: Option<String>,
}

/// The limits of `FsConfig`, the device's.
pub use devices::virtio::vhost::fs::{MAX_QUEUE_SIZE as FS_MAX_QUEUE_SIZE, TAG_LEN as FS_TAG_LEN};

/// `-device vhost-vsock-device,guest-cid=N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsockConfig {
    /// The guest's context id, 3..u32::MAX (checked by the CLI).
    pub cid: u64,
    /// `id=`, for the monitor.
    pub id: Option<String>,
}

/// Firecracker's `PUT /vsock {guest_cid, uds_path}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HybridVsockConfig {
    /// The guest's context id, 3..u32::MAX (the device checks it).
    pub cid: u64,
    /// The host side: host processes connect here (`CONNECT <port>`), and a guest
    /// connecting to port P reaches `<uds_path>_P`.
    pub uds_path: PathBuf,
    /// Firecracker's `vsock_id`.
    pub id: Option<String>,
}

/// `-device virtio-serial-device[,max_ports=N]` with its `virtconsole`s and
/// `virtserialport`s, as QEMU's multiport virtio-serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioSerialConfig {
    /// What the guest reads as max_nr_ports (at least `ports.len()`).
    pub max_ports: u32,
    pub ports: Vec<SerialPortConfig>,
}

/// One port of a virtio-serial-device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialPortConfig {
    pub chardev: ChardevConfig,
    /// `-device ...,id=`: the guest's opening and closing of the port is announced
    /// (QMP VSERPORT_CHANGE) under it.
    pub id: Option<String>,
    /// `virtserialport,name=`: /dev/virtio-ports/NAME in the guest.
    pub name: Option<String>,
    /// A `virtconsole` (the guest's hvcN).
    pub console: bool,
}
/// `-device virtio-balloon-device[,id=][,deflate-on-oom=on][,free-page-reporting=on]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalloonConfig {
    pub id: Option<String>,
    pub options: BalloonOptions,
}

pub use devices::virtio::balloon::BalloonOptions;

/// `-drive id=,file=,format=raw,if=none[,readonly=on][,cache=]` + `-device virtio-blk-device,drive=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockConfig {
    /// The drive id; also the serial number the guest reads with GET_ID
    /// unless `serial` is given.
    pub id: String,
    pub path: PathBuf,
    pub read_only: bool,
    pub cache: CacheMode,
    /// `virtio-blk-device,serial=`: what the guest reads with GET_ID.
    pub serial: Option<String>,
    /// Rate limits (`-drive throttling.*`, Firecracker's `rate_limiter`).
    pub limits: DriveLimits,
    /// How requests are submitted (`-drive aio=`, Firecracker's `io_engine`).
    pub engine: Engine,
    /// `-drive format=,snapshot=,discard=` (Firecracker's drives are raw).
    pub image: ImageOptions,
}

pub use devices::rate_limiter::{BucketConfig, LimiterConfig};
/// QEMU's `cache=` modes; the block device defines what each means.
pub use devices::virtio::block::{CacheMode, DriveLimits, Engine, ImageFormat, ImageOptions};

/// `-netdev TYPE,id=,...` + `-device virtio-net-device,netdev=[,mac=]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub id: String,
    pub backend: NetBackend,
    /// Guest MAC; `None` picks a locally administered one.
    pub mac: Option<[u8; 6]>,
    /// `vhost=on`: the host kernel's vhost_net moves the frames (tap only).
    pub vhost: bool,
    /// Rate limits (Firecracker's `rx_rate_limiter`, `tx_rate_limiter`); none with vhost.
    pub limits: NetLimits,
    /// Firecracker's MMDS served on this interface (`PUT /mmds/config`); not with vhost,
    /// whose frames never pass through the VMM.
    pub mmds: Option<MmdsAttachment>,
}

pub use devices::virtio::net::MmdsAttachment;

/// A NIC's rate limits, each direction its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetLimits {
    /// Frames to the guest.
    pub rx: LimiterConfig,
    /// Frames from the guest.
    pub tx: LimiterConfig,
}

/// Where a virtio-net device's frames go (`-netdev` types; docs/dropin.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetBackend {
    /// `-netdev tap`: an existing (persistent) tap `ifname`, `None` creating one
    /// named by the kernel from `tap%d`; or `fd=N`, an open tap the process
    /// inherited (ifname is then `None`).
    Tap { ifname: Option<String>, fd: Option<i32> },
    /// `-netdev stream`: QEMU's length-prefixed frames on a stream socket;
    /// `server`: listen and wait for one peer before the guest starts.
    Stream { server: bool, addr: SocketAddress },
    /// `-netdev dgram`: one frame per datagram, to `remote`, from `local`.
    Dgram { local: Option<SocketAddress>, remote: SocketAddress },
    /// `-netdev user`: a passt child with these options (the front end
    /// translated QEMU's).
    User { passt_args: Vec<String> },
}

pub use devices::virtio::net::SocketAddress;

/// `-device virtio-serial-device` + `-device virtconsole,chardev=ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub chardev: ChardevConfig,
}

/// `-chardev BACKEND,id=ID,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevConfig {
    pub id: String,
    pub backend: ChardevBackend,
    /// `logfile=PATH[,logappend=on]`: a copy of the output goes there.
    pub logfile: Option<LogFile>,
}

/// A chardev's output log; truncated first unless `append`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub append: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChardevBackend {
    /// Output discarded, no input.
    Null,
    Stdio,
    /// A new pseudo-terminal; its path is printed on stderr.
    Pty,
    /// Output written to a file; no input.
    File {
        path: PathBuf,
        /// `append=on`: keep what the file holds; off (QEMU's default) truncates it first.
        append: bool,
    },
    /// A Unix socket: listen (`server`) or connect. With `wait`, the VM
    /// does not start until a client connects.
    Socket {
        path: PathBuf,
        server: bool,
        wait: bool,
    },
    /// A front end of `VmConfig::muxes[N]`.
    MuxPort(usize),
    /// A TCP socket (`socket,host=H,port=P`), as `Socket` otherwise.
    Tcp {
        host: String,
        port: u16,
        server: bool,
        wait: bool,
    },
}

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
