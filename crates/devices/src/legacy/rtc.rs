//! The PC's CMOS real-time clock (Motorola MC146818 register set) on ports 0x70 (index)
//! and 0x71 (data), present only with `-M microvm,rtc=on`, QEMU's spelling; off by
//! default, as in QEMU's microvm under KVM, so the default machine exposes no ports for it.
//!
//! Why offer one: distribution kernels (CONFIG_RTC_DRV_CMOS) probe these ports whether or
//! not a clock is there. Unclaimed ports read 0xff, "update in progress" for ever, and the
//! probe polls 10 ms of guest time, hundreds of port exits, before giving up: 3.3 s of a
//! 7.3 s cloud-kernel boot in the nested rig (initcall_debug). With the clock the guest
//! gets rtc0 and its boot skips that wait.
//!
//! Modelled: date and time (BCD or binary, 24- or 12-hour), settable through the SET bit
//! (the guest's clock is the host's CLOCK_REALTIME plus an offset); the alarm, update-ended
//! and periodic flags of register C, with IRQ 8 when their enable bits in register B are
//! set; 114 bytes of CMOS RAM, volatile. Not modelled: update-in-progress (the time is
//! computed at each read, so no read straddles an update: UIP always reads 0), daylight
//! saving, the divider chain (register A's divider bits are kept but the clock always
//! runs), the square-wave pin.

mod calendar;
mod state;

pub use state::RtcState;

use crate::bus::BusDevice;
use calendar::DateTime;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vm_superio::Trigger;

const REG_SECONDS: u8 = 0x00;
const REG_SECONDS_ALARM: u8 = 0x01;
const REG_MINUTES: u8 = 0x02;
const REG_MINUTES_ALARM: u8 = 0x03;
const REG_HOURS: u8 = 0x04;
const REG_HOURS_ALARM: u8 = 0x05;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_C: u8 = 0x0c;
const REG_D: u8 = 0x0d;
/// Where PCs keep the century (the ACPI FADT's default; QEMU's too).
const REG_CENTURY: u8 = 0x32;
const CMOS_SIZE: usize = 128;

const A_UIP: u8 = 0x80;
const A_RATE: u8 = 0x0f;
/// 32.768 kHz time base, 1024 Hz periodic rate: what the chip holds after power-up.
const A_DEFAULT: u8 = 0x26;
const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
const B_DEFAULT: u8 = B_24H;
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// "Valid RAM and time": the battery is fine.
const D_VRT: u8 = 0x80;
/// An alarm byte at or above this matches every value.
const ALARM_DONT_CARE: u8 = 0xc0;
const HOUR_PM: u8 = 0x80;
const _: () = assert!(B_PIE == C_PF && B_AIE == C_AF && B_UIE == C_UF);

const NANOS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// Time registers: read from the running clock unless SET holds it.
const TIME_REGS: [u8; 8] =
    [REG_SECONDS, REG_MINUTES, REG_HOURS, REG_WEEKDAY, REG_DAY, REG_MONTH, REG_YEAR, REG_CENTURY];

/// Seconds and nanoseconds since the Unix epoch: the host's wall clock, or a test's.
pub type Clock = Box<dyn Fn() -> Duration + Send>;

pub fn host_clock() -> Clock {
    Box::new(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// The host's wall clock in its local time zone (`-rtc base=localtime`): the
/// guest reads local time from the CMOS registers, as DOS and Windows expect.
/// The offset is looked up at each reading, so a DST change shows.
pub fn local_clock() -> Clock {
    Box::new(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = libc::time_t::try_from(now.as_secs()).unwrap_or(libc::time_t::MAX);
        // SAFETY: tm is plain data that localtime_r fills in.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: localtime_r reads one time_t and writes one tm, both ours.
        let offset = if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() { 0 } else { tm.tm_gmtoff };
        let shifted = i64::try_from(now.as_secs()).unwrap_or(i64::MAX).saturating_add(offset).max(0);
        Duration::new(shifted as u64, now.subsec_nanos())
    })
}

/// When the device's timer should next fire, if at all: the owner keeps a timer armed
/// accordingly (a timerfd on the event loop) and calls [`Rtc::timer_expired`].
pub trait RtcTimer: Send {
    fn arm(&mut self, after: Option<Duration>);
}

pub struct Rtc<T: Trigger, M: RtcTimer> {
    index: u8,
    cmos: [u8; CMOS_SIZE],
    /// Guest time minus host time, ns.
    offset: i128,
    clock: Clock,
    /// Pending PF/AF/UF flags, and the guest time up to which they are accounted for.
    flags: u8,
    flags_until: i128,
    /// IRQF: an enabled flag is pending (the chip's IRQ output is asserted).
    line: bool,
    /// Whether the guest wrote the century register since it set SET.
    century_written: bool,
    warned_bad_date: bool,
    irq: T,
    timer: M,
}

impl<T: Trigger, M: RtcTimer> Rtc<T, M> {
    pub fn new(clock: Clock, irq: T, timer: M) -> Self {
        let mut cmos = [0u8; CMOS_SIZE];
        cmos[usize::from(REG_A)] = A_DEFAULT;
        cmos[usize::from(REG_B)] = B_DEFAULT;
        let flags_until = nanos(clock());
        Rtc {
            index: 0,
            cmos,
            offset: 0,
            clock,
            flags: 0,
            flags_until,
            line: false,
            century_written: false,
            warned_bad_date: false,
            irq,
            timer,
        }
    }

    /// The owner's timer went off.
    pub fn timer_expired(&mut self) {
        let now = self.guest_now();
        self.account(now);
        self.rearm(now);
    }

    fn guest_now(&self) -> i128 {
        nanos((self.clock)()) + self.offset
    }

    fn reg(&self, r: u8) -> u8 {
        self.cmos[usize::from(r)]
    }

    fn set_reg(&mut self, r: u8, v: u8) {
        self.cmos[usize::from(r)] = v;
    }

    fn halted(&self) -> bool {
        self.reg(REG_B) & B_SET != 0
    }

    /// The flags of register C whose interrupt register B enables: each enable bit sits
    /// where register C has its flag.
    fn enabled_flags(&self) -> u8 {
        self.reg(REG_B) & (B_PIE | B_AIE | B_UIE)
    }

    /// Period of the periodic flag from register A's rate bits, ns.
    fn period(&self) -> Option<i128> {
        let hz: i128 = match self.reg(REG_A) & A_RATE {
            0 => return None,
            // On a 32.768 kHz time base rates 1 and 2 repeat rates 8 and 9.
            1 => 256,
            2 => 128,
            rs => 65_536 >> rs,
        };
        Some(NANOS_PER_SEC / hz)
    }

    /// Sets the flags of every event between the last accounting and `now`.
    fn account(&mut self, now: i128) {
        let last = self.flags_until;
        if now <= last {
            return;
        }
        self.flags_until = now;
        if self.halted() {
            return;
        }
        let (last_sec, now_sec) = (secs(last), secs(now));
        if now_sec > last_sec {
            self.flags |= C_UF;
            if self.alarm_rang(last_sec, now_sec) {
                self.flags |= C_AF;
            }
        }
        if let Some(p) = self.period() {
            if now.div_euclid(p) > last.div_euclid(p) {
                self.flags |= C_PF;
            }
        }
        self.update_line();
    }

    /// Whether the alarm matched a second in (after, upto].
    fn alarm_rang(&self, after: i64, upto: i64) -> bool {
        if upto - after >= SECS_PER_DAY {
            // Every pattern of hour, minute and second recurs within a day.
            return true;
        }
        ((after + 1)..=upto).any(|s| self.alarm_matches(s))
    }

    fn alarm_matches(&self, sec: i64) -> bool {
        let t = DateTime::from_unix(sec);
        let now = [self.encode(t.second), self.encode(t.minute), self.encode_hour(t.hour)];
        let alarm = [self.reg(REG_SECONDS_ALARM), self.reg(REG_MINUTES_ALARM), self.reg(REG_HOURS_ALARM)];
        alarm.iter().zip(now).all(|(&a, v)| a >= ALARM_DONT_CARE || a == v)
    }

    /// IRQF follows the pending flags the guest enabled; IRQ 8 fires when it turns on.
    /// On the chip the line then stays asserted until register C is read, so further
    /// events give no new edge: nor do they here.
    fn update_line(&mut self) {
        let line = self.flags & self.enabled_flags() != 0;
        if line && !self.line {
            if let Err(e) = self.irq.trigger() {
                log::warn!("rtc: cannot raise IRQ 8: {e:?}");
            }
        }
        self.line = line;
    }

    /// Keeps the owner's timer on the next event that would raise the line: none while
    /// the line is up (only reading C lowers it), while SET halts the clock, or while
    /// every enabled flag is already pending.
    fn rearm(&mut self, now: i128) {
        let waiting = self.enabled_flags() & !self.flags;
        let mut next: Option<i128> = None;
        if !self.line && !self.halted() {
            if waiting & (C_UF | C_AF) != 0 {
                next = Some((now.div_euclid(NANOS_PER_SEC) + 1) * NANOS_PER_SEC);
            }
            if let (true, Some(p)) = (waiting & C_PF != 0, self.period()) {
                let tick = (now.div_euclid(p) + 1) * p;
                next = Some(next.map_or(tick, |n| n.min(tick)));
            }
        }
        self.timer.arm(next.map(|t| Duration::from_nanos((t - now).clamp(1, u64::MAX.into()) as u64)));
    }

    fn binary(&self) -> bool {
        self.reg(REG_B) & B_BINARY != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    fn decode(&self, v: u8) -> Option<u8> {
        if self.binary() {
            return Some(v);
        }
        let (tens, ones) = (v >> 4, v & 0x0f);
        (tens < 10 && ones < 10).then_some(tens * 10 + ones)
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.reg(REG_B) & B_24H != 0 {
            return self.encode(hour);
        }
        let h12 = if hour % 12 == 0 { 12 } else { hour % 12 };
        self.encode(h12) | if hour >= 12 { HOUR_PM } else { 0 }
    }

    fn decode_hour(&self, v: u8) -> Option<u8> {
        if self.reg(REG_B) & B_24H != 0 {
            return self.decode(v);
        }
        let h12 = self.decode(v & !HOUR_PM).filter(|h| (1..=12).contains(h))?;
        Some(h12 % 12 + if v & HOUR_PM != 0 { 12 } else { 0 })
    }

    /// The time registers as they read at guest time `now`.
    fn time_regs(&self, now: i128) -> [(u8, u8); 8] {
        let t = DateTime::from_unix(secs(now));
        // Years outside 0..=9999 cannot be shown; the guest would have to set them.
        let year = t.year.clamp(0, 9999) as u16;
        [
            (REG_SECONDS, self.encode(t.second)),
            (REG_MINUTES, self.encode(t.minute)),
            (REG_HOURS, self.encode_hour(t.hour)),
            (REG_WEEKDAY, self.encode(t.weekday)),
            (REG_DAY, self.encode(t.day)),
            (REG_MONTH, self.encode(t.month)),
            (REG_YEAR, self.encode((year % 100) as u8)),
            (REG_CENTURY, self.encode((year / 100) as u8)),
        ]
    }

    /// Copies the running time into the registers, where the guest can change them.
    fn freeze(&mut self, now: i128) {
        for (r, v) in self.time_regs(now) {
            self.set_reg(r, v);
        }
        self.century_written = false;
    }

    /// Restarts the clock from the registers; a date that does not exist leaves the
    /// clock where it was.
    fn thaw(&mut self) {
        match self.frozen_time() {
            Some(secs) => self.offset = i128::from(secs) * NANOS_PER_SEC - nanos((self.clock)()),
            None if !self.warned_bad_date => {
                self.warned_bad_date = true;
                log::warn!("rtc: the guest set a date that does not exist; the clock keeps its time");
            }
            None => {}
        }
        // A jump of the clock is not a run of updates and alarms.
        self.flags_until = self.guest_now();
    }

    fn frozen_time(&self) -> Option<i64> {
        let yy = self.decode(self.reg(REG_YEAR)).filter(|y| *y < 100)?;
        // Linux writes the century only where ACPI says where it is: otherwise take
        // its own rule, 1970..=2069.
        let century = match self.century_written {
            true => self.decode(self.reg(REG_CENTURY))?,
            false if yy < 70 => 20,
            false => 19,
        };
        DateTime {
            year: i64::from(century) * 100 + i64::from(yy),
            month: self.decode(self.reg(REG_MONTH))?,
            day: self.decode(self.reg(REG_DAY))?,
            hour: self.decode_hour(self.reg(REG_HOURS))?,
            minute: self.decode(self.reg(REG_MINUTES))?,
            second: self.decode(self.reg(REG_SECONDS))?,
            weekday: 1,
        }
        .to_unix()
    }

    fn read_register(&mut self, r: u8) -> u8 {
        match r {
            REG_A => self.reg(REG_A) & !A_UIP,
            REG_C => {
                let now = self.guest_now();
                self.account(now);
                let value = self.flags | if self.line { C_IRQF } else { 0 };
                self.flags = 0;
                self.line = false;
                self.rearm(now);
                value
            }
            REG_D => D_VRT,
            _ if TIME_REGS.contains(&r) && !self.halted() => {
                let now = self.guest_now();
                self.time_regs(now).iter().find(|(reg, _)| *reg == r).map_or(0, |(_, v)| *v)
            }
            _ => self.reg(r),
        }
    }

    fn write_register(&mut self, r: u8, v: u8) {
        let now = self.guest_now();
        match r {
            REG_A => {
                self.account(now);
                self.set_reg(REG_A, v & !A_UIP);
                self.rearm(now);
            }
            REG_B => {
                self.account(now);
                let was_halted = self.halted();
                // Setting SET clears UIE on the chip.
                self.set_reg(REG_B, if v & B_SET != 0 { v & !B_UIE } else { v });
                match (was_halted, self.halted()) {
                    (false, true) => self.freeze(now),
                    (true, false) => self.thaw(),
                    _ => {}
                }
                self.update_line();
                let now = self.guest_now();
                self.rearm(now);
            }
            REG_C | REG_D => {}
            _ if TIME_REGS.contains(&r) => {
                // Writing one field of a running clock sets the clock from there.
                let running = !self.halted();
                if running {
                    self.freeze(now);
                }
                self.set_reg(r, v);
                self.century_written |= r == REG_CENTURY;
                if running {
                    self.thaw();
                }
            }
            _ => self.set_reg(r, v),
        }
    }
}

impl<T: Trigger + Send, M: RtcTimer> BusDevice for Rtc<T, M> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        // The index port is write-only.
        if offset == 1 {
            if let Some(b) = data.first_mut() {
                *b = self.read_register(self.index);
            }
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&v) = data.first() else { return };
        match offset {
            // Bit 7 of the index masks NMIs on a PC: nothing to mask here.
            0 => self.index = v & 0x7f,
            _ => self.write_register(self.index, v),
        }
    }

    fn save(&mut self) -> Result<crate::state::DeviceState, crate::state::StateError> {
        self.save_device()
    }

    fn restore(&mut self, state: crate::state::DeviceState) -> Result<(), crate::state::StateError> {
        self.restore_device(state)
    }
}

fn nanos(d: Duration) -> i128 {
    d.as_nanos() as i128
}

fn secs(ns: i128) -> i64 {
    ns.div_euclid(NANOS_PER_SEC) as i64
}

#[cfg(test)]
mod tests;
