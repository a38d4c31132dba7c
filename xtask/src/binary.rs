//! The static `microvm` binary: the same file runs on the host and inside the rig, where
//! there are no shared libraries.

use crate::elf::Elf;
use crate::host::{self, Result};
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds (incrementally) `target/static/x86_64-unknown-linux-gnu/release/microvm` and
/// checks that it is static. MICROVM_BIN points at a prebuilt binary instead.
pub fn ensure_static() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("MICROVM_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let root = host::repo_root();
    let target_dir = root.join("target/static");
    let log = host::logs_dir()?.join("microvm-static-build.log");
    let _ = std::fs::remove_file(&log);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "-p", "cli", "--bin", "microvm", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static")
        // RUSTFLAGS would override the per-target flags above (and is set by some
        // developers' shells); a separate --target-dir keeps this build from thrashing
        // the normal debug build's cache.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    host::run_logged(&mut cmd, &log, "building the static microvm binary").map_err(|e| {
        let first_error = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("error"))
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        format!("{e}{first_error}")
    })?;
    let bin = target_dir.join(TARGET).join("release/microvm");
    let data = host::read(&bin)?;
    if !Elf::parse(&data)?.is_static() {
        return Err(format!("{} is dynamically linked despite +crt-static", bin.display()));
    }
    Ok(bin)
}
