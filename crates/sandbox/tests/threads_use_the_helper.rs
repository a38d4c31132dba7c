//! Every thread microvm starts must go through `sandbox::spawn`, or it would run without a
//! filter. This scans the run-time crates' sources (test code excluded) for any other way
//! of starting a thread, so a feature that adds one fails here, naming the file, until it
//! uses the helper with a thread kind of its own (crates/sandbox/src/filters/).

use std::path::{Path, PathBuf};

/// Crates whose code runs inside microvm.
const RUNTIME_CRATES: [&str; 6] = ["arch", "acpi", "devices", "vmm", "cli", "qmp"];

/// Ways to start a thread other than the helper.
const THREAD_STARTS: [&str; 4] = ["thread::spawn(", "thread::Builder::new(", "thread::scope(", "pthread_create("];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code before its `#[cfg(test)]` module (tests may start threads freely).
fn runtime_code(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn no_runtime_code_starts_a_thread_without_the_helper() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    for name in RUNTIME_CRATES {
        let mut files = Vec::new();
        rust_files(&crates.join(name).join("src"), &mut files);
        for file in files {
            let file_name = file.file_name().unwrap().to_string_lossy();
            if file_name == "tests.rs"
                || file_name.starts_with("test_")
                || file.components().any(|c| c.as_os_str() == "tests")
            {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for start in THREAD_STARTS {
                for (i, line) in runtime_code(&text).lines().enumerate() {
                    if line.contains(start) && !line.trim_start().starts_with("//") {
                        offenders.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "threads started without sandbox::spawn (no seccomp filter):\n{}",
        offenders.join("\n")
    );
}
