//! The machine xtask runs on: where things live, which packages it needs, whether its
//! /dev/kvm can boot Linux, and a few helpers to run external tools with clear errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

pub type Result<T> = std::result::Result<T, String>;

/// Debian packages needed by images, rig and tests. `.ci/run` installs them through
/// `cargo xtask deps`, so this list is the only one.
pub const APT_PACKAGES: &[&str] = &[
    "build-essential",   // gcc/make for the guest kernel, libc.a for the static microvm
    "bc",                // kernel build
    "flex",              // kernel build
    "bison",             // kernel build
    "libelf-dev",        // kernel build (objtool)
    "libssl-dev",        // kernel build (sign-file, certs)
    "xz-utils",          // linux-source tarball, Debian's .ko.xz modules
    "zstd",              // Debian's cloud vmlinuz payload is zstd
    "linux-source-6.12", // source of the minimal guest kernel
    "busybox-static",    // userland of the guest initramfs and of the rig
    "cpio",              // not used by xtask (it writes cpio itself); handy to inspect images
    "qemu-system-x86",   // the nested rig (TCG with SVM) and the reference VMM
    "qemu-utils",        // qemu-img: qcow2 images made, checked and compared by the qcow2 tests
    "e2fsprogs",         // mke2fs for disk images in virtio-blk scenarios
    "acpica-tools",      // iasl: the acpi crate's tests disassemble the tables it builds
    "python3-venv",      // the venv of the Python QMP tests (tests/qmp)
    "libseccomp-dev",    // building virtiofsd (images/virtiofsd.rs), virtio-fs's backend
    "libcap-ng-dev",     // building virtiofsd
    "curl",              // the Firecracker API tests talk to the API socket as its getting-started guide does
    "passt",             // -netdev user's network stack (microvm starts it; tests and the rig use it)
    "attr",              // getfattr: the 9p rig test reads mapped-xattr's user.virtfs.* from the host
    "strace",            // the start-path test checks which system calls a start makes
];

/// The workspace root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Where images are cached: outside the checkout so fresh clones, CI and tests share them.
pub fn cache_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("MICROVM_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => match std::env::var_os("HOME") {
            Some(h) if !h.is_empty() => PathBuf::from(h).join(".cache/microvm"),
            _ => return Err("neither MICROVM_CACHE_DIR nor HOME is set: no place for the image cache".into()),
        },
    };
    mkdir(&dir)?;
    Ok(dir)
}

/// Logs of builds and rig runs that are about this checkout (not cached).
pub fn logs_dir() -> Result<PathBuf> {
    let dir = repo_root().join("target/xtask-logs");
    mkdir(&dir)?;
    Ok(dir)
}

pub fn mkdir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    fs::write(path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Version of an installed Debian package, or None when it is not installed.
pub fn dpkg_version(pkg: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}${Version}", pkg])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    s.strip_prefix("ii ").map(|v| v.trim().to_string())
}

/// Makes sure APT_PACKAGES are installed: installs the missing ones when root, otherwise
/// says which command to run. Checked once per process.
pub fn ensure_packages() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| result = install_missing(APT_PACKAGES));
    result
}

fn install_missing(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| dpkg_version(p).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let cmd = format!("apt-get update && apt-get install -y --no-install-recommends {}", missing.join(" "));
    if !is_root() {
        return Err(format!("missing Debian packages: {}; install them with: sudo sh -c '{cmd}'", missing.join(" ")));
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let log = logs_dir()?.join("apt.log");
    run_logged(Command::new("apt-get").arg("update"), &log, "apt-get update")?;
    run_logged(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &log,
        "apt-get install",
    )
}

pub fn is_root() -> bool {
    // Effective uid from /proc avoids a libc dependency just for geteuid().
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Where a Linux guest can boot: on this host's /dev/kvm, or only in the nested rig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The host CPU has hardware virtualization: /dev/kvm boots Linux.
    Direct,
    /// /dev/kvm here is an instruction emulator (kvm_pvm, see PLATFORM-KVM.md): boot Linux
    /// guests inside a TCG QEMU VM with an emulated SVM CPU and a real kvm_amd.
    Rig,
}

/// MICROVM_TEST_MODE=direct|rig|auto (default auto: direct iff the CPU has svm or vmx).
/// Returns None for MICROVM_TEST_MODE=skip, and the reason for the choice.
pub fn mode() -> Result<Option<(Mode, String)>> {
    let forced = std::env::var("MICROVM_TEST_MODE").unwrap_or_default();
    match forced.as_str() {
        "direct" => Ok(Some((Mode::Direct, "forced by MICROVM_TEST_MODE=direct".into()))),
        "rig" => Ok(Some((Mode::Rig, "forced by MICROVM_TEST_MODE=rig".into()))),
        "skip" => Ok(None),
        "" | "auto" => Ok(Some(if hardware_virt() && Path::new("/dev/kvm").exists() {
            (Mode::Direct, "host CPU has svm/vmx and /dev/kvm exists".into())
        } else {
            (Mode::Rig, "host CPU has no svm/vmx: its /dev/kvm cannot boot Linux".into())
        })),
        other => Err(format!("MICROVM_TEST_MODE={other}: expected direct, rig, auto or skip")),
    }
}

fn hardware_virt() -> bool {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "svm" || f == "vmx"))
}

/// Runs `cmd` with stdout and stderr appended to `log`; on failure the error is one line
/// naming the step and the log.
pub fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open log {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status}); log: {}", log.display()))
    }
}

/// Runs `cmd` and returns its stdout; the error carries its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// FNV-1a, 64 bit: a stable hash for cache keys (std's DefaultHasher may change between
/// Rust releases, which would silently rebuild every image).
pub struct KeyHasher(u64);

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl KeyHasher {
    /// Adds a labelled input; the label and a separator keep ("ab","c") != ("a","bc").
    pub fn add(&mut self, label: &str, data: impl AsRef<[u8]>) -> &mut Self {
        for chunk in [label.as_bytes(), b"\0", data.as_ref(), b"\0"] {
            for &b in chunk {
                self.0 ^= b as u64;
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        self
    }

    pub fn key(&self) -> String {
        format!("{:016x}", self.0)
    }
}
