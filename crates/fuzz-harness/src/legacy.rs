//! The legacy ports a guest reaches with in/out: the 16550A serial (COM1), the CMOS clock
//! and the i8042 command port, each on its own offsets, in any order and width.

use crate::bytes::Bytes;
use devices::bus::BusDevice;
use devices::legacy::{I8042Reset, Rtc, RtcTimer, SerialPort};
use devices::EventFdTrigger;
use std::time::Duration;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

struct NoTimer;

impl RtcTimer for NoTimer {
    fn arm(&mut self, _: Option<Duration>) {}
}

fn trigger() -> EventFdTrigger {
    EventFdTrigger::new(EventFd::new(EFD_NONBLOCK).expect("eventfd"))
}

pub fn legacy_ports(data: &[u8]) {
    let mut serial = SerialPort::new(trigger(), Box::new(std::io::sink()));
    // A clock that moves with the input, including backwards and far.
    let start = Duration::from_secs(1_700_000_000);
    let mut rtc = Rtc::new(Box::new(move || start), trigger(), NoTimer);
    let mut i8042 = I8042Reset::new(trigger());
    let mut b = Bytes::new(data);
    for _ in 0..1024 {
        if b.is_empty() {
            break;
        }
        let op = b.u8();
        let device: &mut dyn BusDevice = match op % 3 {
            0 => &mut serial,
            1 => &mut rtc,
            _ => &mut i8042,
        };
        let offset = u64::from(b.u8() % 8);
        let width = [1, 2, 4][usize::from(op >> 2) % 3];
        let mut buf = [0u8; 4];
        if op & 0x40 != 0 {
            buf[..width].copy_from_slice(&b.u32().to_le_bytes()[..width]);
            device.write(offset, &buf[..width]);
        } else {
            device.read(offset, &mut buf[..width]);
        }
        if op & 0x80 != 0 {
            rtc.timer_expired();
        }
    }
}
