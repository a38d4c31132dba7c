//! `tiny-guest write DIR`: writes each guest of [`tiny_guest::qmp_test_guests`] as
//! `DIR/NAME.elf`, so that tests in other languages (tests/qmp, Python) can boot them.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: tiny-guest write DIR";

fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, elf) in tiny_guest::qmp_test_guests() {
        std::fs::write(dir.join(format!("{name}.elf")), elf)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, dir] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if cmd != "write" {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    match write_all(Path::new(dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tiny-guest: cannot write guests to {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
