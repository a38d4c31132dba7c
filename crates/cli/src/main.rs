//! `microvm`: the command-line front end. Parses a QEMU-style command line
//! into a `VmConfig`, builds the VM, runs it, and turns the outcome into an
//! exit status. Every failure is reported as one line on stderr.
//!
//! No std start-up: the C library calls `entry::main` (why: `entry.rs`).

// The unit tests' harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

mod clone_server;
mod daemon;
mod entry;
mod pidfile;
mod rebase_snap;
mod snapshot_info;
mod start_arena;

use cli::args::{self, Command, Launch};
use cli::firecracker;
use cli::logger;
use entry::ExitCode;
use pidfile::Pidfile;
use sandbox::jail::Jail;
use std::ffi::OsString;
use vmm::startup::StartInstant;
use vmm::{Vm, VmExit};

/// Start-up's allocations cost no system call (`start_arena.rs`).
#[global_allocator]
static ALLOCATOR: start_arena::StartArena<{ start_arena::ARENA_SIZE }> = start_arena::StartArena::new();

/// Set to 1 to print the start-up time, like `--report-start-time`.
const REPORT_START_TIME_ENV: &str = "MICROVM_REPORT_START_TIME";

/// What `main` is in a program with std's start-up: `args` is the whole argv.
#[cfg_attr(test, allow(dead_code))]
fn run_main(args: Vec<OsString>) -> ExitCode {
    let start = StartInstant::now();
    logger::init();
    let mut args = args.into_iter();
    let argv0 = args.next().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
    let argv: Result<Vec<String>, _> = args.map(|a| a.into_string()).collect();
    let argv = match argv {
        Ok(argv) => argv,
        Err(bad) => return fail(&format!("argument {bad:?} is not valid UTF-8")),
    };
    if let Some(code) = clone_server::dispatch(&argv) {
        return code;
    }
    if argv.first().map(String::as_str) == Some("snapshot-info") {
        return snapshot_info::main(&argv[1..]);
    }
    if argv.first().map(String::as_str) == Some("rebase-snap") {
        return rebase_snap::main(&argv[1..]);
    }
    if cli::jailer::args::selected(&argv0) {
        return run_jailer(&argv);
    }
    if firecracker::args::selected(&argv0, &argv) {
        return run_firecracker(&argv, start);
    }
    let launch = match args::parse(argv) {
        Ok(Command::Run(launch)) => launch,
        Ok(Command::DumpMtree(config)) => {
            return match Vm::new(&config, start) {
                Ok(vmm) => {
                    print!("{}", vmm::address_map::format_mtree(&vmm.address_map()));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            };
        }
        Ok(Command::DumpSeccomp(config)) => {
            print!("{}", vmm::host_surface::format_seccomp(&config));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            // QEMU's first line (scripts parse it), then what this program is.
            println!("{}", vmm::version_banner());
            println!("microvm {}: a KVM VMM for QEMU's microvm machine", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e),
    };
    run(launch, start)
}

/// Builds and runs the VM of `launch`: daemonized, with a pidfile, as asked.
fn run(launch: Launch, start: StartInstant) -> ExitCode {
    let Launch { vm: mut config, daemonize, pidfile, jail, log_file, warnings } = launch;
    if std::env::var_os(REPORT_START_TIME_ENV).is_some_and(|v| v == "1") {
        config.report_start_time = true;
    }
    if config.report_start_time {
        vmm::startup::record_steps();
        vmm::startup::step("exec to command line parsed");
    }
    // Names resolve while /etc is reachable; the inherited descriptors are noted before
    // microvm opens any (the -D file included).
    let jail = match jail.as_ref().map(Jail::prepare).transpose() {
        Ok(jail) => jail,
        Err(e) => return fail(&e),
    };
    if let Some(path) = &log_file {
        if let Err(e) = logger::log_to_file(path) {
            return fail(&format!("-D: cannot open {}: {e}", path.display()));
        }
    }
    if !config.sandbox {
        log::warn!("-sandbox off: no seccomp filter; every thread may make any system call");
    }
    for warning in &warnings {
        log::warn!("{warning}");
    }
    // Before anything else: the fork must happen while the process has one thread.
    let daemon = if daemonize {
        match daemon::daemonize() {
            Ok(daemon::Outcome::Child(daemon)) => Some(daemon),
            Ok(daemon::Outcome::ParentExit(status)) => return ExitCode::from(status),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    // Until the daemon is ready, a failure is told to the waiting parent, which prints it
    // (the daemon's stderr is still the parent's: printing it here too would say it twice).
    let setup_failed = |daemon: Option<daemon::Daemon>, error: &dyn std::fmt::Display| match daemon {
        Some(daemon) => {
            daemon.failed(&format!("microvm: {error}"));
            ExitCode::FAILURE
        }
        None => fail(error),
    };
    let mut pidfile = match pidfile.as_deref().map(Pidfile::lock).transpose() {
        Ok(pidfile) => pidfile,
        Err(e) => return setup_failed(daemon, &e),
    };
    let vm = match Vm::new(&config, start) {
        Ok(vm) => vm,
        Err(e) => return setup_failed(daemon, &e),
    };
    if let Some(Err(e)) = pidfile.as_mut().map(Pidfile::write_pid) {
        return setup_failed(daemon, &e);
    }
    // Everything is open and no other thread exists yet.
    if let Some(Err(e)) = jail.map(|j| j.enter(&vm.inherited_fds_in_use())) {
        return setup_failed(daemon, &e);
    }
    if let Some(daemon) = daemon {
        if let Err(e) = daemon.ready() {
            return fail(&e);
        }
    }
    let outcome = vm.run();
    drop(pidfile);
    vmm::startup::step("VM dropped");
    if let Some(line) = vmm::startup::steps_line() {
        eprintln!("{line}");
    }
    exit_status(outcome)
}

/// Firecracker's command line and API (`cli::firecracker`).
fn run_firecracker(argv: &[String], start: StartInstant) -> ExitCode {
    match firecracker::args::parse(argv) {
        Ok(firecracker::args::FcCommand::Help) => {
            print!("{}", firecracker::args::HELP);
            ExitCode::SUCCESS
        }
        Ok(firecracker::args::FcCommand::Version) => {
            // Firecracker's format, then what this program is.
            println!("Firecracker v{}", fc_api::model::FIRECRACKER_VERSION);
            println!("microvm {}: Firecracker's API in front of a KVM VMM", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(firecracker::args::FcCommand::Run(args)) => match firecracker::run(*args, start) {
            Ok(exit) => exit_status(Ok(exit)),
            Err(e) => fail(&e),
        },
        Err(e) => fail(&e),
    }
}

/// `jailer`: Firecracker's jailer flags; returns only if the jail could not be entered.
fn run_jailer(argv: &[String]) -> ExitCode {
    use cli::jailer::{self, args::JailerCommand};
    match jailer::args::parse(argv) {
        Ok(JailerCommand::Help) => {
            print!("{}", jailer::args::HELP);
            ExitCode::SUCCESS
        }
        Ok(JailerCommand::Version) => {
            println!("Jailer v{}", fc_api::model::FIRECRACKER_VERSION);
            println!("microvm {}: Firecracker's jailer in front of a KVM VMM", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(JailerCommand::Run(args)) => {
            eprintln!("jailer: {}", jailer::run(&args));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("jailer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The process's exit status for how the VM ended.
fn exit_status(outcome: Result<VmExit, vmm::Error>) -> ExitCode {
    match outcome {
        Ok(VmExit::Reset | VmExit::Shutdown | VmExit::Quit | VmExit::SystemReset) => ExitCode::SUCCESS,
        Ok(VmExit::Signal(sig)) => {
            eprintln!("microvm: terminating on signal {sig}");
            ExitCode::from(128u8.saturating_add(sig as u8))
        }
        Ok(VmExit::VcpuError { vcpu, error }) => fail(&format!("vcpu{vcpu}: {error}")),
        Ok(VmExit::DeviceError(error)) => fail(&error),
        // The status is what exit(2) keeps of it, as with QEMU's exit((V << 1) | 1).
        Ok(VmExit::DebugExit { status }) => ExitCode::from(status as u8),
        Err(e) => fail(&e),
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("microvm: {error}");
    ExitCode::FAILURE
}
