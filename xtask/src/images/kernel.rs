//! The minimal guest kernel: Debian's linux-source-6.12, `make tinyconfig`, plus the
//! fragment guest/kernel/microvm.config, with guest/kernel/boot-trace.patch applied (writes
//! 6 and 7 to port 0xf4 at start_kernel and before init: microvm's -trace-boot). Output: an ELF `vmlinux` with the PVH entry note
//! (what microvm boots by default, like QEMU's -M microvm) and a `bzImage` of the same
//! build (made from the same objects, so nearly free).

use super::cached;
use crate::elf::Elf;
use crate::host::{self, KeyHasher, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub const SOURCE_PKG: &str = "linux-source-6.12";
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
const SOURCE_DIR: &str = "linux-source-6.12";
/// Bump when the build steps below change in a way that changes the output.
const RECIPE: &str = "kernel-2";

#[derive(Clone, Debug)]
pub struct MinimalKernel {
    pub dir: PathBuf,
    pub vmlinux: PathBuf,
    pub bzimage: PathBuf,
    /// The final .config, to see what olddefconfig made of the fragment.
    pub config: PathBuf,
    pub pvh_entry: u64,
}

pub fn fragment_path() -> PathBuf {
    host::repo_root().join("guest/kernel/microvm.config")
}

pub fn patch_path() -> PathBuf {
    host::repo_root().join("guest/kernel/boot-trace.patch")
}

/// The fragment of the multiuser variant, merged on top of microvm.config.
pub fn multiuser_fragment_path() -> PathBuf {
    host::repo_root().join("guest/kernel/multiuser.config")
}

pub fn ensure(cache: &Path) -> Result<MinimalKernel> {
    ensure_variant(cache, "kernel", &[fragment_path()])
}

/// The same kernel with CONFIG_MULTIUSER (guest/kernel/multiuser.config), cached apart and
/// built only for the scenarios that name it (GUEST_VMLINUX_MULTIUSER): guest users other
/// than root, which the default kernel leaves out to stay small.
pub fn ensure_multiuser(cache: &Path) -> Result<MinimalKernel> {
    ensure_variant(cache, "kernel-multiuser", &[fragment_path(), multiuser_fragment_path()])
}

/// The kernel of `fragments`, merged in order, cached as `<name>-<key>`.
fn ensure_variant(cache: &Path, name: &str, fragments: &[PathBuf]) -> Result<MinimalKernel> {
    let patch = host::read(&patch_path())?;
    let source = host::dpkg_version(SOURCE_PKG).ok_or_else(|| format!("{SOURCE_PKG} is not installed"))?;
    // The compiler is an input too: a different gcc makes a different (if equivalent) kernel.
    let gcc = host::output(Command::new("gcc").arg("--version"))?;
    let mut key = KeyHasher::default();
    key.add("recipe", RECIPE);
    // The default kernel's key is what it was before variants existed (one "fragment").
    for (i, path) in fragments.iter().enumerate() {
        let label = if i == 0 { "fragment".to_string() } else { format!("fragment{i}") };
        key.add(&label, &host::read(path)?);
    }
    let key = key.add("patch", &patch).add("source", &source).add("gcc", gcc.lines().next().unwrap_or("")).key();
    let dir = cached(cache, name, &key, |staging, out| build(staging, out, fragments))?;
    let vmlinux = dir.join("vmlinux");
    let data = host::read(&vmlinux)?;
    let pvh_entry = pvh_entry(&data).map_err(|e| format!("{}: {e}", vmlinux.display()))?;
    Ok(MinimalKernel { bzimage: dir.join("bzImage"), config: dir.join("config"), vmlinux, pvh_entry, dir })
}

fn build(staging: &Path, out: &Path, fragments: &[PathBuf]) -> Result<()> {
    let log = staging.join("build.log");
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    eprintln!("xtask: building the minimal guest kernel (about 4 min on 2 cores); log: {}", log.display());
    let start = Instant::now();
    host::run_logged(
        Command::new("tar").arg("-xJf").arg(SOURCE_TARBALL).arg("-C").arg(staging),
        &log,
        "unpacking the kernel source",
    )?;
    let src = staging.join(SOURCE_DIR);
    host::run_logged(
        Command::new("patch").current_dir(&src).args(["-p1", "--forward", "-i"]).arg(patch_path()),
        &log,
        "applying guest/kernel/boot-trace.patch",
    )?;
    let make = |args: &[&str]| {
        let mut c = Command::new("make");
        c.current_dir(&src).arg("ARCH=x86_64").args(args);
        // Fixed build identity: the same inputs give the same banner on every machine.
        c.env("KBUILD_BUILD_USER", "microvm").env("KBUILD_BUILD_HOST", "xtask");
        c.env("KBUILD_BUILD_TIMESTAMP", "2025-01-01");
        c
    };
    host::run_logged(&mut make(&["tinyconfig"]), &log, "make tinyconfig")?;
    host::run_logged(
        Command::new("scripts/kconfig/merge_config.sh").current_dir(&src).args(["-m", ".config"]).args(fragments),
        &log,
        "merging guest/kernel/*.config",
    )?;
    host::run_logged(&mut make(&["olddefconfig"]), &log, "make olddefconfig")?;

    // Kconfig silently drops an option whose dependencies are off: catch that here rather
    // than with a guest that cannot find its disk.
    let config = fs::read_to_string(src.join(".config")).map_err(|e| format!("reading .config: {e}"))?;
    let mut wanted = String::new();
    for fragment in fragments {
        wanted += &fs::read_to_string(fragment).map_err(|e| e.to_string())?;
    }
    let dropped = config_mismatches(&wanted, &config);
    if !dropped.is_empty() {
        return Err(format!(
            "make olddefconfig did not keep {} of guest/kernel/*.config (add their dependencies to it): {}; config: {}",
            dropped.len(),
            dropped.join(", "),
            src.join(".config").display()
        ));
    }

    host::run_logged(&mut make(&[&format!("-j{jobs}"), "vmlinux", "bzImage"]), &log, "kernel build")?;
    let vmlinux = host::read(&src.join("vmlinux"))?;
    pvh_entry(&vmlinux).map_err(|e| format!("built vmlinux: {e}; log: {}", log.display()))?;
    host::write(&out.join("vmlinux"), &vmlinux)?;
    for (from, to) in [("arch/x86/boot/bzImage", "bzImage"), (".config", "config")] {
        fs::copy(src.join(from), out.join(to)).map_err(|e| format!("copying {from}: {e}"))?;
    }
    eprintln!("xtask: minimal guest kernel built in {:.0} s", start.elapsed().as_secs_f64());
    // The unpacked tree is ~1.5 GB; only the outputs are cached.
    let _ = fs::remove_dir_all(&src);
    Ok(())
}

fn pvh_entry(vmlinux: &[u8]) -> Result<u64> {
    Elf::parse(vmlinux)?
        .pvh_entry()
        .ok_or_else(|| "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): is CONFIG_PVH on?".into())
}

/// Fragment lines that the final .config does not honour, as "CONFIG_X=y (got: ...)".
/// `CONFIG_X=v` must appear verbatim; `# CONFIG_X is not set` must not be set to anything.
pub fn config_mismatches(fragment: &str, config: &str) -> Vec<String> {
    let value_of = |name: &str| -> Option<&str> {
        config.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    };
    let mut bad = Vec::new();
    for line in fragment.lines().map(str::trim) {
        if let Some((name, want)) = line.split_once('=').filter(|_| line.starts_with("CONFIG_")) {
            let got = value_of(name);
            if got != Some(want) {
                bad.push(format!("{line} (got: {})", got.map_or("not set".into(), |g| format!("{name}={g}"))));
            }
        } else if let Some(name) = line.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set")) {
            if let Some(got) = value_of(name).filter(|v| *v != "n") {
                bad.push(format!("{name} off (got: {name}={got})"));
            }
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_are_reported() {
        let fragment =
            "# comment\nCONFIG_A=y\nCONFIG_B=y\nCONFIG_N=16\n# CONFIG_PCI is not set\n# CONFIG_X is not set\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=2\nCONFIG_PCI=y\nCONFIG_AB=y\n";
        assert_eq!(
            config_mismatches(fragment, config),
            vec!["CONFIG_B=y (got: not set)", "CONFIG_N=16 (got: CONFIG_N=2)", "CONFIG_PCI off (got: CONFIG_PCI=y)"]
        );
    }

    #[test]
    fn fragment_in_repo_is_well_formed() {
        let text = fs::read_to_string(fragment_path()).unwrap();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let ok = line.starts_with("CONFIG_") && line.contains('=') || line.starts_with('#');
            assert!(ok, "unexpected line in microvm.config: {line}");
        }
        for must in ["CONFIG_PVH=y", "CONFIG_VIRTIO_MMIO=y", "# CONFIG_PCI is not set", "# CONFIG_ACPI is not set"] {
            assert!(text.lines().any(|l| l.trim() == must), "microvm.config lacks {must}");
        }
    }

    /// The variant's fragment adds only what it is for, and the default kernel lacks it
    /// (else the variant would be a second copy of the same kernel).
    #[test]
    fn multiuser_fragment_adds_multiuser_only() {
        let text = fs::read_to_string(multiuser_fragment_path()).unwrap();
        let options: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("CONFIG_")).collect();
        assert_eq!(options, ["CONFIG_MULTIUSER=y"]);
        let base = fs::read_to_string(fragment_path()).unwrap();
        assert!(!base.contains("CONFIG_MULTIUSER=y"), "microvm.config has MULTIUSER already");
    }
}
