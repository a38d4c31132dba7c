//! Guest images, built once and cached under `${MICROVM_CACHE_DIR:-$HOME/.cache/microvm}`.
//!
//! Each image lives in `<cache>/<name>-<key>/`, where the key hashes everything the image
//! is made from. A directory of that name exists only once the image is complete: it is
//! built in `<cache>/tmp/` and renamed into place, so an interrupted build is never
//! mistaken for a finished one and a second call is a no-op.

pub mod bzimage;
pub mod cloud;
pub mod cloud_initramfs;
pub mod fio;
pub mod initramfs;
pub mod kernel;
pub mod rootfs;
pub mod virtiofsd;

use crate::host::{self, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything the scenarios boot.
#[derive(Clone, Debug)]
pub struct Images {
    pub kernel: kernel::MinimalKernel,
    pub initramfs: PathBuf,
    pub cloud: cloud::CloudKernel,
    /// The guest initramfs plus the cloud kernel's virtio-mmio, virtio-blk, virtio-net,
    /// ACPI button and evdev modules, for `acpi=on` scenarios.
    pub cloud_initramfs: PathBuf,
    /// ext4 root disk of the virtio device scenarios.
    pub rootfs: PathBuf,
    /// static Unix-socket client (guest/tools/unixcat.c) for chardev scenarios
    pub unixcat: PathBuf,
    /// static AF_VSOCK test program (guest/tools/vsockio.c), also inside the rootfs
    pub vsockio: PathBuf,
    /// static one-name DNS server (guest/tools/dnsone.c) for the -netdev user scenario
    pub dnsone: PathBuf,
}

impl Images {
    /// Builds what is missing (first time: ~4 min, mostly the kernel) and returns paths.
    pub fn ensure() -> Result<Images> {
        host::ensure_packages()?;
        let cache = host::cache_dir()?;
        let initramfs = initramfs::ensure(&cache)?;
        let cloud = cloud::ensure(&cache)?;
        Ok(Images {
            kernel: kernel::ensure(&cache)?,
            cloud_initramfs: cloud_initramfs::ensure(&cache, &cloud, &initramfs)?,
            initramfs,
            cloud,
            rootfs: rootfs::ensure(&cache)?,
            unixcat: rootfs::ensure_unixcat(&cache)?,
            vsockio: rootfs::ensure_vsockio(&cache)?,
            dnsone: rootfs::ensure_dnsone(&cache)?,
        })
    }

    pub fn print(&self) {
        let (k, c) = (&self.kernel, &self.cloud);
        let pvh = |e: Option<u64>| e.map_or("no PVH note".to_string(), |e| format!("PVH entry {e:#x}"));
        let rows = [
            (format!("minimal kernel, ELF ({})", pvh(Some(k.pvh_entry))), &k.vmlinux),
            ("minimal kernel, bzImage".to_string(), &k.bzimage),
            ("guest initramfs".to_string(), &self.initramfs),
            ("guest initramfs + cloud kernel modules".to_string(), &self.cloud_initramfs),
            ("guest rootfs (ext4)".to_string(), &self.rootfs),
            ("cloud kernel, bzImage".to_string(), &c.vmlinuz),
            (format!("cloud kernel, ELF ({})", pvh(c.pvh_entry)), &c.vmlinux),
            ("cloud kernel modules".to_string(), &c.modules),
        ];
        for (what, path) in rows {
            println!("{what:<42} {}", path.display());
        }
        println!("{:<42} {}", "cloud kernel package", c.version);
    }
}

/// Returns `<cache>/<name>-<key>`, first calling `build(staging, out)` if it does not exist.
/// `staging` is a scratch directory (kept on failure, for its logs); `out` becomes the
/// cached directory on success.
pub(crate) fn cached(
    cache: &Path,
    name: &str,
    key: &str,
    build: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let dest = cache.join(format!("{name}-{key}"));
    if dest.is_dir() {
        return Ok(dest);
    }
    let tmp = cache.join("tmp");
    host::mkdir(&tmp)?;
    remove_stale(&tmp, &format!("{name}-{key}."));
    let staging = tmp.join(format!("{name}-{key}.{}", std::process::id()));
    let out = staging.join("out");
    let _ = fs::remove_dir_all(&staging);
    host::mkdir(&out)?;
    build(&staging, &out)?;
    if let Err(e) = fs::rename(&out, &dest) {
        // Another process may have finished the same image meanwhile: that one is as good.
        if !dest.is_dir() {
            return Err(format!("cannot move {} to {}: {e}", out.display(), dest.display()));
        }
    }
    let _ = fs::remove_dir_all(&staging);
    Ok(dest)
}

/// Compiles one C file into a static program: neither the guests nor the rig have a libc.
pub fn compile_static(src: &Path, bin: &Path) -> Result<()> {
    host::output(Command::new("cc").args(["-static", "-O2", "-Wall", "-o"]).arg(bin).arg(src)).map(drop)
}

/// Removes scratch directories left by earlier builds whose process is gone.
fn remove_stale(tmp: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Finds the single file in `dir` whose name starts with `prefix`.
pub(crate) fn find_one(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        n => Err(format!("expected one {prefix}* in {}, found {n}", dir.display())),
    }
}
