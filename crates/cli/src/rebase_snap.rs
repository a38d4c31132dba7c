//! `microvm rebase-snap --base-file BASE --diff-file DIFF`: Firecracker's tool of the same
//! name and flags, on microvm's memory files (`vmm::snapshot::rebase`): merges a diff
//! snapshot's memory into its base's, in place.

use crate::entry::ExitCode;
use std::path::PathBuf;

pub const USAGE: &str = "usage: microvm rebase-snap --base-file BASE_MEMORY_FILE --diff-file DIFF_MEMORY_FILE";

pub fn main(args: &[String]) -> ExitCode {
    let (mut base, mut diff) = (None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        // Firecracker's tool takes `--flag value`; `--flag=value` too, as most tools do.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let slot = match flag {
            "--base-file" => &mut base,
            "--diff-file" => &mut diff,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage(&format!("unknown argument {arg:?}")),
        };
        match inline.or_else(|| args.next().cloned()) {
            Some(value) => *slot = Some(PathBuf::from(value)),
            None => return usage(&format!("{flag} needs a file")),
        }
    }
    let (Some(base), Some(diff)) = (base, diff) else {
        return usage("both --base-file and --diff-file are needed");
    };
    match vmm::snapshot::rebase::rebase(&base, &diff) {
        Ok(done) => {
            println!(
                "{}: now the memory of snapshot {:08x} ({} KiB copied from {})",
                base.display(),
                done.snapshot,
                done.copied >> 10,
                diff.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("microvm: rebase-snap: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(what: &str) -> ExitCode {
    eprintln!("microvm: rebase-snap: {what}; {USAGE}");
    ExitCode::FAILURE
}
