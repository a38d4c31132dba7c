//! Debian's stock cloud kernel: a real-world guest (bzImage and the ELF inside it) and the
//! kernel of the nested rig (its kvm/kvm-amd modules give the rig a real /dev/kvm).
//!
//! The package is fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
//! the cache, never installed: the host's /boot and module tree stay untouched.

use super::{bzimage, cached, find_one};
use crate::elf::Elf;
use crate::host::{self, KeyHasher, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian 12's meta-package for the 6.12 cloud kernel (plain `linux-image-cloud-amd64` is
/// still 6.1 on bookworm; 6.12 matches the minimal guest and the rig measurements).
/// MICROVM_CLOUD_META overrides it.
const DEFAULT_META: &str = "linux-image-6.12-cloud-amd64";
const RECIPE: &str = "cloud-1";
/// Modules the rig loads, in load order (kvm needs irqbypass; tun for network scenarios;
/// vhost_vsock and vhost_net, with what they depend on, for the vhost devices).
pub const RIG_MODULES: &[&str] = &[
    "virt/lib/irqbypass",
    "arch/x86/kvm/kvm",
    "arch/x86/kvm/kvm-amd",
    "drivers/net/tun",
    "drivers/vhost/vhost_iotlb",
    "drivers/vhost/vhost",
    "net/vmw_vsock/vsock",
    "net/vmw_vsock/vmw_vsock_virtio_transport_common",
    "drivers/vhost/vhost_vsock",
    "drivers/net/tap",
    "drivers/vhost/vhost_net",
];

#[derive(Clone, Debug)]
pub struct CloudKernel {
    pub dir: PathBuf,
    /// e.g. "linux-image-6.12.117+deb12-cloud-amd64 6.12.117-1~deb12u1"
    pub version: String,
    pub vmlinuz: PathBuf,
    pub vmlinux: PathBuf,
    /// lib/modules/<release> of the package, untouched (.ko.xz)
    pub modules: PathBuf,
    /// RIG_MODULES, decompressed (busybox insmod cannot read .ko.xz)
    pub rig_modules: Vec<PathBuf>,
    pub pvh_entry: Option<u64>,
}

pub fn ensure(cache: &Path) -> Result<CloudKernel> {
    let (pkg, version) = resolve()?;
    let key = KeyHasher::default().add("recipe", RECIPE).add("pkg", &pkg).add("version", &version).key();
    let dir = cached(cache, "cloud", &key, |staging, out| fetch(staging, out, &pkg))?;
    let vmlinux = dir.join("vmlinux");
    let data = host::read(&vmlinux)?;
    let pvh_entry = Elf::parse(&data).map_err(|e| format!("{}: {e}", vmlinux.display()))?.pvh_entry();
    // A cache entry made before a module joined RIG_MODULES: the package's modules are
    // all there, so decompress the newcomer instead of fetching the package again.
    for m in RIG_MODULES {
        let ko = dir.join("rig-modules").join(format!("{}.ko", basename(m)));
        if !ko.exists() {
            decompress_module(&dir.join("modules"), m, &ko)?;
        }
    }
    Ok(CloudKernel {
        version: format!("{pkg} {version}"),
        vmlinuz: dir.join("vmlinuz"),
        modules: dir.join("modules"),
        rig_modules: RIG_MODULES.iter().map(|m| dir.join("rig-modules").join(format!("{}.ko", basename(m)))).collect(),
        vmlinux,
        pvh_entry,
        dir,
    })
}

/// lib/modules/<release>/kernel/`m`.ko.xz -> `ko` (busybox insmod cannot read .ko.xz),
/// through a temporary file so that an interrupted run leaves no truncated module.
fn decompress_module(modules: &Path, m: &str, ko: &Path) -> Result<()> {
    let xz = modules.join("kernel").join(format!("{m}.ko.xz"));
    let tmp = ko.with_extension("ko.part");
    let file = fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let status = Command::new("xz").arg("-dc").arg(&xz).stdout(file).status();
    if !status.as_ref().is_ok_and(|s| s.success()) {
        return Err(format!("xz -dc {} failed: {status:?}", xz.display()));
    }
    fs::rename(&tmp, ko).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// The concrete kernel package the meta-package depends on, and its version.
fn resolve() -> Result<(String, String)> {
    let meta = std::env::var("MICROVM_CLOUD_META").unwrap_or_else(|_| DEFAULT_META.into());
    let lookup = || -> Option<(String, String)> {
        let deps = host::output(Command::new("apt-cache").args(["depends", "--important", &meta])).ok()?;
        let pkg = deps.lines().find_map(|l| l.trim().strip_prefix("Depends: "))?.trim().to_string();
        let show = host::output(Command::new("apt-cache").args(["show", "--no-all-versions", &pkg])).ok()?;
        let version = show.lines().find_map(|l| l.strip_prefix("Version: "))?.trim().to_string();
        Some((pkg, version))
    };
    if let Some(found) = lookup() {
        return Ok(found);
    }
    // A fresh machine may have no package lists yet.
    if host::is_root() {
        host::run_logged(Command::new("apt-get").arg("update"), &host::logs_dir()?.join("apt.log"), "apt-get update")?;
        if let Some(found) = lookup() {
            return Ok(found);
        }
    }
    Err(format!("apt knows no package {meta} (run apt-get update as root?)"))
}

fn fetch(staging: &Path, out: &Path, pkg: &str) -> Result<()> {
    let log = staging.join("fetch.log");
    eprintln!("xtask: fetching Debian's {pkg}; log: {}", log.display());
    let download = || {
        host::run_logged(
            // The sandbox user _apt cannot write to the cache dir (e.g. under /root): the
            // download is of a signed-index-verified .deb either way.
            Command::new("apt-get").current_dir(staging).args(["-o", "APT::Sandbox::User=root", "download", pkg]),
            &log,
            "apt-get download",
        )
    };
    if download().is_err() {
        // Stale lists name a version the mirror no longer has: refresh once.
        if !host::is_root() {
            return Err(format!("apt-get download {pkg} failed; log: {}", log.display()));
        }
        host::run_logged(Command::new("apt-get").arg("update"), &log, "apt-get update")?;
        download()?;
    }
    let deb = find_one(staging, pkg)?;
    let root = staging.join("root");
    host::run_logged(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root), &log, "dpkg-deb -x")?;

    let vmlinuz = find_one(&root.join("boot"), "vmlinuz-")?;
    let release = vmlinuz.file_name().unwrap().to_string_lossy()["vmlinuz-".len()..].to_string();
    let image = host::read(&vmlinuz)?;
    let vmlinux = bzimage::extract_vmlinux(&image).map_err(|e| format!("{}: {e}", vmlinuz.display()))?;
    Elf::parse(&vmlinux)?;
    host::write(&out.join("vmlinuz"), &image)?;
    host::write(&out.join("vmlinux"), &vmlinux)?;
    fs::copy(root.join("boot").join(format!("config-{release}")), out.join("config")).map_err(|e| e.to_string())?;

    let modules = root.join("lib/modules").join(&release);
    let rig = out.join("rig-modules");
    host::mkdir(&rig)?;
    for m in RIG_MODULES {
        decompress_module(&modules, m, &rig.join(format!("{}.ko", basename(m))))?;
    }
    fs::rename(&modules, out.join("modules")).map_err(|e| format!("moving modules: {e}"))?;
    host::write(&out.join("package"), format!("{pkg}\n{release}\n"))?;
    Ok(())
}
