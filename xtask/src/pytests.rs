//! The Python tests: tests/qmp, where QEMU's own client library, `qemu.qmp`, drives microvm
//! and QEMU's `-M microvm` alike, and tests/firecracker, where a published Firecracker client
//! drives microvm's Firecracker front end. This module gives each suite a virtual
//! environment installed from its requirements.txt, the tiny guests they boot, and runs
//! pytest (ARGS go to the QMP suite, which `cargo xtask pytest ARGS` is for).

use std::path::{Path, PathBuf};
use std::process::Command;
use xtask::host::{self, KeyHasher, Result};

/// One suite's directory and what its venv holds.
struct Suite {
    dir: &'static str,
    requirements: &'static str,
    /// Installed after `requirements` with `--ignore-requires-python --no-deps`: packages
    /// that declare a newer Python than Debian 12's 3.11 but run on it (each file says why).
    any_python: Option<&'static str>,
}

const SUITES: &[Suite] = &[
    Suite { dir: "tests/qmp", requirements: "tests/qmp/requirements.txt", any_python: None },
    Suite {
        dir: "tests/firecracker",
        requirements: "tests/firecracker/requirements.txt",
        any_python: Some("tests/firecracker/requirements-any-python.txt"),
    },
];

/// Written last into a venv: one without it was interrupted and is made again.
const COMPLETE: &str = ".xtask-complete";

/// `python -m pytest SUITE [ARGS]` for each suite, with MICROVM_BIN, TINY_GUESTS and QEMU set.
pub fn run(args: &[String]) -> Result<()> {
    let root = host::repo_root();
    let microvm = microvm_bin(&root)?;
    let guests = root.join("target/qmp-guests");
    host::mkdir(&guests)?;
    for (name, elf) in tiny_guest::qmp_test_guests() {
        host::write(&guests.join(format!("{name}.elf")), elf)?;
    }
    // `cargo xtask pytest tests/firecracker [ARGS]` runs that suite alone (pytest run from
    // the QMP suite's venv cannot import the other's client); other ARGS go to the QMP suite.
    let chosen = args.first().and_then(|a| SUITES.iter().position(|s| a.trim_end_matches('/') == s.dir));
    let args = if chosen.is_some() { &args[1..] } else { args };
    for (index, suite) in SUITES.iter().enumerate() {
        if chosen.is_some_and(|c| c != index) {
            continue;
        }
        let venv = ensure_venv(&root, suite)?;
        eprintln!("xtask: python tests {} with {} and qemu-system-x86_64", suite.dir, microvm.display());
        let status = Command::new(venv.join("bin/python"))
            .current_dir(&root)
            .args(["-m", "pytest", suite.dir])
            .args(if index == 0 || chosen == Some(index) { args } else { &[] })
            .env("MICROVM_BIN", &microvm)
            .env("TINY_GUESTS", &guests)
            .env("QEMU", "qemu-system-x86_64")
            .status()
            .map_err(|e| format!("cannot run pytest: {e}"))?;
        if !status.success() {
            return Err(format!("python tests {} failed ({status})", suite.dir));
        }
    }
    Ok(())
}

/// `${cache}/venv-<hash>`, keyed by the requirements and the interpreter (a venv only
/// works with the Python that made it), created and filled on first use.
fn ensure_venv(root: &Path, suite: &Suite) -> Result<PathBuf> {
    let requirements_file = suite.requirements;
    let requirements = host::read(&root.join(requirements_file))?;
    let any_python = match suite.any_python {
        Some(file) => host::read(&root.join(file))?,
        None => Vec::new(),
    };
    let python = host::output(Command::new("python3").arg("--version"))?;
    let key = KeyHasher::default()
        .add("requirements", &requirements)
        .add("any-python", &any_python)
        .add("python", python.trim())
        .key();
    let venv = host::cache_dir()?.join(format!("venv-{key}"));
    if venv.join(COMPLETE).exists() {
        return Ok(venv);
    }
    eprintln!("xtask: installing {requirements_file} into {}", venv.display());
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
    }
    let log = host::logs_dir()?.join("venv.log");
    host::run_logged(Command::new("python3").args(["-m", "venv"]).arg(&venv), &log, "python3 -m venv")?;
    host::run_logged(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "-r"])
            .arg(root.join(requirements_file)),
        &log,
        "pip install",
    )?;
    if let Some(file) = suite.any_python {
        host::run_logged(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--disable-pip-version-check", "--ignore-requires-python", "--no-deps", "-r"])
                .arg(root.join(file)),
            &log,
            "pip install --ignore-requires-python",
        )?;
    }
    host::write(&venv.join(COMPLETE), "")?;
    Ok(venv)
}

/// MICROVM_BIN, or the debug binary of the workspace build (built here if needed).
fn microvm_bin(root: &Path) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("MICROVM_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "-p", "cli"])
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p cli failed ({status})"));
    }
    Ok(root.join("target/debug/microvm"))
}
