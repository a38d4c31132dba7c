//! The SIGSYS report. Filters answer a call outside the list with SECCOMP_RET_TRAP; this
//! handler writes one line naming the call and the thread kind, then issues the very same
//! call again: the filter traps it again while SIGSYS is blocked (it is, inside its own
//! handler), and the kernel then kills the whole process with SIGSYS. So the process dies
//! by SIGSYS, as with SECCOMP_RET_KILL_PROCESS, and the handler needs no call of its own
//! besides `write` (and `clock_gettime`, on every list). With Firecracker's metrics on, it
//! first writes their last line, `seccomp.num_faults` 1, as Firecracker's handler does.

use crate::syscall_names::syscall_name;
use crate::ThreadKind;
use std::cell::Cell;

thread_local! {
    /// The kind of this thread's filter, for the report; `None` before one is installed.
    static KIND: Cell<Option<ThreadKind>> = const { Cell::new(None) };
}

pub(crate) fn set_thread_kind(kind: ThreadKind) {
    KIND.with(|k| k.set(Some(kind)));
}

/// si_code of a SIGSYS raised by a seccomp filter.
const SYS_SECCOMP: i32 = 1;

/// The `_sigsys` member of siginfo_t (x86_64 layout after the three ints and padding).
#[repr(C)]
struct SigsysInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    call_addr: *mut libc::c_void,
    syscall: i32,
    arch: u32,
}

/// A line assembled without allocating (the handler may interrupt the allocator).
const LINE_MAX: usize = 256;

pub(crate) struct Line {
    pub(crate) buf: [u8; LINE_MAX],
    pub(crate) len: usize,
}

impl Line {
    pub(crate) fn new() -> Line {
        Line { buf: [0; LINE_MAX], len: 0 }
    }

    pub(crate) fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    pub(crate) fn push_number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn push_hex(&mut self, mut n: u64) {
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        self.push(b"0x");
        self.push(&digits[i..]);
    }
}

/// The line written for a trapped call, with its first three arguments (where the
/// conditions look: an ioctl's request, an fcntl's command, mmap's prot):
/// `microvm: seccomp: the vcpu thread made system call fcntl (72, 0x3, 0x406, 0x3), which its
/// allowlist does not have; ending with SIGSYS`.
fn report_line(kind: Option<ThreadKind>, nr: i64, args: [u64; 3]) -> Line {
    let mut line = Line::new();
    line.push(b"microvm: seccomp: the ");
    line.push(kind.map_or("unfiltered", ThreadKind::name).as_bytes());
    line.push(b" thread made system call ");
    line.push(syscall_name(nr).unwrap_or("unknown").as_bytes());
    line.push(b" (");
    line.push_number(nr as u64);
    for arg in args {
        line.push(b", ");
        line.push_hex(arg);
    }
    line.push(b"), which its allowlist does not have; ending with SIGSYS\n");
    line
}

/// The wall clock in milliseconds, without allocating.
pub(crate) fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Firecracker's metrics line reduced to what a dying process knows: the fault.
fn metrics_line(now_ms: u64) -> Line {
    let mut line = Line::new();
    line.push(b"{\"utc_timestamp_ms\":");
    line.push_number(now_ms);
    line.push(b",\"seccomp\":{\"num_faults\":1}}\n");
    line
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t; for SIGSYS its union holds `_sigsys`,
    // which SigsysInfo lays out as the kernel does on x86_64.
    let sys = unsafe { &*(info as *const SigsysInfo) };
    if sys.code != SYS_SECCOMP {
        // Sent by someone, not raised by a filter: nothing to name; die as SIGSYS would.
        // SAFETY: _exit has no preconditions.
        unsafe { libc::_exit(128 + libc::SIGSYS) };
    }
    let nr = i64::from(sys.syscall);
    // SAFETY: `context` is the ucontext_t the kernel passed; the argument registers are
    // read as the trapped call saw them.
    let regs = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext.gregs };
    let arg = |r: libc::c_int| regs[r as usize];
    let shown = [arg(libc::REG_RDI) as u64, arg(libc::REG_RSI) as u64, arg(libc::REG_RDX) as u64];
    let line = report_line(KIND.with(Cell::get), nr, shown);
    // SAFETY: writes `len` initialised bytes of our buffer to stderr.
    let _ = unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    metrics::SECCOMP.num_faults.set(1);
    if let Some(fd) = metrics::last_line_fd() {
        let line = metrics_line(now_ms());
        // SAFETY: as above, to the metrics file's descriptor.
        let _ = unsafe { libc::write(fd, line.buf.as_ptr().cast(), line.len) };
    }
    // SAFETY: re-issues the call the filter just refused, with its own arguments: the
    // filter's verdict depends only on them, so it is refused again, now with SIGSYS
    // blocked, and the kernel ends the process with SIGSYS. The call never runs.
    unsafe {
        libc::syscall(
            nr,
            arg(libc::REG_RDI),
            arg(libc::REG_RSI),
            arg(libc::REG_RDX),
            arg(libc::REG_R10),
            arg(libc::REG_R8),
            arg(libc::REG_R9),
        )
    };
    // Unreachable while the filter holds; never return into the refused call.
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(128 + libc::SIGSYS) };
}

/// Installs the SIGSYS handler for the whole process; before any filter.
pub fn install_handler() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; we fill the handler, flags and an empty mask
    // (SIGSYS itself stays blocked while the handler runs: see the module comment).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigsys as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dying_metrics_line_is_firecrackers_json() {
        let line = metrics_line(1_700_000_000_123);
        assert_eq!(
            std::str::from_utf8(&line.buf[..line.len]).unwrap(),
            "{\"utc_timestamp_ms\":1700000000123,\"seccomp\":{\"num_faults\":1}}\n"
        );
    }

    /// A process that makes a refused call writes the metrics line, then dies by SIGSYS:
    /// this test runs itself again as that process (the filter is for good).
    #[test]
    fn a_refused_call_writes_the_metrics_line_before_the_process_dies() {
        const CHILD: &str = "MICROVM_TEST_SIGSYS_METRICS";
        if let Some(path) = std::env::var_os(CHILD) {
            let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            metrics::set_last_line_fd(Some(std::os::fd::AsRawFd::as_raw_fd(&file)));
            let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: setrlimit reads our struct; no core file for the expected death.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
            let sandbox = crate::Sandbox::new(true).unwrap();
            sandbox.enter(ThreadKind::Vcpu).unwrap();
            // Not on the vCPU list.
            // SAFETY: getppid has no preconditions; the filter refuses it anyway.
            unsafe { libc::getppid() };
            unreachable!("the refused call returned");
        }
        let path = std::env::temp_dir().join(format!("microvm-sigsys-metrics-{}", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sigsys::tests::a_refused_call_writes_the_metrics_line_before_the_process_dies"])
            .env(CHILD, &path)
            .output()
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("system call getppid"), "{out:?}");
        assert!(
            text.starts_with("{\"utc_timestamp_ms\":") && text.ends_with(",\"seccomp\":{\"num_faults\":1}}\n"),
            "{text}"
        );
    }

    #[test]
    fn the_line_names_the_call_and_the_thread() {
        let line = report_line(Some(ThreadKind::Vcpu), libc::SYS_fcntl, [3, 0x406, 0]);
        assert_eq!(
            std::str::from_utf8(&line.buf[..line.len]).unwrap(),
            "microvm: seccomp: the vcpu thread made system call fcntl (72, 0x3, 0x406, 0x0), which its allowlist \
             does not have; ending with SIGSYS\n"
        );
    }
}
