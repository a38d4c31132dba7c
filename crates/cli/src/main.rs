//! `microvm`: the command-line front end. Parses a QEMU-style command line
//! into a `VmConfig`, builds the VM, runs it, and turns the outcome into an
//! exit status. Every failure is reported as one line on stderr.

mod args;

mod logger;

use args::Command;
use std::process::ExitCode;
use std::time::Instant;
use vmm::{VmExit, Vmm};

/// Set to 1 to print the start-up time, like `--report-start-time`.
const REPORT_START_TIME_ENV: &str = "MICROVM_REPORT_START_TIME";

fn main() -> ExitCode {
    let start = Instant::now();
    logger::init();
    let argv: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|a| a.into_string()).collect();
    let argv = match argv {
        Ok(argv) => argv,
        Err(bad) => return fail(&format!("argument {bad:?} is not valid UTF-8")),
    };
    let mut config = match args::parse(argv) {
        Ok(Command::Run(launch)) => launch.vm,
        Ok(Command::DumpMtree(config)) => {
            return match Vmm::new(&config, start) {
                Ok(vmm) => {
                    print!("{}", vmm::address_map::format_mtree(&vmm.address_map()));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            };
        }
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("microvm {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e),
    };
    if std::env::var_os(REPORT_START_TIME_ENV).is_some_and(|v| v == "1") {
        config.report_start_time = true;
    }
    let outcome = Vmm::new(&config, start).and_then(Vmm::run);
    match outcome {
        Ok(VmExit::Reset | VmExit::Shutdown) => ExitCode::SUCCESS,
        Ok(VmExit::Signal(sig)) => {
            eprintln!("microvm: terminating on signal {sig}");
            ExitCode::from(128u8.saturating_add(sig as u8))
        }
        Ok(VmExit::VcpuError { vcpu, message }) => fail(&format!("vcpu{vcpu}: {message}")),
        Ok(VmExit::DeviceError(message)) => fail(&message),
        Err(e) => fail(&e),
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("microvm: {error}");
    ExitCode::FAILURE
}
