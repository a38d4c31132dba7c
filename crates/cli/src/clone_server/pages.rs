//! `microvm snapshot-pages PID FILE[,offset=N]`: records the guest pages that the
//! restore of FILE running as process PID has touched so far, as FILE.pages; later
//! restores of FILE fault them in before their vCPUs run (vmm::snapshot::prefetch).

use crate::entry::ExitCode;
use std::path::Path;
use vmm::snapshot::prefetch::{format_list, list_path, record, Identity};

pub const USAGE: &str = "usage: microvm snapshot-pages PID FILE[,offset=N]";

pub fn main(args: &[String]) -> ExitCode {
    let [pid, file] = args else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let Ok(pid) = pid.parse::<i32>() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(pid, file) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&format!("snapshot-pages: {e}")),
    }
}

fn run(pid: i32, file: &str) -> Result<String, String> {
    let (path, offset) = match file.rsplit_once(",offset=") {
        Some((path, offset)) => (path, offset.parse::<u64>().map_err(|_| format!("bad offset {offset:?}"))?),
        None => (file, 0),
    };
    let path = Path::new(path);
    let (_, header, _) = vmm::snapshot::read(path, offset).map_err(|e| e.to_string())?;
    let Some(memory_offset) = header.memory_offset else {
        return Err(format!("{}: its memory is in a file of its own: only inline memory is recorded", path.display()));
    };
    let state_crc = vmm::snapshot::read_state_crc(path, offset).map_err(|e| e.to_string())?;
    let pages = record(pid, path, offset + memory_offset).map_err(|e| e.to_string())?;
    let list = list_path(path);
    let identity = Identity { state_crc, memory_len: header.memory_len };
    std::fs::write(&list, format_list(identity, &pages)).map_err(|e| format!("{}: {e}", list.display()))?;
    let written: u64 = pages.written.iter().map(|(_, n)| n).sum();
    Ok(format!(
        "{} pages in {} runs ({written} written) written to {}",
        pages.pages(),
        pages.runs.len(),
        list.display()
    ))
}
