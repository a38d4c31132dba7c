//! virtiofsd, the vhost-user backend of virtio-fs (the Rust one, from crates.io), built
//! with `cargo install` into the cache: the virtio-fs scenarios run it on the host or
//! pack it, with the libraries it links (libseccomp, libcap-ng), into the rig.

use super::cached;
use crate::host::{self, KeyHasher, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The release the scenarios and benchmarks use. MICROVM_VIRTIOFSD overrides the whole
/// build with a binary (e.g. Debian's /usr/libexec/virtiofsd).
const VERSION: &str = "1.14.0";

/// `<cache>/virtiofsd-<key>/virtiofsd`
pub fn ensure(cache: &Path) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("MICROVM_VIRTIOFSD").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let key = KeyHasher::default().add("virtiofsd", VERSION).key();
    let dir = cached(cache, "virtiofsd", &key, |staging, out| {
        let log = staging.join("cargo-install.log");
        eprintln!("xtask: building virtiofsd {VERSION} (cargo install, a few minutes); log: {}", log.display());
        host::run_logged(
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["install", "--locked", "--version", VERSION, "virtiofsd", "--root"])
                .arg(staging.join("root"))
                .env_remove("RUSTFLAGS"),
            &log,
            "cargo install virtiofsd",
        )?;
        std::fs::copy(staging.join("root/bin/virtiofsd"), out.join("virtiofsd"))
            .map(drop)
            .map_err(|e| format!("copying virtiofsd: {e}"))
    })?;
    Ok(dir.join("virtiofsd"))
}
