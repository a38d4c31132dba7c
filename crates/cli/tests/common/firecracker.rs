//! Firecracker's API as its users drive it: `curl --unix-socket` requests, in the shape of
//! Firecracker's getting-started guide, against a microvm started with `--api-sock`.

use super::*;
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

/// One request with curl over the API socket, as the getting-started guide makes them,
/// checked against Firecracker's OpenAPI file (crates/fc-openapi: a body the file rejects
/// must get 400, every answer matches its status's schema): the test fails here, naming
/// the exchange, when it does not.
pub fn curl(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Answer {
    let (answer, exchange) = exchange(socket, method, path, body);
    if let Err(mismatch) = spec().check(&exchange) {
        panic!("{exchange}\ndoes not match Firecracker's OpenAPI file: {}", fc_openapi::describe(&mismatch));
    }
    answer
}

/// [`curl`] for a request a test sends outside the file on purpose (a method or path the
/// file does not have, a body that is not JSON): the check is that it got Firecracker's
/// 400 fault. One the file does describe fails here: it must go through [`curl`].
pub fn curl_outside(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Answer {
    let (answer, exchange) = exchange(socket, method, path, body);
    if let Err(mismatch) = spec().check_outside(&exchange) {
        panic!("{exchange}\nsent outside Firecracker's OpenAPI file: {}", fc_openapi::describe(&mismatch));
    }
    answer
}

/// One request a test writes by hand on a raw stream: method, path, body.
pub type RawRequest<'a> = (&'a str, &'a str, Option<&'a str>);

/// Checks what a raw stream got back against the file, as [`curl`] does: `text` holds the
/// answers to `requests` in order (keep-alive, pipelining). A request outside the file
/// (bytes that are not HTTP) is checked as [`curl_outside`] does.
pub fn check_raw(requests: &[RawRequest], text: &str) {
    let answers = raw_answers(text);
    assert_eq!(answers.len(), requests.len(), "one answer per request: {text:?}");
    for ((method, path, body), (status, answer)) in requests.iter().zip(answers) {
        let exchange = fc_openapi::Exchange {
            method: method.to_string(),
            path: path.to_string(),
            request: body.map(str::to_owned),
            status,
            answer,
        };
        let spec = spec();
        let checked = match spec.operation(method, path) {
            Some(_) => spec.check(&exchange).map(drop),
            None => spec.check_outside(&exchange),
        };
        if let Err(mismatch) = checked {
            panic!("{exchange}\ndoes not match Firecracker's OpenAPI file: {}", fc_openapi::describe(&mismatch));
        }
    }
}

/// The (status, body) of each HTTP/1.1 answer in `text`, framed by its Content-Length.
fn raw_answers(mut text: &str) -> Vec<(u16, Option<String>)> {
    let mut answers = Vec::new();
    while let Some(rest) = text.strip_prefix("HTTP/1.1 ") {
        let status = rest.get(..3).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status line: {text:?}"));
        let (head, after) = rest.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of headers: {text:?}"));
        let length = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length")))
            .map_or(0, |(_, n)| n.trim().parse().unwrap_or_else(|_| panic!("Content-Length: {head:?}")));
        let (body, next) = after.split_at(length);
        answers.push((status, (!body.is_empty()).then(|| body.to_owned())));
        text = next;
    }
    assert!(text.is_empty(), "not an HTTP/1.1 answer: {text:?}");
    answers
}

fn spec() -> &'static fc_openapi::Spec {
    fc_openapi::Spec::shared().unwrap_or_else(|e| panic!("Firecracker's OpenAPI file: {}", fc_openapi::describe(e)))
}

fn exchange(socket: &Path, method: &str, path: &str, body: Option<&str>) -> (Answer, fc_openapi::Exchange) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--unix-socket"]).arg(socket);
    cmd.args(["-X", method, &format!("http://localhost{path}")]);
    cmd.args(["-H", "Accept: application/json", "-w", "\n%{http_code}"]);
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", body]);
    }
    let out = cmd.output().expect("run curl (the Firecracker API tests need curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status: u16 = status.trim().parse().unwrap_or_else(|_| panic!("curl {method} {path}: {text:?} {out:?}"));
    let parsed = if answer.is_empty() { Value::Null } else { serde_json::from_str(answer).expect("JSON body") };
    let exchange = fc_openapi::Exchange {
        method: method.to_owned(),
        path: path.to_owned(),
        request: body.map(str::to_owned),
        status,
        answer: (!answer.is_empty()).then(|| answer.to_owned()),
    };
    (Answer { status, body: parsed }, exchange)
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

/// A Firecracker-mode microvm on `socket` that has booted the tiny guest `kernel` (1 vCPU,
/// 32 MiB, the console on its stdout) through the API.
pub fn start_tiny_guest(socket: &Path, kernel: &Path) -> Running {
    start_tiny_guest_with(socket, kernel, r#"{"vcpu_count": 1, "mem_size_mib": 32}"#)
}

/// [`start_tiny_guest`] with `machine` as its `/machine-config`.
pub fn start_tiny_guest_with(socket: &Path, kernel: &Path, machine: &str) -> Running {
    let mut vm = firecracker(socket, &[]);
    wait_for_socket(socket, &mut vm);
    let boot = serde_json::json!({ "kernel_image_path": kernel, "boot_args": "console=ttyS0" });
    assert_eq!(put(socket, "/boot-source", &boot.to_string()).status, 204);
    assert_eq!(put(socket, "/machine-config", machine).status, 204);
    assert_eq!(put(socket, "/actions", r#"{"action_type": "InstanceStart"}"#).status, 204);
    vm
}
