//! The Firecracker front end's API as its users reach it: `curl --unix-socket`, the way
//! Firecracker's getting-started guide makes each request.

use super::{microvm, Running, RUN_TIMEOUT};
use serde_json::Value;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// What curl got: status and body (JSON when there is one).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn fault(&self) -> &str {
        self.body["fault_message"].as_str().unwrap_or_else(|| panic!("no fault_message in {}", self.body))
    }
}

/// One request with curl over the API socket, as the getting-started guide makes them.
pub fn curl(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--unix-socket"]).arg(socket);
    cmd.args(["-X", method, &format!("http://localhost{path}")]);
    cmd.args(["-H", "Accept: application/json", "-w", "\n%{http_code}"]);
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", body]);
    }
    let out = cmd.output().expect("run curl (the Firecracker API tests need curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status: u16 = status.trim().parse().unwrap_or_else(|_| panic!("curl {method} {path}: {text:?} {out:?}"));
    let body = if body.is_empty() { Value::Null } else { serde_json::from_str(body).expect("JSON body") };
    Answer { status, body }
}

pub fn put(socket: &Path, path: &str, body: &str) -> Answer {
    curl(socket, "PUT", path, Some(body))
}

pub fn wait_for_socket(path: &Path, vm: &mut Running) {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while UnixStream::connect(path).is_err() {
        assert!(Instant::now() < deadline, "no API socket at {}", path.display());
        if let Ok(Some(status)) = vm.child.try_wait() {
            panic!("microvm exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn firecracker(socket: &Path, extra: &[&str]) -> Running {
    let mut cmd = microvm();
    cmd.arg("--api-sock").arg(socket).args(["--id", "fc-test"]).args(extra);
    Running::spawn(cmd)
}
