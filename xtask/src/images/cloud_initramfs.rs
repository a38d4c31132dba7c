//! The initramfs for Debian's cloud kernel with `-M microvm,acpi=on`: the guest initramfs
//! followed by a second archive holding the modules the ACPI scenarios load from the same
//! kernel package, decompressed (busybox insmod cannot read .ko.xz), flat in /lib/modules.
//! Linux unpacks concatenated archives one after the other, so the guest initramfs is
//! reused byte for byte.

use super::cached;
use super::cloud::CloudKernel;
use crate::cpio::Cpio;
use crate::host::{self, KeyHasher, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = "cloud-initramfs-1";

/// In load order (each after what it needs): the virtio-mmio transport (it finds its
/// devices through the DSDT's LNRO0005 entries), the disk, the NIC and what virtio_net
/// needs, the ACPI power button and the event interface busybox acpid reads.
pub const MODULES: &[&str] = &[
    "drivers/virtio/virtio_mmio",
    "drivers/block/virtio_blk",
    "net/core/failover",
    "drivers/net/net_failover",
    "drivers/net/virtio_net",
    "drivers/acpi/button",
    "drivers/input/evdev",
];

/// `<cache>/cloud-initramfs-<key>/initramfs.cpio.gz`
pub fn ensure(cache: &Path, cloud: &CloudKernel, initramfs: &Path) -> Result<PathBuf> {
    let base = host::read(initramfs)?;
    let key = KeyHasher::default()
        .add("recipe", RECIPE)
        .add("cloud", &cloud.version)
        .add("initramfs", &base)
        .add("modules", MODULES.join(","))
        .key();
    let dir = cached(cache, "cloud-initramfs", &key, |staging, out| {
        let cpio = staging.join("modules.cpio");
        let mut archive = Cpio::new(BufWriter::new(File::create(&cpio).map_err(|e| e.to_string())?));
        let io = |e: std::io::Error| format!("writing {}: {e}", cpio.display());
        for d in ["lib", "lib/modules"] {
            archive.dir(d).map_err(io)?;
        }
        for m in MODULES {
            let xz = cloud.modules.join("kernel").join(format!("{m}.ko.xz"));
            let name = m.rsplit('/').next().unwrap_or(m);
            let ko = staging.join(format!("{name}.ko"));
            let file = File::create(&ko).map_err(|e| format!("cannot create {}: {e}", ko.display()))?;
            let status = Command::new("xz").arg("-dc").arg(&xz).stdout(file).status();
            if !status.as_ref().is_ok_and(|s| s.success()) {
                return Err(format!("xz -dc {} failed: {status:?}", xz.display()));
            }
            archive.file_from(&format!("lib/modules/{name}.ko"), 0o644, &ko).map_err(io)?;
        }
        archive.finish().and_then(|mut w| w.flush()).map_err(io)?;
        host::output(Command::new("gzip").args(["-9", "-n"]).arg(&cpio))?;
        let modules = host::read(&staging.join("modules.cpio.gz"))?;
        // Archives start on a 4-byte boundary; the kernel skips the zero padding.
        let mut joined = base.clone();
        joined.resize(base.len().next_multiple_of(4), 0);
        joined.extend_from_slice(&modules);
        host::write(&out.join("initramfs.cpio.gz"), &joined)
    })?;
    Ok(dir.join("initramfs.cpio.gz"))
}
