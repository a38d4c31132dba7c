//! The guest initramfs: busybox-static, guest/initramfs/init and the scripts of
//! guest/initramfs/tests/ (in /tests, for `microvm.run=`), as a gzip'd newc cpio.
//!
//! The same busybox userland goes into the rig's initramfs (rig.rs), so the archive
//! skeleton lives here as `busybox_skeleton`.

use super::{cached, compile_static};
use crate::cpio::Cpio;
use crate::elf::Elf;
use crate::host::{self, KeyHasher, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const BUSYBOX: &str = "/bin/busybox";
const RECIPE: &str = "initramfs-1";

pub fn init_script() -> PathBuf {
    host::repo_root().join("guest/initramfs/init")
}

fn tests_dir() -> PathBuf {
    host::repo_root().join("guest/initramfs/tests")
}

/// guest/initramfs/tests/*, by name: scripts as they are, `NAME.c` as the source of a
/// static program `NAME` (what the key hashes; `build` compiles it in `scratch`).
fn test_files() -> Result<Vec<(String, Vec<u8>)>> {
    let dir = tests_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        files.push((entry.file_name().to_string_lossy().into_owned(), host::read(&entry.path())?));
    }
    files.sort();
    Ok(files)
}

/// The file as it goes into /tests: C sources compiled (static, the guest has no libc).
fn build(name: &str, data: &[u8], scratch: &Path) -> Result<(String, Vec<u8>)> {
    let Some(program) = name.strip_suffix(".c") else {
        return Ok((name.to_string(), data.to_vec()));
    };
    let bin = scratch.join(program);
    compile_static(&tests_dir().join(name), &bin)?;
    Ok((program.to_string(), host::read(&bin)?))
}

/// `<cache>/initramfs-<key>/initramfs.cpio.gz`
pub fn ensure(cache: &Path) -> Result<PathBuf> {
    let init = host::read(&init_script())?;
    let busybox = host::dpkg_version("busybox-static").ok_or("busybox-static is not installed")?;
    let tests = test_files()?;
    let libc = host::dpkg_version("libc6-dev").unwrap_or_default();
    let mut key = KeyHasher::default();
    key.add("recipe", RECIPE).add("init", &init).add("busybox", &busybox).add("libc6-dev", &libc);
    for (name, data) in &tests {
        key.add(name, data);
    }
    let key = key.key();
    let dir = cached(cache, "initramfs", &key, |staging, out| {
        let cpio = out.join("initramfs.cpio");
        let mut archive = Cpio::new(BufWriter::new(File::create(&cpio).map_err(|e| e.to_string())?));
        busybox_skeleton(&mut archive)?;
        archive.file("init", 0o755, &init).map_err(|e| e.to_string())?;
        archive.dir("tests").map_err(|e| e.to_string())?;
        for (name, data) in &tests {
            let (name, data) = build(name, data, staging)?;
            archive.file(&format!("tests/{name}"), 0o755, &data).map_err(|e| e.to_string())?;
        }
        archive.finish().and_then(|mut w| w.flush()).map_err(|e| format!("writing {}: {e}", cpio.display()))?;
        // -n: no name or timestamp in the gzip header, so equal inputs give equal bytes.
        host::output(Command::new("gzip").args(["-9", "-n"]).arg(&cpio))?;
        Ok(())
    })?;
    Ok(dir.join("initramfs.cpio.gz"))
}

/// Directories, /dev/console, busybox and a symlink per applet: enough for an /init script.
pub fn busybox_skeleton<W: Write>(archive: &mut Cpio<W>) -> Result<()> {
    let exe = host::read(Path::new(BUSYBOX))?;
    if !Elf::parse(&exe)?.is_static() {
        return Err(format!("{BUSYBOX} is dynamically linked: install busybox-static, not busybox"));
    }
    let applets = host::output(Command::new(BUSYBOX).arg("--list-full"))?;
    let io = |e: std::io::Error| format!("writing initramfs: {e}");
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root", "mnt", "run"] {
        archive.dir(d).map_err(io)?;
    }
    // The kernel opens /dev/console for /init's stdio before anything can mount devtmpfs.
    archive.char_dev("dev/console", 0o600, 5, 1).map_err(io)?;
    archive.file("bin/busybox", 0o755, &exe).map_err(io)?;
    for applet in applets.lines().map(|l| l.trim().trim_start_matches('/')) {
        if !applet.is_empty() && applet != "bin/busybox" {
            archive.symlink(applet, "/bin/busybox").map_err(io)?;
        }
    }
    Ok(())
}
