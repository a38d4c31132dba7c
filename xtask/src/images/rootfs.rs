//! The ext4 root filesystem of the virtio device scenarios: busybox-static, one symlink
//! per applet, guest/rootfs/init as /sbin/init, guest/rootfs/tests/* in /tests, and the
//! static test programs vsockio and netqueues (guest/tools) in /bin.
//! Built with `mkfs.ext4 -d DIR` (e2fsprogs), which needs no root and no loop device.
//! Scenarios boot it with `root=/dev/vda` and no initramfs, so the minimal kernel's
//! built-in virtio-blk and ext4 mount it. They must copy it first: the guest writes it.

use super::{cached, compile_static};
use crate::host::{self, KeyHasher, Result};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = "rootfs-2";
/// Room for the 4 MiB the block scenario writes, and then some.
const SIZE: &str = "32M";

/// `<cache>/rootfs-<key>/rootfs.ext4`
pub fn ensure(cache: &Path) -> Result<PathBuf> {
    let src = host::repo_root().join("guest/rootfs");
    let init = host::read(&src.join("init"))?;
    let mut tests = Vec::new();
    for e in fs::read_dir(src.join("tests")).map_err(|e| format!("guest/rootfs/tests: {e}"))?.flatten() {
        tests.push((e.file_name().to_string_lossy().to_string(), host::read(&e.path())?));
    }
    tests.sort();
    let busybox = host::dpkg_version("busybox-static").ok_or("busybox-static is not installed")?;
    let mke2fs = host::dpkg_version("e2fsprogs").ok_or("e2fsprogs is not installed")?;
    let vsockio = ensure_vsockio(cache)?;
    let netqueues = ensure_tool(cache, "netqueues")?;
    let mut key = KeyHasher::default();
    key.add("recipe", RECIPE).add("init", &init).add("busybox", &busybox).add("e2fsprogs", &mke2fs);
    key.add("vsockio", &host::read(&vsockio)?);
    key.add("netqueues", &host::read(&netqueues)?);
    for (name, text) in &tests {
        key.add(name, text);
    }
    let dir = cached(cache, "rootfs", &key.key(), |staging, out| {
        let root = staging.join("root");
        let io = |e: std::io::Error| format!("staging rootfs in {}: {e}", root.display());
        for d in ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "mnt", "tests"] {
            fs::create_dir_all(root.join(d)).map_err(io)?;
        }
        fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(io)?;
        for applet in host::output(Command::new("/bin/busybox").arg("--list-full"))?.lines() {
            let applet = applet.trim().trim_start_matches('/');
            if !applet.is_empty() && applet != "bin/busybox" && applet != "sbin/init" {
                symlink("/bin/busybox", root.join(applet)).map_err(io)?;
            }
        }
        let exe = |path: &Path, data: &[u8]| -> Result<()> {
            host::write(path, data)?;
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(io)
        };
        exe(&root.join("sbin/init"), &init)?;
        exe(&root.join("bin/vsockio"), &host::read(&vsockio)?)?;
        // The multiqueue scenario's ETHTOOL_SCHANNELS and per-queue counters.
        exe(&root.join("bin/netqueues"), &host::read(&netqueues)?)?;
        for (name, text) in &tests {
            exe(&root.join("tests").join(name), text)?;
        }
        // -E root_owner: files belong to root in the image whoever builds it.
        let image = out.join("rootfs.ext4");
        host::output(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "microvm-root", "-E", "root_owner=0:0", "-d"])
                .arg(&root)
                .arg(&image)
                .arg(SIZE),
        )?;
        Ok(())
    })?;
    Ok(dir.join("rootfs.ext4"))
}

/// `<cache>/vsockio-<key>/vsockio`: guest/tools/vsockio.c, static: both ends of the
/// vhost-vsock scenario (in the rootfs as /bin/vsockio, in the rig as $VSOCKIO).
pub fn ensure_vsockio(cache: &Path) -> Result<PathBuf> {
    ensure_tool(cache, "vsockio")
}

/// `<cache>/unixcat-<key>/unixcat`: guest/tools/unixcat.c, static, for scenarios that
/// talk to a Unix-socket chardev inside the rig (busybox nc has no Unix sockets).
pub fn ensure_unixcat(cache: &Path) -> Result<PathBuf> {
    ensure_tool(cache, "unixcat")
}

/// `<cache>/dnsone-<key>/dnsone`: guest/tools/dnsone.c, static, the one-name DNS
/// server the -netdev user scenario runs in the rig (busybox-static has no dnsd).
pub fn ensure_dnsone(cache: &Path) -> Result<PathBuf> {
    ensure_tool(cache, "dnsone")
}

/// `<cache>/NAME-<key>/NAME`: guest/tools/NAME.c compiled static, cached on its source
/// and the C library's version.
fn ensure_tool(cache: &Path, name: &str) -> Result<PathBuf> {
    let src = host::repo_root().join(format!("guest/tools/{name}.c"));
    let text = host::read(&src)?;
    let libc = host::dpkg_version("libc6-dev").unwrap_or_default();
    let key = KeyHasher::default().add("source", &text).add("libc6-dev", &libc).key();
    let dir = cached(cache, name, &key, |_, out| compile_static(&src, &out.join(name)))?;
    Ok(dir.join(name))
}
