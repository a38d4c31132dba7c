//! The static `microvm` binary: the same file runs on the host and inside the rig, where
//! there are no shared libraries.
//!
//! Built against musl when the toolchain has (or rustup can add) its standard library:
//! musl's start-up does no CPUID probing (each CPUID traps when the host is itself a VM)
//! and no IRELATIVE relocations, which took exec → exit of the start guest from 2.6 to
//! 1.9 ms of CPU here (perf stat -r 60, docs/start-path.md). glibc with +crt-static is the
//! fallback, so a toolchain without the musl target still builds.

pub mod start_order;

use crate::elf::Elf;
use crate::host::{self, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MUSL: &str = "x86_64-unknown-linux-musl";
const GNU: &str = "x86_64-unknown-linux-gnu";

/// Builds (incrementally) `target/static/<target>/release/microvm` and checks that it is
/// static. MICROVM_BIN points at a prebuilt binary instead.
pub fn ensure_static() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("MICROVM_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let root = host::repo_root();
    let target_dir = root.join("target/static");
    let target = if musl_available() { MUSL } else { GNU };
    let log = host::logs_dir()?.join("microvm-static-build.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&root)
        .args(["build", "--release", "-p", "cli", "--bin", "microvm", "--target", target, "--target-dir"])
        .arg(&target_dir)
        // musl links statically by default; glibc needs asking.
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", start_order::link_flags(&root, &target_dir))
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
    let bin = target_dir.join(target).join("release/microvm");
    let data = host::read(&bin)?;
    if !Elf::parse(&data)?.is_static() {
        return Err(format!("{} is not statically linked", bin.display()));
    }
    Ok(bin)
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Whether the musl standard library is installed, installing it with rustup if it is not
/// (once per machine; a failure, e.g. offline, only means the glibc fallback).
fn musl_available() -> bool {
    if musl_std_installed() {
        return true;
    }
    let added = Command::new("rustup")
        .args(["target", "add", MUSL])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !added || !musl_std_installed() {
        eprintln!("xtask: no {MUSL} standard library (rustup target add failed): building against glibc");
        return false;
    }
    true
}

fn musl_std_installed() -> bool {
    let Ok(out) = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "target-libdir", "--target", MUSL])
        .output()
    else {
        return false;
    };
    let dir = String::from_utf8_lossy(&out.stdout);
    out.status.success() && has_std(Path::new(dir.trim()))
}

fn has_std(libdir: &Path) -> bool {
    std::fs::read_dir(libdir)
        .is_ok_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
}
