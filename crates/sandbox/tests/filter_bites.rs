//! Each thread kind's filter bites: a forked child enters the filter, makes a call its list
//! does not have (a call absent from it, or a listed call with refused arguments), and dies
//! by SIGSYS after the one line naming the call and the thread kind. A child that survived
//! would exit 0, so a filter that lets the call through fails the test.

use sandbox::{Sandbox, ThreadKind};
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

/// Runs `call` in a forked child under `kind`'s filter; returns how the child ended and
/// what it wrote on stderr.
fn in_filtered_child(kind: ThreadKind, call: fn() -> i64) -> (libc::c_int, String) {
    // The SIGSYS handler is set before the fork: the child only installs and calls.
    let sandbox = Sandbox::new(true).expect("install the SIGSYS handler");
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only makes system calls (dup2, prctl, seccomp, the call, _exit);
    // the filters are static data and all allocation happened before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: in the child: stderr becomes the pipe; no core file is written.
        unsafe {
            libc::dup2(pipe[1], 2);
            let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        }
        if sandbox.enter(kind).is_err() {
            // SAFETY: _exit has no preconditions.
            unsafe { libc::_exit(3) };
        }
        call();
        // SAFETY: as above: reached only if the filter let the call through.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: the parent owns both ends; its write end is closed at once, so reading ends
    // at EOF when the child is gone.
    let read_end = unsafe {
        drop(OwnedFd::from_raw_fd(pipe[1]));
        OwnedFd::from_raw_fd(pipe[0])
    };
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let mut stderr = String::new();
    std::fs::File::from(read_end).read_to_string(&mut stderr).unwrap();
    (status, stderr)
}

fn assert_killed_naming(kind: ThreadKind, call: fn() -> i64, name: &str) {
    let (status, stderr) = in_filtered_child(kind, call);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "the {} filter let {name} through (wait status {status:#x}, stderr {stderr:?})",
        kind.name()
    );
    let expected = format!("microvm: seccomp: the {} thread made system call {name} (", kind.name());
    assert!(stderr.starts_with(&expected), "stderr {stderr:?} does not start with {expected:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
}

fn getppid() -> i64 {
    // SAFETY: no arguments, no memory.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

fn openat() -> i64 {
    // SAFETY: a valid NUL-terminated path; the call is refused before it runs.
    unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c"/etc/passwd".as_ptr(), libc::O_RDONLY) }
}

fn ioctl_tcgets() -> i64 {
    let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: TCGETS writes a termios into our buffer (if it ever ran).
    unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::TCGETS, termios.as_mut_ptr()) }
}

fn mmap_exec() -> i64 {
    // SAFETY: an anonymous mapping request; refused before it runs.
    unsafe {
        libc::syscall(
            libc::SYS_mmap,
            0,
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    }
}

fn socket_inet() -> i64 {
    // SAFETY: no memory; refused before it runs.
    unsafe { libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) }
}

#[test]
fn vcpu_filter_kills_an_unlisted_call() {
    assert_killed_naming(ThreadKind::Vcpu, getppid, "getppid");
}

#[test]
fn vcpu_filter_kills_an_ioctl_other_than_its_kvm_requests() {
    assert_killed_naming(ThreadKind::Vcpu, ioctl_tcgets, "ioctl");
}

#[test]
fn main_filter_kills_an_open() {
    assert_killed_naming(ThreadKind::Main, openat, "openat");
}

#[test]
fn main_filter_kills_an_executable_mapping() {
    assert_killed_naming(ThreadKind::Main, mmap_exec, "mmap");
}

#[test]
fn virtio_filter_kills_a_new_socket() {
    assert_killed_naming(ThreadKind::Virtio, socket_inet, "socket");
}

#[test]
fn virtio_filter_kills_an_executable_mapping() {
    assert_killed_naming(ThreadKind::Virtio, mmap_exec, "mmap");
}

#[test]
fn solo_filter_kills_an_open() {
    assert_killed_naming(ThreadKind::Solo, openat, "openat");
}

#[test]
fn solo_filter_kills_an_ioctl_other_than_its_kvm_requests() {
    assert_killed_naming(ThreadKind::Solo, ioctl_tcgets, "ioctl");
}

fn read_stdin() -> i64 {
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into `byte` (if it ever ran).
    unsafe { libc::syscall(libc::SYS_read, 0, &mut byte as *mut u8, 1) }
}

fn fallocate() -> i64 {
    // SAFETY: no memory; refused before it runs.
    unsafe { libc::syscall(libc::SYS_fallocate, 0, 0, 0, 512) }
}

/// An iothread serves drives only: the virtio thread's sockets (hybrid vsock) are not
/// its.
#[test]
fn iothread_filter_kills_a_new_socket() {
    assert_killed_naming(ThreadKind::Iothread, socket_inet, "socket");
}

/// A pool worker is handed transfers and flushes: not even `read` (its wake-ups are
/// futexes), nor the device thread's discards.
#[test]
fn aio_worker_filter_kills_a_read_and_a_fallocate() {
    assert_killed_naming(ThreadKind::AioWorker, read_stdin, "read");
    assert_killed_naming(ThreadKind::AioWorker, fallocate, "fallocate");
}
