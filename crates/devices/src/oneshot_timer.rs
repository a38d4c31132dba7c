//! A one-shot timerfd for an event loop (the CMOS clock's next event, the end of a QMP
//! rate-limited event's second, a virtio device's rate limiter refilling).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use vmm_sys_util::timerfd::TimerFd;

pub struct OneShotTimer {
    timer: TimerFd,
    armed: bool,
}

impl OneShotTimer {
    pub fn new() -> io::Result<Self> {
        let timer = TimerFd::new()?;
        // Non-blocking: the timer may be re-armed between epoll's report and the event
        // loop's read, and a blocking read would then wait for the next expiry.
        // SAFETY: fcntl on a descriptor we own, with flags only.
        let rc = unsafe { libc::fcntl(timer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OneShotTimer { timer, armed: false })
    }

    /// Fires once `after` from now; `None` disarms it.
    pub fn arm(&mut self, after: Option<Duration>) -> io::Result<()> {
        match after {
            // A zero duration would disarm a timerfd.
            Some(d) => self.timer.reset(d.max(Duration::from_nanos(1)), None)?,
            None if self.armed => self.timer.clear()?,
            None => {}
        }
        self.armed = after.is_some();
        Ok(())
    }
}

/// Consumes the expiry epoll reported for the timer behind `fd`, so it stops being
/// readable (the CMOS clock's ticker only has the fd: the device owns its timer).
pub fn acknowledge_expiry(fd: RawFd) {
    let mut expirations = [0u8; 8];
    // SAFETY: reads 8 bytes into our buffer from a non-blocking timerfd; EAGAIN
    // (re-armed since epoll reported it) is harmless.
    let _ = unsafe { libc::read(fd, expirations.as_mut_ptr().cast(), expirations.len()) };
}

impl AsRawFd for OneShotTimer {
    fn as_raw_fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }
}

/// The CMOS clock's timer (`-M microvm,rtc=on`) is one of these.
impl crate::legacy::RtcTimer for OneShotTimer {
    fn arm(&mut self, after: Option<Duration>) {
        if let Err(e) = OneShotTimer::arm(self, after) {
            log::warn!("rtc: cannot set its timer: {e}");
        }
    }
}
