//! The start path's functions linked first and together. A start of the tiny guest runs
//! ~220 functions spread over 2.8 MB of text, and the kernel maps text in 64 KiB windows
//! around each fault: laid out together, they fill a few windows.
//! GNU ld 2.40 cannot order sections, so the musl binary is linked with the toolchain's own
//! rust-lld (its `gcc-ld/ld.lld`), which can (`--symbol-ordering-file`). Measured on the
//! tiny guest (docs/start-path.md): page faults 95 (GNU ld) → 84 (lld) → 69 (lld, ordered).
//!
//! The list is `xtask/start-order.txt`, written by `cargo xtask start-order` (callgrind of
//! one start: the functions it ran, in the order the profile names them, which is not the
//! order they ran: what counts is that they sit together). Rust's symbol names carry a hash of
//! the crate's build settings and the compiler version, not of the code, so the list
//! outlives most changes; a name that no longer exists is skipped (the function falls back
//! to the default place), and a new start-path function is merely not ordered until the
//! list is written again.

use crate::host::{self, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The list, relative to the repository's root.
pub const LIST: &str = "xtask/start-order.txt";

/// rustc flags for the musl build: rust-lld and the list, or none (the default linker)
/// where the toolchain has no rust-lld or a path has white space (the flags are
/// space-separated). The list is passed as a copy named by its content's hash, so a new
/// list changes the flags and cargo links again.
pub fn link_flags(root: &Path, target_dir: &Path) -> String {
    let (Some(gcc_ld), Ok(list)) = (gcc_ld_dir(), std::fs::read(root.join(LIST))) else {
        return String::new();
    };
    let copy = target_dir.join(format!("start-order-{:016x}.txt", fnv1a(&list)));
    if std::fs::create_dir_all(target_dir).and_then(|()| std::fs::write(&copy, &list)).is_err() {
        return String::new();
    }
    let (gcc_ld, copy) = (gcc_ld.display().to_string(), copy.display().to_string());
    if gcc_ld.contains(char::is_whitespace) || copy.contains(char::is_whitespace) {
        return String::new();
    }
    format!(
        "-C link-arg=-B{gcc_ld} -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--symbol-ordering-file={copy} \
         -C link-arg=-Wl,--no-warn-symbol-ordering"
    )
}

/// The toolchain's directory holding rust-lld as `ld.lld`, for `cc -B`.
fn gcc_ld_dir() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = Path::new(sysroot.trim()).join("lib/rustlib").join(super::GNU).join("bin/gcc-ld");
    (out.status.success() && dir.join("ld.lld").is_file()).then_some(dir)
}

/// 64-bit FNV-1a: names the list's copy by its content.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The C library's functions that install the seccomp filter (`-sandbox on`, the default):
/// the profiled run has the sandbox off, because valgrind does not implement `seccomp`
/// (with it on, the run ends there with ENOSYS, on the error path).
const SANDBOX_CALLS: [&str; 2] = ["prctl", "syscall"];

/// `cargo xtask start-order GUEST`: runs one start of `microvm` on GUEST (a tiny guest that
/// ends at once) under callgrind and writes the functions it ran to `LIST`, in the order
/// the profile first names them. `-sandbox off`: valgrind's own system calls are not in the filter.
pub fn write(microvm: &Path, guest: &Path) -> Result<usize> {
    let out = std::env::temp_dir().join(format!("microvm-start-order.{}", std::process::id()));
    let status = Command::new("valgrind")
        // `--show-below-main`: musl's __libc_start_main by its name, not "(below main)".
        .args(["--tool=callgrind", "--demangle=no", "--show-below-main=yes"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(microvm)
        .args(["-M", "microvm", "-m", "128m", "-nodefaults", "-sandbox", "off", "-kernel"])
        .arg(guest)
        .status()
        .map_err(|e| format!("cannot run valgrind (apt-get install valgrind): {e}"))?;
    let text = String::from_utf8_lossy(&host::read(&out)?).into_owned();
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        return Err(format!("valgrind: {status}"));
    }
    let symbols = symbols(microvm)?;
    let mut names: Vec<String> = Vec::new();
    let sandbox = SANDBOX_CALLS.iter().map(|s| s.to_string());
    for name in first_run_order(&text).into_iter().chain(sandbox) {
        let name = resolve(&name, &symbols).unwrap_or(name);
        if !name.starts_with("0x") && !names.contains(&name) {
            names.push(name);
        }
    }
    host::write(&host::repo_root().join(LIST), names.join("\n") + "\n")?;
    Ok(names.len())
}

/// The binary's symbols by address (`nm -n`): (address, name), ascending.
fn symbols(binary: &Path) -> Result<Vec<(u64, String)>> {
    let out = Command::new("nm")
        .args(["-n", "--defined-only"])
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run nm (apt-get install binutils): {e}"))?;
    if !out.status.success() {
        return Err(format!("nm {}: {}", binary.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (addr, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            kind.eq_ignore_ascii_case("t").then(|| Some((u64::from_str_radix(addr, 16).ok()?, name.to_string())))?
        })
        .collect())
}

/// The function holding callgrind's `0x…` (code whose symbol has no size, as musl's
/// assembly `_start`, `memcpy` and `memset`): the nearest text symbol at or below it.
fn resolve(name: &str, symbols: &[(u64, String)]) -> Option<String> {
    let addr = u64::from_str_radix(name.strip_prefix("0x")?, 16).ok()?;
    let at = symbols.partition_point(|(a, _)| *a <= addr).checked_sub(1)?;
    Some(symbols[at].1.clone())
}

/// Function names of a callgrind profile in the order they first appear (the profile's
/// order, not the run's: the same start listed from two builds comes out in two orders). Callgrind names
/// a function in full once (`fn=(7) name`, also `cfn=`) and by its number after; code
/// without a symbol's size comes as its address (`0x…`), which [`resolve`] names.
fn first_run_order(profile: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in profile.lines() {
        let Some(rest) = line.strip_prefix("fn=(").or_else(|| line.strip_prefix("cfn=(")) else {
            continue;
        };
        let Some((_, name)) = rest.split_once(") ") else {
            continue;
        };
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_come_in_the_order_they_first_ran() {
        let profile = "fn=(1) _start_c\ncalls=1 0\ncfn=(2) main\nfn=(2)\ncfn=(3) 0x0000000000401000\n\
                       cfn=(1)\nfn=(4) _ZN3foo3bar17h0123456789abcdefE\n";
        assert_eq!(
            first_run_order(profile),
            ["_start_c", "main", "0x0000000000401000", "_ZN3foo3bar17h0123456789abcdefE"]
        );
    }

    #[test]
    fn an_address_is_named_by_the_function_below_it() {
        let symbols = [(0x1000, "_start".to_string()), (0x1040, "memcpy".to_string())];
        assert_eq!(resolve("0x0000000000001000", &symbols).as_deref(), Some("_start"));
        assert_eq!(resolve("0x000000000000107f", &symbols).as_deref(), Some("memcpy"));
        assert_eq!(resolve("0x0000000000000fff", &symbols), None);
        assert_eq!(resolve("main", &symbols), None);
    }

    #[test]
    fn the_list_has_the_sandbox_calls() {
        let list = std::fs::read_to_string(host::repo_root().join(LIST)).unwrap();
        for call in SANDBOX_CALLS {
            assert!(list.lines().any(|l| l == call), "{call} is not in {LIST}: run `cargo xtask start-order`");
        }
    }

    #[test]
    fn the_lists_copy_is_named_by_its_content() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"a\nb\n"), fnv1a(b"b\na\n"));
    }
}
