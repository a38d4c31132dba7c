//! The legacy ports a guest reaches with in/out: the 16550A serial (COM1), the CMOS clock,
//! the reset-only i8042 command port and the whole i8042 controller (`-device i8042`: data
//! and command ports, with keys typed from the host as `send-key` does), in any order and
//! width.

use crate::bytes::Bytes;
use devices::bus::BusDevice;
use devices::legacy::{I8042Controller, I8042Port, I8042PortDevice, I8042Reset, Rtc, RtcTimer, SerialPort, KEYS};
use devices::EventFdTrigger;
use std::sync::{Arc, Mutex};
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
    let controller = Arc::new(Mutex::new(I8042Controller::new(trigger(), trigger())));
    let mut data_port = I8042PortDevice { controller: controller.clone(), port: I8042Port::Data };
    let mut command_port = I8042PortDevice { controller: controller.clone(), port: I8042Port::Command };
    let mut b = Bytes::new(data);
    for _ in 0..1024 {
        if b.is_empty() {
            break;
        }
        let op = b.u8();
        let device: &mut dyn BusDevice = match op % 6 {
            0 => &mut serial,
            1 => &mut rtc,
            2 => &mut i8042,
            3 => &mut data_port,
            4 => &mut command_port,
            _ => {
                let key = KEYS[usize::from(b.u8()) % KEYS.len()];
                controller.lock().unwrap().key_event(key, op & 0x40 != 0);
                continue;
            }
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
    // Whatever the guest did, each device's state restores into a freshly built one and
    // saves the same again.
    let fresh_controller = Arc::new(Mutex::new(I8042Controller::new(trigger(), trigger())));
    let mut fresh: [(&mut dyn BusDevice, Box<dyn BusDevice>); 4] = [
        (&mut serial, Box::new(SerialPort::new(trigger(), Box::new(std::io::sink())))),
        (&mut rtc, Box::new(Rtc::new(Box::new(move || start), trigger(), NoTimer))),
        (&mut i8042, Box::new(I8042Reset::new(trigger()))),
        (&mut data_port, Box::new(I8042PortDevice { controller: fresh_controller, port: I8042Port::Data })),
    ];
    for (device, new) in &mut fresh {
        let state = device.save().expect("legacy devices always save");
        new.restore(state.clone()).expect("a saved state restores");
        assert_eq!(new.save().expect("saves"), state, "restored as saved");
    }
}
