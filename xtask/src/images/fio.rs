//! fio for the in-guest disk benchmark (`cargo xtask bench --only fio`): the source of
//! Debian 12's fio package (its orig tarball, checked against the SHA-256 below), built
//! static (`./configure --build-static`: neither the guest nor the rig has a libc), then
//! packed with guest/fio/bench-fio as one more initramfs archive behind the cloud
//! initramfs (Linux unpacks concatenated archives in turn). Debian's binary package cannot
//! be used as it is: it links librbd, glusterfs and a dozen other libraries.
//! fio's io_uring engine needs no library (it makes the system calls itself); the guest
//! is Debian's cloud kernel, which has io_uring (the minimal kernel, a tinyconfig, has
//! neither io_uring nor Linux AIO, so queue depths above 1 are not possible there).

use super::cached;
use crate::cpio::Cpio;
use crate::host::{self, KeyHasher, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = "fio-initramfs-1";
/// bookworm's fio 3.33-3, whose upstream tarball this is.
const VERSION: &str = "3.33";
const URL: &str = "http://deb.debian.org/debian/pool/main/f/fio/fio_3.33.orig.tar.gz";
const SHA256: &str = "d2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc";

/// `<cache>/fio-<key>/fio`: the static fio.
fn ensure_fio(cache: &Path) -> Result<PathBuf> {
    let key = KeyHasher::default().add("url", URL).add("sha256", SHA256).key();
    let dir = cached(cache, "fio", &key, |staging, out| {
        let tarball = staging.join("fio.tar.gz");
        let log = staging.join("build.log");
        eprintln!("[xtask] building fio {VERSION} (static) from {URL}");
        host::run_logged(Command::new("curl").args(["-fsSL", "-o"]).arg(&tarball).arg(URL), &log, "curl")?;
        let sum = host::output(Command::new("sha256sum").arg(&tarball))?;
        if sum.split_whitespace().next() != Some(SHA256) {
            return Err(format!("{URL}: SHA-256 {sum} is not the expected {SHA256}"));
        }
        host::run_logged(Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(staging), &log, "tar")?;
        let src = staging.join(format!("fio-{VERSION}"));
        // --disable-native: the binary runs in the rig's guest, whose CPU model may differ.
        host::run_logged(
            Command::new("./configure").current_dir(&src).args(["--build-static", "--disable-native"]),
            &log,
            "fio ./configure",
        )?;
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
        host::run_logged(Command::new("make").current_dir(&src).args(["-j", &jobs, "fio"]), &log, "make fio")?;
        host::run_logged(Command::new("strip").arg("-o").arg(out.join("fio")).arg(src.join("fio")), &log, "strip")?;
        Ok(())
    })?;
    Ok(dir.join("fio"))
}

/// `<cache>/fio-initramfs-<key>/initramfs.cpio.gz`: `cloud_initramfs` followed by an
/// archive with /bin/fio and /tests/bench-fio.
pub fn ensure(cache: &Path, cloud_initramfs: &Path) -> Result<PathBuf> {
    let fio = ensure_fio(cache)?;
    let script = host::read(&host::repo_root().join("guest/fio/bench-fio"))?;
    let base = host::read(cloud_initramfs)?;
    let key = KeyHasher::default()
        .add("recipe", RECIPE)
        .add("base", &base)
        .add("fio", &host::read(&fio)?)
        .add("script", &script)
        .key();
    let dir = cached(cache, "fio-initramfs", &key, |staging, out| {
        let cpio = staging.join("fio.cpio");
        let io = |e: std::io::Error| format!("writing {}: {e}", cpio.display());
        let mut archive = Cpio::new(BufWriter::new(File::create(&cpio).map_err(|e| e.to_string())?));
        for d in ["bin", "tests"] {
            archive.dir(d).map_err(io)?;
        }
        archive.file_from("bin/fio", 0o755, &fio).map_err(io)?;
        let script_file = staging.join("bench-fio");
        host::write(&script_file, &script)?;
        archive.file_from("tests/bench-fio", 0o755, &script_file).map_err(io)?;
        archive.finish().and_then(|mut w| w.flush()).map_err(io)?;
        host::output(Command::new("gzip").args(["-9", "-n"]).arg(&cpio))?;
        // Archives start on a 4-byte boundary; the kernel skips the zero padding.
        let mut all = base.clone();
        all.resize(base.len().next_multiple_of(4), 0);
        all.extend(host::read(&staging.join("fio.cpio.gz"))?);
        host::write(&out.join("initramfs.cpio.gz"), &all)
    })?;
    Ok(dir.join("initramfs.cpio.gz"))
}
