//! SIGINT, SIGTERM and SIGHUP arrive as readable events on a signalfd, so the
//! event loop ends the VM in an orderly way (terminal restored, output
//! flushed) instead of the process dying wherever it was. In solo mode there is no event
//! loop to wake: the signals stay blocked and pending, and the vCPU loop takes one with
//! sigtimedwait after KVM_RUN returns (no signalfd: one anonymous inode less to create
//! and close on every start, docs/start-path.md).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

pub struct StopSignals {
    /// The signalfd; `None` in solo mode ([`StopSignals::block_only`]).
    fd: Option<OwnedFd>,
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
        let mut signals = Self::block_only()?;
        let set = stop_set();
        // SAFETY: a valid, initialised sigset; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        signals.fd = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(signals)
    }

    /// Blocks the stop signals as [`StopSignals::install`] does, without a signalfd: for
    /// solo mode, whose only thread polls with [`StopSignals::read`].
    pub fn block_only() -> io::Result<Self> {
        let set = stop_set();
        // SAFETY: plain libc call on a valid, initialised sigset.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(StopSignals { fd: None })
    }

    /// The pending stop signal, if any (taken: it is not pending afterwards).
    pub fn read(&self) -> Option<i32> {
        let sig = self.take();
        if sig == Some(libc::SIGHUP) {
            // Firecracker's `signals.sighup`: the VM ends on it, so it is 0 or 1.
            metrics::SIGNALS.sighup.set(1);
        }
        sig
    }

    fn take(&self) -> Option<i32> {
        let Some(fd) = &self.fd else {
            let set = stop_set();
            let now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: a valid set and timeout; no siginfo asked for. A zero timeout only
            // takes a signal already pending (EAGAIN otherwise).
            let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &now) };
            return (sig > 0).then_some(sig);
        };
        // SAFETY: signalfd_siginfo is plain data; all-zero is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`.
        let n = unsafe { libc::read(fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
        (n as usize == size).then_some(info.ssi_signo as i32)
    }

    /// The signalfd an event loop watches; `None` in solo mode.
    pub fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
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
