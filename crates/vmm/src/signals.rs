//! SIGINT, SIGTERM and SIGHUP arrive as readable events on a signalfd, so the
//! event loop ends the VM in an orderly way (terminal restored, output
//! flushed) instead of the process dying wherever it was.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

pub struct StopSignals {
    fd: OwnedFd,
}

fn stop_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in STOP_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

impl StopSignals {
    /// Blocks the stop signals in this thread and every thread it creates
    /// afterwards (call it before spawning vCPUs), and opens the signalfd.
    pub fn install() -> io::Result<Self> {
        let set = stop_set();
        // SAFETY: plain libc calls on a valid, initialised sigset.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: as above; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        Ok(StopSignals { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// The pending stop signal, if any.
    pub fn read(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data; all-zero is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
        let sig = (n as usize == size).then_some(info.ssi_signo as i32);
        if sig == Some(libc::SIGHUP) {
            // Firecracker's `signals.sighup`: the VM ends on it, so it is 0 or 1.
            metrics::SIGNALS.sighup.set(1);
        }
        sig
    }
}

/// The calling thread's signal mask without the stop signals, as the kernel's 64-bit set:
/// what a vCPU run on this thread blocks in KVM_RUN, so that a stop signal arriving then
/// ends KVM_RUN with EINTR (and, blocked again on return, waits in the signalfd).
pub fn guest_mask() -> io::Result<[u8; 8]> {
    // SAFETY: sigset_t is plain data; all-zero is a valid value, filled in below.
    let mut current: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new set only reads the mask into `current`.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    for sig in STOP_SIGNALS {
        // SAFETY: sigdelset writes only the set we own; the signals are valid.
        unsafe { libc::sigdelset(&mut current, sig) };
    }
    // The kernel's set is the first 64 bits of the C library's (both glibc and musl keep
    // signal n in bit n - 1 of the first words, little-endian).
    // SAFETY: sigset_t is at least 8 bytes of plain data on x86_64 (128 in both libcs).
    Ok(unsafe { std::ptr::read_unaligned((&current as *const libc::sigset_t).cast::<[u8; 8]>()) })
}

impl AsRawFd for StopSignals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
