//! Helpers shared by the integration tests of the `microvm` binary: temporary
//! directories, running the binary with a deadline, and the checks every
//! error case shares.

#![allow(dead_code)] // Each test binary uses its own subset.

pub mod block;
pub mod counter;
pub mod firecracker;
pub mod pages;
pub mod qmp;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single microvm run may take before the test gives up on it.
/// The guests here run a few dozen instructions: anything near this is a hang.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable that points microvm at another KVM device node.
pub const KVM_DEVICE_ENV: &str = "MICROVM_KVM_DEVICE";

/// Whether tests that need /dev/kvm should run. They run by default; when
/// /dev/kvm is absent they fail with a clear message, unless the developer
/// opted out with MICROVM_SKIP_KVM_TESTS=1 (then this returns false and the
/// test returns early, saying so on stderr).
pub fn kvm_tests_enabled() -> bool {
    if std::env::var("MICROVM_SKIP_KVM_TESTS").as_deref() == Ok("1") {
        eprintln!("MICROVM_SKIP_KVM_TESTS=1: skipping a test that needs /dev/kvm");
        return false;
    }
    let kvm = Path::new("/dev/kvm");
    assert!(
        kvm.exists(),
        "/dev/kvm does not exist on this machine: the microvm integration tests need KVM \
         (set MICROVM_SKIP_KVM_TESTS=1 to skip them deliberately)"
    );
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(kvm) {
        panic!(
            "/dev/kvm exists but cannot be opened read-write ({e}): the microvm integration tests \
             need KVM (set MICROVM_SKIP_KVM_TESTS=1 to skip them deliberately)"
        );
    }
    true
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("microvm-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `microvm` binary under test: cargo's debug build (glibc), or the one
/// `MICROVM_BIN` names (the static musl binary of `cargo xtask binary`), so the same
/// tests check that the seccomp lists fit both C libraries.
pub fn microvm_path() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var_os("MICROVM_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_microvm")), PathBuf::from)
    })
}

/// The `microvm` binary under test, with a clean environment for the things
/// that change its behaviour: RUST_BACKTRACE=1 so that a panic, should one
/// happen, cannot hide its backtrace, and no inherited MICROVM_KVM_DEVICE.
pub fn microvm() -> Command {
    microvm_at(microvm_path())
}

/// A tiny guest `kernel` that drives its virtio-blk device itself (tiny_guest's
/// `virtio_blk_*`), on the drive `-drive DRIVE` (id `d`), its output on stdout.
pub fn tiny_block_vm(kernel: &Path, drive: &str) -> Command {
    let mut cmd = microvm();
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-nodefaults", "-serial", "stdio", "-kernel"]).arg(kernel);
    cmd.args(["-drive", drive, "-device", "virtio-blk-device,drive=d"]);
    cmd
}

/// [`microvm`] for a copy of the binary at `program`.
pub fn microvm_at(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("RUST_BACKTRACE", "1")
        .env_remove(KVM_DEVICE_ENV)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The command line of acceptance point 1, booting `kernel` with the 16550A
/// on stdio; callers append options.
pub fn microvm_legacy(kernel: &Path) -> Command {
    legacy_args(microvm(), kernel)
}

/// Appends acceptance point 1's options, booting `kernel`, to `cmd`.
pub fn legacy_args(mut cmd: Command, kernel: &Path) -> Command {
    cmd.args(["-M", "microvm,legacy", "-m", "32m", "-kernel"]).arg(kernel).args(["-serial", "stdio", "-nodefaults"]);
    cmd
}

/// What a finished microvm run left behind.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Everything known about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\nelapsed: {:?}\n--- stdout ({} bytes) ---\n{}\n--- stderr ---\n{}\n---",
            self.status,
            self.elapsed,
            self.stdout.len(),
            self.stdout_lossy(),
            self.stderr
        )
    }
}

/// Reads a pipe to its end on a thread, forwarding each chunk to a channel
/// (so a test can watch output arrive) and returning all of it at the end.
fn drain<R: Read + Send + 'static>(mut pipe: R) -> (Receiver<Vec<u8>>, JoinHandle<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
        }
        all
    });
    (rx, handle)
}

/// `cmd.spawn()`, retried while exec fails with ETXTBSY: a binary the test
/// just copied can be held open for writing by a child another test thread
/// forked meanwhile (the fd lives until that child's own exec).
fn spawn_retrying(cmd: &mut Command) -> Child {
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(20));
            }
            result => return result.expect("spawn microvm"),
        }
    }
}

/// A running microvm whose stdout and stderr are being collected.
pub struct Running {
    pub child: Child,
    pub started: Instant,
    stdout_seen: Vec<u8>,
    stdout_rx: Receiver<Vec<u8>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let started = Instant::now();
        let mut child = spawn_retrying(&mut cmd);
        let (stdout_rx, stdout) = drain(child.stdout.take().unwrap());
        let (_, stderr) = drain(child.stderr.take().unwrap());
        Running { child, started, stdout_seen: Vec::new(), stdout_rx, stdout: Some(stdout), stderr: Some(stderr) }
    }

    /// Waits until stdout contains `needle`; false if the process closed
    /// stdout or `timeout` passed first.
    pub fn wait_for_stdout(&mut self, needle: &[u8], timeout: Duration) -> bool {
        self.wait_for_stdout_that(|seen| seen.windows(needle.len()).any(|w| w == needle), timeout)
    }

    /// Waits until `done` holds for everything stdout has shown; false if the process
    /// closed stdout or `timeout` passed first.
    pub fn wait_for_stdout_that(&mut self, done: impl Fn(&[u8]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.stdout_seen) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_rx.recv_timeout(left) {
                Ok(chunk) => self.stdout_seen.extend_from_slice(&chunk),
                Err(_) => return false,
            }
        }
    }

    /// Everything the process has written to stdout so far, after `settle` for output
    /// still on its way (a paused VM's last lines).
    pub fn stdout_now(&mut self, settle: Duration) -> &[u8] {
        let deadline = Instant::now() + settle;
        while let Ok(chunk) = self.stdout_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.stdout_seen.extend_from_slice(&chunk);
        }
        &self.stdout_seen
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.child.id());
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or
    /// `None` (after killing it with SIGKILL) if it did not exit in time.
    /// `elapsed` in the result counts from `since`.
    pub fn wait(mut self, timeout: Duration, since: Instant) -> (Option<ExitStatus>, Output) {
        let deadline = Instant::now() + timeout;
        let mut status = None;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().expect("wait for microvm") {
                status = Some(s);
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let elapsed = since.elapsed();
        let finished = status.is_some();
        if !finished {
            let _ = self.child.kill();
        }
        let final_status = self.child.wait().expect("reap microvm");
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let out =
            Output { status: final_status, stdout, stderr: String::from_utf8_lossy(&stderr).into_owned(), elapsed };
        (finished.then_some(final_status), out)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that panicked half-way must not leave a VM spinning.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion (at most RUN_TIMEOUT; a hang fails the test).
pub fn run(cmd: Command) -> Output {
    let running = Running::spawn(cmd);
    let started = running.started;
    let (status, out) = running.wait(RUN_TIMEOUT, started);
    assert!(status.is_some(), "microvm did not exit within {RUN_TIMEOUT:?}; killed it\n{}", out.describe());
    out
}

/// Text that must never reach the user on an error path.
const PANIC_MARKERS: [&str; 4] = ["panicked", "RUST_BACKTRACE", "stack backtrace", "note: run with"];

/// Asserts that stderr carries no panic message or backtrace.
pub fn assert_no_panic(out: &Output) {
    for marker in PANIC_MARKERS {
        assert!(!out.stderr.contains(marker), "stderr contains {marker:?}\n{}", out.describe());
    }
}

/// The acceptance checks for bad input: a non-zero exit status (not a death
/// by signal), no panic, and stderr exactly one line mentioning at least one
/// of `culprits` (case-insensitive). Returns that line.
pub fn assert_one_line_error(out: &Output, culprits: &[&str]) -> String {
    assert_no_panic(out);
    match out.status.code() {
        Some(0) => panic!("microvm exited 0 on bad input\n{}", out.describe()),
        Some(_) => {}
        None => panic!("microvm was killed by a signal instead of exiting\n{}", out.describe()),
    }
    let trimmed = out.stderr.trim();
    assert!(!trimmed.is_empty(), "no error message on stderr\n{}", out.describe());
    assert_eq!(trimmed.lines().count(), 1, "stderr is not exactly one line\n{}", out.describe());
    let lower = trimmed.to_lowercase();
    assert!(
        culprits.iter().any(|c| lower.contains(&c.to_lowercase())),
        "the error line names none of {culprits:?}\n{}",
        out.describe()
    );
    trimmed.to_string()
}

/// The checks for a guest that ended the VM itself (i8042 reset): status 0,
/// stdout exactly `expected`, and nothing on stderr.
pub fn assert_clean_exit(out: &Output, expected: &[u8]) {
    assert_no_panic(out);
    assert!(out.status.success(), "microvm did not exit 0\n{}", out.describe());
    assert_eq!(
        out.stdout,
        expected,
        "guest serial output differs (expected {:?})\n{}",
        String::from_utf8_lossy(expected),
        out.describe()
    );
    assert!(out.stderr.trim().is_empty(), "unexpected stderr output\n{}", out.describe());
}

/// The GUID `tiny_guest::vmgenid_on_serial_then_wait_for_a_new_one` printed after `tag`
/// ("G:" at boot, "N:" after the VMGenID event) in its console output, once it is there.
pub fn guid_in(bytes: &[u8], tag: &[u8]) -> Option<[u8; 16]> {
    let at = bytes.windows(tag.len()).position(|w| w == tag)? + tag.len();
    // The 16 raw bytes and the newline after them.
    bytes.get(at..at + 17).filter(|line| line[16] == b'\n').map(|line| line[..16].try_into().unwrap())
}
