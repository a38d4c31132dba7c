//! The CMOS clock's timer (`-M microvm,rtc=on`): a timerfd the main thread's event loop
//! watches, armed by the device for its next update, alarm or periodic event while the
//! guest has one enabled. The device itself is `devices::legacy::Rtc`.

use devices::legacy::{host_clock, local_clock, Rtc, RtcTimer};
use devices::EventFdTrigger;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vmm_sys_util::timerfd::TimerFd;

pub type CmosRtc = Rtc<EventFdTrigger, RtcTimerFd>;

pub struct RtcTimerFd {
    timer: TimerFd,
    armed: bool,
}

impl RtcTimerFd {
    fn new() -> io::Result<Self> {
        let timer = TimerFd::new()?;
        // Non-blocking: a vCPU may re-arm the timer between epoll's report and the
        // event loop's read, and a blocking read would then wait for the next expiry.
        // SAFETY: fcntl on a descriptor we own, with flags only.
        let rc = unsafe { libc::fcntl(timer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RtcTimerFd { timer, armed: false })
    }
}

impl RtcTimer for RtcTimerFd {
    fn arm(&mut self, after: Option<Duration>) {
        let result = match after {
            // A zero duration would disarm a timerfd.
            Some(d) => self.timer.reset(d.max(Duration::from_nanos(1)), None),
            None if self.armed => self.timer.clear(),
            None => Ok(()),
        };
        match result {
            Ok(()) => self.armed = after.is_some(),
            Err(e) => log::warn!("rtc: cannot set its timer: {e}"),
        }
    }
}

/// Builds the clock, raising `irq` (an irqfd on IRQ 8), and the subscriber that serves
/// its timer. `localtime`: `-rtc base=localtime` (else UTC).
pub fn create_rtc(irq: EventFdTrigger, localtime: bool) -> io::Result<(Arc<Mutex<CmosRtc>>, RtcTicker)> {
    let timer = RtcTimerFd::new()?;
    let fd = timer.timer.as_raw_fd();
    let clock = if localtime { local_clock() } else { host_clock() };
    let rtc = Arc::new(Mutex::new(Rtc::new(clock, irq, timer)));
    Ok((rtc.clone(), RtcTicker { rtc, fd }))
}

/// Main-thread event loop subscriber: the timer went off.
pub struct RtcTicker {
    rtc: Arc<Mutex<CmosRtc>>,
    fd: RawFd,
}

impl MutEventSubscriber for RtcTicker {
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new_raw(self.fd, EventSet::IN)) {
            log::error!("event loop: cannot watch the RTC timer: {e:?}");
        }
    }

    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads 8 bytes into our buffer from the non-blocking timerfd; EAGAIN
        // (re-armed since epoll reported it) is harmless.
        let _ = unsafe { libc::read(self.fd, expirations.as_mut_ptr().cast(), expirations.len()) };
        self.rtc.lock().unwrap_or_else(|p| p.into_inner()).timer_expired();
    }
}
