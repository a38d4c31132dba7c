//! `cargo xtask <command>`: the project's chores, in Rust so they run wherever cargo does.

mod bench;
mod demo;
mod pytests;

use std::process::{Command, ExitCode};
use xtask::host::{self, Result};
use xtask::{binary, images::Images};

const USAGE: &str = "\
usage: cargo xtask <command>

  run [--smp N] [--append CMDLINE] [--scenario NAME]
                  boot the default guest with microvm (directly if this host's /dev/kvm
                  can boot Linux, in the nested rig otherwise), stream its console and
                  print how long the boot took
  test [ARGS]     cargo test --workspace [ARGS] (unit tests, /dev/kvm tests, rig tests),
                  then the Python QMP tests (tests/qmp) against microvm and QEMU
  pytest [ARGS]   only the Python tests: tests/qmp [ARGS], then tests/firecracker;
                  pytest tests/firecracker [ARGS]: that suite alone
  images          build the guest images if needed and print their paths
  binary          build the static microvm binary and print its path
  start-order     write xtask/start-order.txt (the functions one start runs, together, for
                  the static binary's link; needs valgrind)
  scenario NAME.. run xtask/scenarios/NAME.sh (one rig boot for all) and summarize
  deps            install the Debian packages the above need (as root)
  bench [--quick] [--runs N] [--no-io] [--only SECTION] [--readme]
                  microvm vs QEMU -M microvm: start, footprint, density, boot; writes
                  docs/benchmarks/ and the table in README.md (--readme: only the table,
                  from the report as it is)

environment: MICROVM_CACHE_DIR (default ~/.cache/microvm), MICROVM_TEST_MODE=auto|direct|rig|skip,
             MICROVM_BIN (use this microvm binary instead of building one)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => demo::run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("pytest") => host::ensure_packages().and_then(|()| pytests::run(&args[1..])),
        Some("images") => images(),
        Some("binary") => binary::ensure_static().map(|b| println!("{}", b.display())),
        Some("start-order") => start_order(),
        Some("scenario") => demo::scenarios(&args[1..]),
        Some("deps") => host::ensure_packages(),
        Some("bench") => bench::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn images() -> Result<()> {
    let images = Images::ensure()?;
    images.print();
    Ok(())
}

/// The README's test command: everything `cargo test --workspace` finds, including the
/// rig tests in xtask/tests, after making sure the Debian packages they need are there;
/// then the Python QMP tests.
fn test(args: &[String]) -> Result<()> {
    host::ensure_packages()?;
    // Build the images here rather than inside the first test that needs them: the first
    // time it is a 4-minute kernel build, whose progress and errors the test harness
    // would hold back until that test ends.
    if host::mode()?.is_some() {
        Images::ensure()?.print();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(host::repo_root())
        .args(["test", "--workspace"])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    // The Python tests run even when cargo's failed: both reports are worth having.
    let python = pytests::run(&[]);
    match (status.success(), python) {
        (true, python) => python,
        (false, Ok(())) => Err(format!("cargo test --workspace failed ({status})")),
        (false, Err(e)) => Err(format!("cargo test --workspace failed ({status}); {e}")),
    }
}

/// `cargo xtask start-order`: one start of the static binary on the guest that ends at once,
/// under callgrind, written as the link's start order (xtask/src/binary/start_order.rs).
fn start_order() -> Result<()> {
    let bin = binary::ensure_static()?;
    let dir = host::repo_root().join("target/start-order");
    host::mkdir(&dir)?;
    let guest = dir.join("triple-fault.elf");
    host::write(&guest, tiny_guest::serial_then_triple_fault(""))?;
    let n = binary::start_order::write(&bin, &guest)?;
    println!("{n} functions written to {}; `cargo xtask binary` links with them", binary::start_order::LIST);
    Ok(())
}
