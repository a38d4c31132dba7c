//! The CMOS clock's timer (`-M microvm,rtc=on`): a timerfd the main thread's event loop
//! watches, armed by the device for its next update, alarm or periodic event while the
//! guest has one enabled. The device itself is `devices::legacy::Rtc`.

use devices::legacy::{host_clock, local_clock, Rtc};
use devices::oneshot_timer::{acknowledge_expiry, OneShotTimer};
use devices::EventFdTrigger;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

pub type CmosRtc = Rtc<EventFdTrigger, OneShotTimer>;

/// Builds the clock, raising `irq` (an irqfd on IRQ 8), and the subscriber that serves
/// its timer. `localtime`: `-rtc base=localtime` (else UTC).
pub fn create_rtc(irq: EventFdTrigger, localtime: bool) -> io::Result<(Arc<Mutex<CmosRtc>>, RtcTicker)> {
    let timer = OneShotTimer::new()?;
    let fd = timer.as_raw_fd();
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
        acknowledge_expiry(self.fd);
        self.rtc.lock().unwrap_or_else(|p| p.into_inner()).timer_expired();
    }
}
