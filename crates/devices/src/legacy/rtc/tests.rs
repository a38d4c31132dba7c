use super::*;
use crate::state::{DeviceState, StateError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// 2024-02-29 12:34:56 UTC, a Thursday.
const LEAP_DAY: u64 = 1_709_210_096;
/// Register A with rate 0: no periodic flag (the power-up default sets PF at 1024 Hz, enabled or not).
const A_NO_PERIODIC: u8 = 0x20;

#[derive(Clone, Default)]
struct Irq(Arc<AtomicUsize>);

impl Trigger for Irq {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Timer(Arc<Mutex<Option<Duration>>>);

impl RtcTimer for Timer {
    fn arm(&mut self, after: Option<Duration>) {
        *self.0.lock().unwrap() = after;
    }
}

struct Harness {
    rtc: Rtc<Irq, Timer>,
    now_ns: Arc<AtomicU64>,
    irq: Irq,
    timer: Timer,
}

impl Harness {
    fn at(secs: u64) -> Harness {
        let now_ns = Arc::new(AtomicU64::new(secs * 1_000_000_000));
        let clock_ns = now_ns.clone();
        let (irq, timer) = (Irq::default(), Timer::default());
        let clock: Clock = Box::new(move || Duration::from_nanos(clock_ns.load(Ordering::SeqCst)));
        Harness { rtc: Rtc::new(clock, irq.clone(), timer.clone()), now_ns, irq, timer }
    }

    fn advance(&self, d: Duration) {
        self.now_ns.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }

    fn get(&mut self, reg: u8) -> u8 {
        self.rtc.write(0, &[reg]);
        let mut v = [0u8];
        self.rtc.read(1, &mut v);
        v[0]
    }

    fn set(&mut self, reg: u8, v: u8) {
        self.rtc.write(0, &[reg]);
        self.rtc.write(1, &[v]);
    }

    fn irqs(&self) -> usize {
        self.irq.0.load(Ordering::SeqCst)
    }

    fn armed(&self) -> Option<Duration> {
        *self.timer.0.lock().unwrap()
    }

    /// Moves the clock to the armed deadline and fires the timer there.
    fn fire(&mut self) {
        let after = self.armed().expect("timer armed");
        self.advance(after);
        self.rtc.timer_expired();
    }

    fn clock_regs(&mut self) -> [u8; 8] {
        TIME_REGS.map(|r| self.get(r))
    }
}

#[test]
fn reads_the_host_date_in_bcd_24_hour_by_default() {
    let mut h = Harness::at(LEAP_DAY);
    // seconds, minutes, hours, weekday, day, month, year, century
    assert_eq!(h.clock_regs(), [0x56, 0x34, 0x12, 0x05, 0x29, 0x02, 0x24, 0x20]);
    assert_eq!(h.get(REG_A), A_DEFAULT, "UIP never set");
    assert_eq!(h.get(REG_B), B_24H);
    assert_eq!(h.get(REG_D), D_VRT);
    h.advance(Duration::from_secs(4));
    assert_eq!(h.get(REG_SECONDS), 0x00);
    assert_eq!(h.get(REG_MINUTES), 0x35);
}

#[test]
fn binary_and_12_hour_modes() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_B, B_BINARY);
    assert_eq!(h.clock_regs(), [56, 34, 12 | HOUR_PM, 5, 29, 2, 24, 20]);
    h.advance(Duration::from_secs(11 * 3600 + 30 * 60)); // 00:04:56 next day
    assert_eq!(h.get(REG_HOURS), 12, "midnight is 12 AM");
    assert_eq!(h.get(REG_DAY), 1);
    assert_eq!(h.get(REG_MONTH), 3);
    h.advance(Duration::from_secs(13 * 3600)); // 13:04:56
    assert_eq!(h.get(REG_HOURS), 1 | HOUR_PM);
}

#[test]
fn set_bit_holds_the_registers_and_sets_the_clock() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_B, B_24H | B_SET);
    for (reg, v) in [(REG_SECONDS, 0x58), (REG_MINUTES, 0x59), (REG_HOURS, 0x23), (REG_DAY, 0x31)] {
        h.set(reg, v);
    }
    h.set(REG_MONTH, 0x12);
    h.set(REG_YEAR, 0x99);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.get(REG_SECONDS), 0x58, "held while SET");
    h.set(REG_B, B_24H);
    assert_eq!(h.clock_regs()[..7], [0x58, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99], "1999-12-31, a Friday");
    assert_eq!(h.get(REG_CENTURY), 0x19, "years 70..99 are 19xx unless the century is written");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.clock_regs(), [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20]);
}

#[test]
fn written_century_counts_and_a_running_field_can_be_set() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_B, B_24H | B_SET);
    h.set(REG_YEAR, 0x96);
    h.set(REG_CENTURY, 0x20);
    h.set(REG_B, B_24H);
    assert_eq!((h.get(REG_YEAR), h.get(REG_CENTURY)), (0x96, 0x20), "2096 (a leap year: it is February 29)");
    h.set(REG_MINUTES, 0x07);
    assert_eq!((h.get(REG_HOURS), h.get(REG_MINUTES), h.get(REG_SECONDS)), (0x12, 0x07, 0x56));
}

#[test]
fn a_date_that_does_not_exist_leaves_the_clock_alone() {
    let mut h = Harness::at(LEAP_DAY);
    for month in [0x13, 0x00, 0x1a] {
        h.set(REG_B, B_24H | B_SET);
        h.set(REG_MONTH, month);
        h.set(REG_B, B_24H);
        assert_eq!(h.clock_regs(), [0x56, 0x34, 0x12, 0x05, 0x29, 0x02, 0x24, 0x20], "month {month:#x}");
    }
    h.set(REG_B, B_24H | B_SET);
    h.set(REG_DAY, 0x30);
    h.set(REG_B, B_24H);
    assert_eq!(h.get(REG_DAY), 0x29, "no February 30");
}

#[test]
fn update_interrupt_each_second_until_c_is_read() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_A, A_NO_PERIODIC);
    h.advance(Duration::from_millis(250));
    assert_eq!(h.armed(), None, "no timer while nothing is enabled");
    h.set(REG_B, B_24H | B_UIE);
    assert_eq!(h.armed(), Some(Duration::from_millis(750)), "next second boundary");
    h.fire();
    assert_eq!(h.irqs(), 1);
    assert_eq!(h.armed(), None, "the line stays up until C is read");
    h.advance(Duration::from_secs(3));
    assert_eq!(h.irqs(), 1, "no new edge while the line is up");
    assert_eq!(h.get(REG_C), C_IRQF | C_UF);
    assert_eq!(h.get(REG_C), 0, "reading C clears it");
    assert_eq!(h.armed(), Some(Duration::from_secs(1)));
    h.fire();
    assert_eq!(h.irqs(), 2);
    h.set(REG_B, B_24H);
    assert_eq!(h.get(REG_C), C_UF, "flags without their enable raise nothing");
    assert_eq!(h.armed(), None);
}

#[test]
fn alarm_fires_at_its_second_and_dont_care_matches_all() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_A, A_NO_PERIODIC);
    h.set(REG_SECONDS_ALARM, 0x00);
    h.set(REG_MINUTES_ALARM, 0x35);
    h.set(REG_HOURS_ALARM, 0x12);
    h.set(REG_B, B_24H | B_AIE);
    for _ in 0..3 {
        h.fire(); // :57, :58, :59
        assert_eq!(h.irqs(), 0);
        assert_eq!(h.get(REG_C), C_UF);
    }
    h.fire(); // 12:35:00
    assert_eq!(h.irqs(), 1);
    assert_eq!(h.get(REG_C), C_IRQF | C_AF | C_UF);
    h.set(REG_HOURS_ALARM, ALARM_DONT_CARE);
    h.set(REG_MINUTES_ALARM, 0xff);
    h.set(REG_SECONDS_ALARM, 0x05);
    for _ in 0..5 {
        h.fire();
    }
    assert_eq!(h.irqs(), 2, "12:35:05 matches with hours and minutes don't-care");
}

#[test]
fn an_alarm_passed_while_nobody_looked_is_still_flagged() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_A, A_NO_PERIODIC);
    h.set(REG_SECONDS_ALARM, 0x00);
    h.set(REG_MINUTES_ALARM, 0x00);
    h.set(REG_HOURS_ALARM, 0x18);
    h.get(REG_C);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.get(REG_C), C_UF, "13:34: not yet");
    h.advance(Duration::from_secs(5 * 3600));
    assert_eq!(h.get(REG_C), C_UF | C_AF, "18:00:00 went by");
    h.advance(Duration::from_secs(40 * 86_400));
    assert_eq!(h.get(REG_C), C_UF | C_AF, "more than a day: every alarm went by");
}

#[test]
fn periodic_flag_at_the_rate_of_register_a() {
    let mut h = Harness::at(LEAP_DAY);
    h.advance(Duration::from_millis(100));
    assert_eq!(h.get(REG_C), C_PF, "set at the default 1024 Hz even when not enabled");
    h.set(REG_A, 0x2f); // 2 Hz
    h.set(REG_B, B_24H | B_PIE);
    assert_eq!(h.armed(), Some(Duration::from_millis(400)), "ticks at :56.0, :56.5, ...");
    h.fire();
    assert_eq!(h.get(REG_C), C_IRQF | C_PF);
    h.set(REG_A, 0x26); // 1024 Hz, ticks aligned to the clock
    let next = h.armed().unwrap();
    assert!(next > Duration::ZERO && next <= Duration::from_nanos(976_562), "{next:?}");
    h.set(REG_A, A_NO_PERIODIC);
    assert_eq!(h.armed(), None, "rate 0: no periodic flag");
    assert_eq!(h.irqs(), 1);
}

#[test]
fn cmos_ram_index_and_read_only_registers() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(0x40, 0xab);
    h.set(0x7f, 0xcd);
    assert_eq!(h.get(0x40), 0xab);
    h.rtc.write(0, &[0x80 | 0x7f]); // NMI-mask bit of the index is ignored
    let mut v = [0u8; 2];
    h.rtc.read(1, &mut v);
    assert_eq!(v, [0xcd, 0xff]);
    h.rtc.read(0, &mut v);
    assert_eq!(v, [0xff, 0xff], "the index port is write-only");
    h.set(REG_D, 0);
    assert_eq!(h.get(REG_D), D_VRT);
    h.set(REG_A, 0xff);
    assert_eq!(h.get(REG_A), 0x7f, "UIP cannot be written");
    h.rtc.write(1, &[]);
    h.rtc.read(1, &mut []);
}

/// A clock the guest set goes on from its setting after a restore, by the host time
/// that passed meanwhile; CMOS RAM, the index and register B come back as they were.
#[test]
fn a_restored_clock_continues_from_the_guest_setting() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_B, B_SET | B_24H);
    h.set(REG_HOURS, 0x03); // the guest sets 03:34:56
    h.set(REG_B, B_24H);
    h.set(0x40, 0xab);
    h.rtc.write(0, &[0x41]);
    let saved = h.rtc.save().unwrap();

    let mut later = Harness::at(LEAP_DAY + 3600);
    later.rtc.restore(saved).unwrap();
    let mut v = [0u8];
    later.rtc.read(1, &mut v);
    assert_eq!(v, [0], "the index register came back (0x41, never written)");
    assert_eq!(later.get(REG_HOURS), 0x04, "an hour passed on the host: 04:34:56, not the host's 12:34");
    assert_eq!(later.get(REG_MINUTES), 0x34);
    assert_eq!(later.get(0x40), 0xab);
    assert_eq!(later.get(REG_B), B_24H);
}

/// An update interrupt the guest enabled and had not acknowledged is still asserted,
/// and the timer is armed for what the restored registers ask.
#[test]
fn restore_keeps_the_line_and_arms_the_timer() {
    let mut h = Harness::at(LEAP_DAY);
    h.set(REG_A, A_NO_PERIODIC);
    h.set(REG_B, B_24H | B_UIE);
    h.fire();
    assert_eq!(h.irqs(), 1);
    let saved = h.rtc.save().unwrap();
    let mut r = Harness::at(LEAP_DAY + 10);
    r.rtc.restore(saved).unwrap();
    assert_eq!(r.armed(), None, "the line is up: nothing to arm until C is read");
    assert_eq!(r.get(REG_C), C_IRQF | C_UF);
    assert!(r.armed().is_some(), "reading C re-arms the update timer");
}

#[test]
fn a_bad_saved_clock_is_refused() {
    let mut h = Harness::at(LEAP_DAY);
    let DeviceState::Rtc(mut state) = h.rtc.save().unwrap() else { panic!("rtc state") };
    state.cmos.truncate(64);
    assert!(matches!(h.rtc.restore(DeviceState::Rtc(state)), Err(StateError::Invalid { .. })));
    assert!(matches!(h.rtc.restore(DeviceState::Stateless), Err(StateError::KindMismatch { .. })));
}
