//! Firecracker's pre-boot configuration → microvm's `VmConfig`: what each field becomes,
//! and a one-line refusal for what microvm does not do (checked when the request arrives,
//! so a client learns at `PUT` time, as with Firecracker's own validation).

use fc_api::mmds::Mmds;
use fc_api::model::CpuTemplate as StaticTemplate;
use fc_api::model::*;
use std::path::PathBuf;
use vmm::api::rate_limits::{drive_limits, limiter};
use vmm::config::{
    BalloonConfig, BlockConfig, CacheMode, DeviceConfig, Engine, HybridVsockConfig, KernelConfig, MemoryBackend,
    MmdsAttachment, NetBackend, NetConfig, NetLimits, RngConfig, SerialConfig, VmConfig,
};
use vmm::vmgenid::VmGenIdConfig;

/// Firecracker's kernel command line when `boot_args` is not given.
pub const DEFAULT_BOOT_ARGS: &str =
    "reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce";

/// The 2 MiB pages of `huge_pages: "2M"`.
const HUGE_PAGE_2M: u64 = 2 << 20;

/// Why a request's configuration cannot be used; the fault message of its 400.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Boot source error: The kernel file cannot be opened: {0}")]
    Kernel(#[source] std::io::Error),
    #[error("Boot source error: The initrd file cannot be opened: {0}")]
    Initrd(#[source] std::io::Error),
    #[error("Drive config error: Unable to open the block device backing file: {0}")]
    DriveFile(#[source] std::io::Error),
    #[error("Drive config error: A root block device already exists!")]
    SecondRoot,
    #[error(
        "Drive config error: path_on_host is required (vhost-user-block `socket` drives are not supported by microvm)."
    )]
    NoDrivePath,
    #[error("Network config error: Invalid MAC address {0}.")]
    Mac(String),
    #[error("Network config error: The guest MAC address {0} is already in use.")]
    MacInUse(String),
    #[error("Machine config error: The number of vCPUs must be greater than 0 and at most {max}.", max = vmm::arch_layout::MAX_VCPUS)]
    VcpuCount,
    #[error("Machine config error: The memory size (MiB) must be greater than 0.")]
    MemorySize,
    #[error("Missing boot source: PUT /boot-source first.")]
    NoBootSource,
    #[error("Vsock config error: guest_cid {0} is reserved (it must be 3 or more, and below 4294967295).")]
    VsockCid(u32),
    #[error("Vsock config error: uds_path is empty.")]
    VsockPathEmpty,
    #[error(
        "Vsock config error: uds_path {0} exists (remove it first, as with Firecracker: the device listens there)."
    )]
    VsockPathExists(String),
    #[error("The list of network interface IDs that allow forwarding MMDS requests is empty.")]
    MmdsNoInterface,
    #[error("The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.")]
    MmdsUnknownInterface,
    #[error("The MMDS IPv4 address is not link local.")]
    MmdsNotLinkLocal,
    /// A custom CPU template's bitmap, number or register that does not parse.
    #[error("Cpu config error: {0}")]
    CpuTemplate(#[source] vmm::cpu_template::TemplateError),
    /// Firecracker's static templates mask the host CPU's own model with AWS instance
    /// types' feature sets; none of microvm's named models (QEMU's) is that, so none is
    /// substituted.
    #[error("Machine config error: cpu_template {0:?} (a static CPU template) is not supported by microvm; describe the CPU with PUT /cpu-config (a custom template) instead.")]
    StaticTemplate(StaticTemplate),
    /// Something in Firecracker's API that microvm does not do; names it.
    #[error("{0} is not supported by microvm.")]
    NotSupported(&'static str),
}

/// `PUT /mmds/config`, with Firecracker's checks: interfaces already configured, a
/// link-local address (169.254.0.0/16).
pub fn check_mmds_config(c: &MmdsConfig, nets: &[NetworkInterface]) -> Result<(), ConfigError> {
    if c.network_interfaces.is_empty() {
        return Err(ConfigError::MmdsNoInterface);
    }
    if !c.network_interfaces.iter().all(|id| nets.iter().any(|n| &n.iface_id == id)) {
        return Err(ConfigError::MmdsUnknownInterface);
    }
    if c.ipv4_address.is_some_and(|ip| !ip.is_link_local()) {
        return Err(ConfigError::MmdsNotLinkLocal);
    }
    Ok(())
}

pub fn check_machine(m: &MachineConfig) -> Result<(), ConfigError> {
    if m.vcpu_count == 0 || m.vcpu_count > vmm::arch_layout::MAX_VCPUS {
        return Err(ConfigError::VcpuCount);
    }
    if m.mem_size_mib == 0 || (m.mem_size_mib as u64).checked_mul(1 << 20).is_none() {
        return Err(ConfigError::MemorySize);
    }
    if m.smt {
        return Err(ConfigError::NotSupported("smt (two hardware threads per core)"));
    }
    if let Some(template) = m.cpu_template.filter(|&t| t != StaticTemplate::None) {
        return Err(ConfigError::StaticTemplate(template));
    }
    if m.huge_pages == HugePages::Transparent {
        return Err(ConfigError::NotSupported("huge_pages \"Transparent\""));
    }
    Ok(())
}

pub fn check_boot_source(b: &BootSource) -> Result<(), ConfigError> {
    std::fs::File::open(&b.kernel_image_path).map_err(ConfigError::Kernel)?;
    if let Some(initrd) = &b.initrd_path {
        std::fs::File::open(initrd).map_err(ConfigError::Initrd)?;
    }
    Ok(())
}

/// A new or replaced drive, against the others (by id).
pub fn check_drive(d: &Drive, others: &[Drive]) -> Result<(), ConfigError> {
    let Some(path) = &d.path_on_host else { return Err(ConfigError::NoDrivePath) };
    if d.socket.is_some() {
        return Err(ConfigError::NotSupported("vhost-user-block (`socket`)"));
    }
    if d.is_root_device && others.iter().any(|o| o.is_root_device && o.drive_id != d.drive_id) {
        return Err(ConfigError::SecondRoot);
    }
    let read_only = d.is_read_only.unwrap_or(false);
    std::fs::OpenOptions::new().read(true).write(!read_only).open(path).map_err(ConfigError::DriveFile)?;
    Ok(())
}

pub fn check_net(n: &NetworkInterface, others: &[NetworkInterface]) -> Result<(), ConfigError> {
    if n.mtu.is_some() {
        return Err(ConfigError::NotSupported("A network interface `mtu`"));
    }
    if let Some(mac) = &n.guest_mac {
        parse_mac(mac)?;
        if others
            .iter()
            .any(|o| o.iface_id != n.iface_id && o.guest_mac.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(mac)))
        {
            return Err(ConfigError::MacInUse(mac.clone()));
        }
    }
    Ok(())
}

pub fn check_balloon(b: &Balloon) -> Result<(), ConfigError> {
    if b.free_page_hinting {
        return Err(ConfigError::NotSupported("Balloon free page hinting"));
    }
    Ok(())
}

/// The CID a guest can take (0-2 are the hypervisor, local and host addresses; u32::MAX
/// is VMADDR_CID_ANY), and a socket path the device can listen on. Firecracker binds the
/// socket at `PUT /vsock`; microvm binds it when it builds the VM and checks here that
/// nothing is in the way, so the client still learns at `PUT` time.
pub fn check_vsock(v: &Vsock) -> Result<(), ConfigError> {
    if v.guest_cid < 3 || v.guest_cid == u32::MAX {
        return Err(ConfigError::VsockCid(v.guest_cid));
    }
    if v.uds_path.is_empty() {
        return Err(ConfigError::VsockPathEmpty);
    }
    if std::fs::symlink_metadata(&v.uds_path).is_ok() {
        return Err(ConfigError::VsockPathExists(v.uds_path.clone()));
    }
    Ok(())
}

/// `AA:BB:CC:DD:EE:FF`.
pub fn parse_mac(text: &str) -> Result<[u8; 6], ConfigError> {
    let bad = || ConfigError::Mac(text.to_owned());
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// Everything accepted before boot, as microvm builds it.
pub struct Parts<'a> {
    pub boot_source: Option<&'a BootSource>,
    pub machine: &'a MachineConfig,
    pub drives: &'a [Drive],
    pub nets: &'a [NetworkInterface],
    pub balloon: Option<&'a Balloon>,
    pub entropy: Option<&'a EntropyDevice>,
    pub vsock: Option<&'a Vsock>,
    /// `PUT /mmds/config` and the store its interfaces serve.
    pub mmds: Option<(&'a MmdsConfig, &'a Mmds)>,
    /// `PUT /cpu-config`'s template, applied to every vCPU after microvm's CPUID.
    pub cpu_template: Option<&'a vmm::cpu_template::CpuTemplate>,
    pub sandbox: bool,
    pub id: &'a str,
}

/// The VM Firecracker would build: its 16550 on stdio, its i8042 (for `SendCtrlAltDel`
/// and `reboot=k`), no ACPI, drives with the root device first (so it is /dev/vda, as
/// Firecracker attaches it), then network interfaces, balloon, entropy and vsock.
pub fn build(parts: &Parts) -> Result<VmConfig, ConfigError> {
    let boot = parts.boot_source.ok_or(ConfigError::NoBootSource)?;
    let mut cmdline = boot.boot_args.clone().unwrap_or_else(|| DEFAULT_BOOT_ARGS.to_owned());
    let mut drives: Vec<&Drive> = parts.drives.iter().filter(|d| d.is_root_device).collect();
    drives.extend(parts.drives.iter().filter(|d| !d.is_root_device));
    if let Some(root) = drives.first().filter(|d| d.is_root_device) {
        let device = match &root.partuuid {
            Some(uuid) => format!("PARTUUID={uuid}"),
            None => "/dev/vda".to_owned(),
        };
        let mode = if root.is_read_only.unwrap_or(false) { "ro" } else { "rw" };
        cmdline.push_str(&format!(" root={device} {mode}"));
    }
    let kernel = KernelConfig {
        path: PathBuf::from(&boot.kernel_image_path),
        cmdline,
        initrd: boot.initrd_path.as_ref().map(PathBuf::from),
    };
    let mut config = VmConfig::new(kernel);
    config.vcpu_count = parts.machine.vcpu_count;
    config.cpu.template = parts.cpu_template.cloned().unwrap_or_default();
    config.mem_size = (parts.machine.mem_size_mib as u64) << 20;
    config.track_dirty_pages = parts.machine.track_dirty_pages;
    if parts.machine.huge_pages == HugePages::Hugetlbfs2M {
        config.memory.backend = MemoryBackend::Memfd { hugetlb: true, hugepage_size: Some(HUGE_PAGE_2M) };
    }
    config.serial = Some(SerialConfig::Stdio);
    config.i8042 = true;
    // As Firecracker 1.8 and later on x86: hardware-reduced ACPI tables (the DSDT lists
    // the virtio devices) *and* the devices on the kernel command line with an MP table,
    // so kernels built with or without ACPI find them; and a VM Generation ID, always on
    // as in Firecracker, so every restore of a snapshot makes the guest kernel reseed.
    config.machine.acpi = true;
    config.machine.auto_kernel_cmdline = true;
    config.vmgenid = Some(VmGenIdConfig { guid: None });
    config.sandbox = parts.sandbox;
    config.name = Some(parts.id.to_owned());
    // Each device is its kind's config with its defaults (`vmm::device_kinds`, what
    // `-device` gives) and what Firecracker's JSON says over them; where Firecracker's
    // behaviour is not the kind's default, the comment says so.
    for drive in drives {
        let path = drive.path_on_host.clone().ok_or(ConfigError::NoDrivePath)?;
        config.devices.push(DeviceConfig::Block(BlockConfig {
            read_only: drive.is_read_only.unwrap_or(false),
            // Firecracker's default is Unsafe (flushes ignored), not the kind's (QEMU's)
            // writeback.
            cache: match drive.cache_type {
                CacheType::Unsafe => CacheMode::Unsafe,
                CacheType::Writeback => CacheMode::Writeback,
            },
            limits: drive_limits(&drive.rate_limiter),
            // Sync is both Firecracker's default and the kind's; Async is Firecracker's
            // io_uring engine. The rest is the kind's default and Firecracker's only
            // choice: a raw file, one queue, served on the one device thread.
            engine: match drive.io_engine.unwrap_or_default() {
                IoEngine::Sync => Engine::Sync,
                IoEngine::Async => Engine::IoUring,
            },
            ..BlockConfig::new(drive.drive_id.clone(), path)
        }));
    }
    for net in parts.nets {
        // The kind's default is Firecracker's only choice: one queue pair, no vhost-net.
        let tap = NetBackend::Tap { ifname: Some(net.host_dev_name.clone()), fd: None };
        config.devices.push(DeviceConfig::Net(NetConfig {
            mac: net.guest_mac.as_deref().map(parse_mac).transpose()?,
            limits: NetLimits { rx: limiter(&net.rx_rate_limiter), tx: limiter(&net.tx_rate_limiter) },
            mmds: parts.mmds.filter(|(c, _)| c.network_interfaces.contains(&net.iface_id)).map(|(c, mmds)| {
                MmdsAttachment { mmds: mmds.clone(), ipv4: c.ipv4_address.unwrap_or(mmds::DEFAULT_IPV4) }
            }),
            ..NetConfig::new(net.iface_id.clone(), tap)
        }));
    }
    if let Some(balloon) = parts.balloon {
        // `amount_mib` and the statistics are the API's (`vmm::api`), not the device's.
        let mut device = BalloonConfig { id: Some("balloon0".into()), ..Default::default() };
        device.options.deflate_on_oom = balloon.deflate_on_oom;
        device.options.free_page_reporting = balloon.free_page_reporting;
        config.devices.push(DeviceConfig::Balloon(device));
    }
    if let Some(entropy) = parts.entropy {
        config.devices.push(DeviceConfig::Rng(RngConfig::limited(limiter(&entropy.rate_limiter))));
    }
    if let Some(vsock) = parts.vsock {
        config.devices.push(DeviceConfig::HybridVsock(HybridVsockConfig {
            id: vsock.vsock_id.clone(),
            ..HybridVsockConfig::new(u64::from(vsock.guest_cid), &vsock.uds_path)
        }));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm::config::{BucketConfig, DriveLimits, LimiterConfig};

    /// A boot source and machine and nothing else: each test sets what it configures.
    fn parts<'a>(boot: &'a BootSource, machine: &'a MachineConfig) -> Parts<'a> {
        Parts {
            boot_source: Some(boot),
            machine,
            drives: &[],
            nets: &[],
            balloon: None,
            entropy: None,
            vsock: None,
            mmds: None,
            cpu_template: None,
            sandbox: true,
            id: "vm1",
        }
    }

    #[test]
    fn getting_started_config_maps_onto_vm_config() {
        let boot = BootSource {
            kernel_image_path: "vmlinux".into(),
            initrd_path: None,
            boot_args: Some("console=ttyS0".into()),
        };
        let machine = MachineConfig { vcpu_count: 2, mem_size_mib: 1024, ..Default::default() };
        let data = Drive {
            drive_id: "data".into(),
            path_on_host: Some("d.img".into()),
            io_engine: Some(IoEngine::Async),
            ..Default::default()
        };
        let root = Drive {
            drive_id: "rootfs".into(),
            path_on_host: Some("rootfs.ext4".into()),
            is_root_device: true,
            ..Default::default()
        };
        let net = NetworkInterface {
            iface_id: "eth0".into(),
            host_dev_name: "tap0".into(),
            guest_mac: Some("AA:FC:00:00:00:01".into()),
            ..Default::default()
        };
        let drives = [data, root];
        let nets = [net];
        let vsock = Vsock { vsock_id: Some("vsock0".into()), guest_cid: 3, uds_path: "/tmp/v.sock".into() };
        let parts = Parts {
            drives: &drives,
            nets: &nets,
            entropy: Some(&EntropyDevice::default()),
            vsock: Some(&vsock),
            ..parts(&boot, &machine)
        };
        let config = build(&parts).unwrap();
        assert_eq!(config.kernel.cmdline, "console=ttyS0 root=/dev/vda rw");
        assert_eq!((config.vcpu_count, config.mem_size), (2, 1 << 30));
        assert_eq!(config.serial, Some(SerialConfig::Stdio));
        assert!(config.i8042);
        assert!(config.machine.acpi && config.machine.auto_kernel_cmdline, "ACPI and the command line's devices");
        assert_eq!(config.vmgenid, Some(VmGenIdConfig { guid: None }), "a new generation ID at every restore");
        assert!(
            matches!(&config.devices[0], DeviceConfig::Block(b) if b.id == "rootfs" && b.cache == CacheMode::Unsafe && b.engine == Engine::Sync)
        );
        // Firecracker's Async engine is its io_uring one.
        assert!(matches!(&config.devices[1], DeviceConfig::Block(b) if b.id == "data" && b.engine == Engine::IoUring));
        assert!(matches!(&config.devices[2], DeviceConfig::Net(n) if n.mac == Some([0xaa, 0xfc, 0, 0, 0, 1])));
        assert_eq!(config.devices[3], DeviceConfig::Rng(RngConfig::default()));
        assert_eq!(
            config.devices[4],
            DeviceConfig::HybridVsock(HybridVsockConfig {
                id: Some("vsock0".into()),
                ..HybridVsockConfig::new(3, "/tmp/v.sock")
            })
        );
    }

    /// Each device Firecracker's JSON configures is its kind's config with the kind's own
    /// defaults wherever Firecracker says nothing: exactly what the QEMU front end's
    /// `-device` gives for the same settings (queue count, engine, image, iothread, queue
    /// pairs, vhost...), so a property added to a kind reaches both front ends alike.
    #[test]
    fn kinds_defaults_reach_firecracker_devices() {
        let argv = [
            "-kernel",
            "vmlinux",
            // Firecracker's cache_type defaults to Unsafe: the one setting said here.
            "-drive",
            "id=rootfs,file=rootfs.ext4,if=none,cache=unsafe",
            "-device",
            "virtio-blk-device,drive=rootfs",
            "-netdev",
            "tap,id=eth0,ifname=tap0",
            "-device",
            "virtio-net-device,netdev=eth0",
            "-device",
            "virtio-balloon-device,id=balloon0,deflate-on-oom=on",
            "-device",
            "virtio-rng-device",
            "-device",
            "hybrid-vsock-device,guest-cid=3,uds-path=/tmp/v.sock,id=vsock0",
        ];
        let crate::args::Command::Run(qemu) = crate::args::parse(argv.map(String::from)).unwrap() else {
            panic!("not a run")
        };
        let boot = BootSource { kernel_image_path: "vmlinux".into(), ..Default::default() };
        let machine = MachineConfig { vcpu_count: 1, mem_size_mib: 128, ..Default::default() };
        let root = Drive {
            drive_id: "rootfs".into(),
            path_on_host: Some("rootfs.ext4".into()),
            is_root_device: true,
            ..Default::default()
        };
        let net = NetworkInterface { iface_id: "eth0".into(), host_dev_name: "tap0".into(), ..Default::default() };
        let balloon = Balloon { deflate_on_oom: true, ..Default::default() };
        let vsock = Vsock { vsock_id: Some("vsock0".into()), guest_cid: 3, uds_path: "/tmp/v.sock".into() };
        let parts = Parts {
            drives: &[root],
            nets: &[net],
            balloon: Some(&balloon),
            entropy: Some(&EntropyDevice::default()),
            vsock: Some(&vsock),
            ..parts(&boot, &machine)
        };
        let firecracker = build(&parts).unwrap();
        assert_eq!(firecracker.devices, qemu.vm.devices);
        let DeviceConfig::Block(drive) = &firecracker.devices[0] else { panic!("{:?}", firecracker.devices) };
        assert_eq!((drive.num_queues, drive.engine, &drive.iothread), (None, Engine::Sync, &None), "one queue, sync");
        let DeviceConfig::Net(nic) = &firecracker.devices[1] else { panic!("{:?}", firecracker.devices) };
        assert_eq!((nic.queues, nic.mq, nic.vhost), (1, false, false), "one queue pair, no vhost-net");
    }

    #[test]
    fn vsock_refusals() {
        let v = |cid, path: &str| Vsock { vsock_id: None, guest_cid: cid, uds_path: path.into() };
        for cid in [0, 1, 2, u32::MAX] {
            assert!(matches!(check_vsock(&v(cid, "/nonexistent/v.sock")), Err(ConfigError::VsockCid(c)) if c == cid));
        }
        assert!(check_vsock(&v(3, "/nonexistent/v.sock")).is_ok());
        assert!(matches!(check_vsock(&v(3, "")), Err(ConfigError::VsockPathEmpty)));
        assert!(matches!(check_vsock(&v(3, "/")), Err(ConfigError::VsockPathExists(_))));
    }

    #[test]
    fn refusals_name_what_is_missing() {
        let smt = MachineConfig { smt: true, ..Default::default() };
        assert_eq!(
            check_machine(&smt).unwrap_err().to_string(),
            "smt (two hardware threads per core) is not supported by microvm."
        );
        assert!(matches!(
            check_machine(&MachineConfig { vcpu_count: 0, ..Default::default() }),
            Err(ConfigError::VcpuCount)
        ));
        let t2 = MachineConfig { cpu_template: Some(StaticTemplate::T2), ..Default::default() };
        assert!(check_machine(&t2).unwrap_err().to_string().contains("cpu_template T2 (a static CPU template)"));
        let none = MachineConfig { cpu_template: Some(StaticTemplate::None), ..Default::default() };
        assert!(check_machine(&none).is_ok());
        assert!(matches!(parse_mac("AA:FC:00:00:00"), Err(ConfigError::Mac(_))));
        assert!(matches!(parse_mac("AA:FC:00:00:00:01:02"), Err(ConfigError::Mac(_))));
    }

    #[test]
    fn rate_limiters_reach_drives_nics_and_the_entropy_device() {
        let boot = BootSource { kernel_image_path: "vmlinux".into(), ..Default::default() };
        let machine = MachineConfig { vcpu_count: 1, mem_size_mib: 128, ..Default::default() };
        let bytes = Some(RateLimiter {
            bandwidth: Some(TokenBucket { size: 1_000_000, one_time_burst: None, refill_time: 100 }),
            ops: None,
        });
        let ops = Some(RateLimiter {
            bandwidth: None,
            ops: Some(TokenBucket { size: 10, one_time_burst: Some(20), refill_time: 1000 }),
        });
        let drives = [Drive {
            drive_id: "d".into(),
            path_on_host: Some("d.img".into()),
            rate_limiter: bytes,
            ..Default::default()
        }];
        let nets = [NetworkInterface {
            iface_id: "eth0".into(),
            host_dev_name: "tap0".into(),
            rx_rate_limiter: ops,
            tx_rate_limiter: bytes,
            ..Default::default()
        }];
        assert!(check_net(&nets[0], &[]).is_ok());
        let entropy = EntropyDevice { rate_limiter: ops };
        let parts = Parts { drives: &drives, nets: &nets, entropy: Some(&entropy), ..parts(&boot, &machine) };
        let config = build(&parts).unwrap();
        let one_mb = LimiterConfig {
            bandwidth: Some(BucketConfig { size: 1_000_000, one_time_burst: 0, refill_time_ms: 100 }),
            ops: None,
        };
        let ten_ops = LimiterConfig {
            bandwidth: None,
            ops: Some(BucketConfig { size: 10, one_time_burst: 20, refill_time_ms: 1000 }),
        };
        let DeviceConfig::Block(b) = &config.devices[0] else { panic!("{:?}", config.devices) };
        assert_eq!(b.limits, DriveLimits { total: one_mb, ..Default::default() });
        let DeviceConfig::Net(n) = &config.devices[1] else { panic!("{:?}", config.devices) };
        assert_eq!(n.limits, NetLimits { rx: ten_ops, tx: one_mb });
        assert_eq!(config.devices[2], DeviceConfig::Rng(RngConfig::limited(ten_ops)));
    }
}
