//! `microvm snapshot-pages PID FILE[,offset=N]`: records the guest pages that the
//! restore of FILE running as process PID has touched so far, as FILE.pages; later
//! restores of FILE fault them in before their vCPUs run (vmm::snapshot::prefetch).

use crate::entry::ExitCode;
use std::path::{Path, PathBuf};
use vmm::snapshot::prefetch::{format_list, list_path, record, Identity, PrefetchError};

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

/// Why no list was recorded.
#[derive(Debug, thiserror::Error)]
enum PagesError {
    /// The text after `,offset=`, as given.
    #[error("bad offset {0:?}")]
    Offset(String),
    #[error(transparent)]
    Snapshot(#[from] vmm::snapshot::SnapshotError),
    #[error("{}: its memory is in a file of its own: only inline memory is recorded", .0.display())]
    SeparateMemory(PathBuf),
    #[error(transparent)]
    Record(#[from] PrefetchError),
    #[error("{}: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

fn run(pid: i32, file: &str) -> Result<String, PagesError> {
    let (path, offset) = match file.rsplit_once(",offset=") {
        Some((path, offset)) => (path, offset.parse::<u64>().map_err(|_| PagesError::Offset(offset.to_owned()))?),
        None => (file, 0),
    };
    let path = Path::new(path);
    let (_, header, _) = vmm::snapshot::read(path, offset)?;
    let Some(memory_offset) = header.memory_offset else {
        return Err(PagesError::SeparateMemory(path.to_path_buf()));
    };
    let state_crc = vmm::snapshot::read_state_crc(path, offset)?;
    let pages = record(pid, path, offset + memory_offset)?;
    let list = list_path(path);
    let identity = Identity { state_crc, memory_len: header.memory_len };
    std::fs::write(&list, format_list(identity, &pages))
        .map_err(|source| PagesError::Write { path: list.clone(), source })?;
    let written: u64 = pages.written.iter().map(|(_, n)| n).sum();
    Ok(format!(
        "{} pages in {} runs ({written} written) written to {}",
        pages.pages(),
        pages.runs.len(),
        list.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::{run, PagesError};
    use std::error::Error;

    #[test]
    fn a_bad_offset_or_file_is_a_typed_error_that_keeps_its_cause() {
        let e = run(1, "/nonexistent/vm.snap,offset=x").unwrap_err();
        assert!(matches!(&e, PagesError::Offset(o) if o == "x"), "{e:?}");
        assert_eq!(e.to_string(), "bad offset \"x\"");
        let e = run(1, "/nonexistent/vm.snap").unwrap_err();
        assert!(matches!(e, PagesError::Snapshot(_)), "{e:?}");
        // Transparent: the snapshot's own message, and the I/O error as its source.
        assert!(e.to_string().starts_with("snapshot /nonexistent/vm.snap: "), "{e}");
        assert!(e.source().is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()), "{e:?}");
    }
}
