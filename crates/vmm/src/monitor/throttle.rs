//! QEMU's rate limit for the events a guest can cause (`monitor_qapi_event_conf`): at most
//! one per second of each event, of VSERPORT_CHANGE one per second per port. The first
//! goes out at once; later ones within the second are held, each replacing the one held
//! before, and the one held goes out when the second ends (opening another second).
//! So a guest that flips a port or its balloon in a loop costs clients one event a
//! second, and the last state always arrives. An event keeps the time it happened.

use crate::control::{VmEvent, VmEventKind};
use std::time::{Duration, Instant};

/// QEMU's period for every rate-limited event.
pub const PERIOD: Duration = Duration::from_secs(1);

/// What one limit counts: the event, and for VSERPORT_CHANGE the port.
fn subject(kind: &VmEventKind) -> Option<String> {
    match kind {
        VmEventKind::BalloonChange { .. } => Some("BALLOON_CHANGE".into()),
        VmEventKind::VserportChange { id, .. } => Some(format!("VSERPORT_CHANGE {id}")),
        _ => None,
    }
}

struct Window {
    subject: String,
    ends: Instant,
    held: Option<VmEvent>,
}

#[derive(Default)]
pub struct RateLimit {
    windows: Vec<Window>,
}

impl RateLimit {
    /// The events to send now, in order; the rate-limited ones inside their second are
    /// held instead.
    pub fn admit(&mut self, events: Vec<VmEvent>, now: Instant) -> Vec<VmEvent> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let Some(subject) = subject(&event.kind) else {
                out.push(event);
                continue;
            };
            match self.windows.iter_mut().find(|w| w.subject == subject) {
                Some(window) => window.held = Some(event),
                None => {
                    self.windows.push(Window { subject, ends: now + PERIOD, held: None });
                    out.push(event);
                }
            }
        }
        out
    }

    /// The held events whose second is over (each opens a new second); a second that
    /// ends with nothing held closes its window.
    pub fn due(&mut self, now: Instant) -> Vec<VmEvent> {
        let mut out = Vec::new();
        self.windows.retain_mut(|w| {
            if w.ends > now {
                return true;
            }
            match w.held.take() {
                Some(event) => {
                    out.push(event);
                    w.ends = now + PERIOD;
                    true
                }
                None => false,
            }
        });
        out
    }

    /// Every held event, oldest first; the windows close.
    pub fn release_all(&mut self) -> Vec<VmEvent> {
        let mut held: Vec<VmEvent> = self.windows.drain(..).filter_map(|w| w.held).collect();
        held.sort_by_key(|e| e.at);
        held
    }

    /// When `due` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.windows.iter().map(|w| w.ends).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn port(id: &str, open: bool) -> VmEvent {
        VmEvent { kind: VmEventKind::VserportChange { id: id.into(), open }, at: SystemTime::now() }
    }

    fn balloon(actual: u64) -> VmEvent {
        VmEvent { kind: VmEventKind::BalloonChange { actual }, at: SystemTime::now() }
    }

    fn kinds(events: Vec<VmEvent>) -> Vec<VmEventKind> {
        events.into_iter().map(|e| e.kind).collect()
    }

    #[test]
    fn first_goes_at_once_then_the_last_of_the_second_when_it_ends() {
        let t0 = Instant::now();
        let mut limit = RateLimit::default();
        let stop = VmEvent { kind: VmEventKind::Stop, at: SystemTime::now() };
        let out = limit.admit(vec![port("a", true), stop, port("a", false), port("a", true), balloon(5)], t0);
        assert_eq!(
            kinds(out),
            [
                VmEventKind::VserportChange { id: "a".into(), open: true },
                VmEventKind::Stop,
                VmEventKind::BalloonChange { actual: 5 },
            ],
            "not limited: STOP; first of their kind: the port's and the balloon's"
        );
        assert_eq!(limit.admit(vec![port("b", true)], t0).len(), 1, "another port has its own second");
        assert_eq!(limit.next_deadline(), Some(t0 + PERIOD));
        assert!(limit.due(t0 + PERIOD / 2).is_empty());
        assert_eq!(kinds(limit.due(t0 + PERIOD)), [VmEventKind::VserportChange { id: "a".into(), open: true }]);
        // Port a's held event opened a new second; b and the balloon held nothing: closed.
        assert_eq!(limit.next_deadline(), Some(t0 + 2 * PERIOD));
        assert_eq!(limit.admit(vec![balloon(6)], t0 + PERIOD).len(), 1);
        assert!(limit.admit(vec![port("a", false)], t0 + PERIOD).is_empty());
        assert_eq!(kinds(limit.due(t0 + 2 * PERIOD)).len(), 1);
        assert!(limit.due(t0 + 3 * PERIOD).is_empty());
        assert_eq!(limit.next_deadline(), None, "quiet subjects leave no window behind");
    }

    #[test]
    fn at_the_end_everything_held_goes_out_in_order() {
        let t0 = Instant::now();
        let mut limit = RateLimit::default();
        let _ = limit.admit(vec![balloon(1), port("a", true)], t0);
        let later = |mut e: VmEvent, us| {
            e.at = UNIX_EPOCH + Duration::from_micros(us);
            e
        };
        assert!(limit.admit(vec![later(port("a", false), 1), later(balloon(2), 2)], t0).is_empty());
        assert_eq!(
            kinds(limit.release_all()),
            [VmEventKind::VserportChange { id: "a".into(), open: false }, VmEventKind::BalloonChange { actual: 2 }]
        );
        assert_eq!(limit.next_deadline(), None);
    }

    #[test]
    fn a_flood_costs_one_event_a_second() {
        let t0 = Instant::now();
        let mut limit = RateLimit::default();
        let mut sent = 0;
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            sent += limit.due(now).len();
            sent += limit.admit(vec![port("a", ms % 2 == 0), balloon(ms)], now).len();
        }
        // Two subjects, ten seconds: two events a second (and the first two at once).
        assert!((20..=22).contains(&sent), "{sent} events");
    }
}
