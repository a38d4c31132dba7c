//! The packed ring against a driver written from the spec (virtio 1.2 §2.8.21-22): laps,
//! indirect tables, event suppression both ways, and malformed rings.

use super::*;
use crate::guest_memory::GuestMemoryMmap;

const RING: u64 = 0x1000;
const DRIVER_EVENT: u64 = 0x3000;
const DEVICE_EVENT: u64 = 0x3010;
const BUF: u64 = 0x10000;

/// A ring descriptor as the tests write it: addr, len, flags (AVAIL/USED added).
type RawDesc = (u64, u32, u16);

/// The driver's side of one packed ring.
struct Driver {
    mem: GuestMemoryMmap,
    size: u16,
    /// Driver's free-running counters: next slot to fill, next used slot to read.
    next: u16,
    used: u16,
    /// Slots each buffer id took, for reading used descriptors back.
    slots: Vec<u16>,
}

fn wrap(size: u16, counter: u16) -> bool {
    (counter / size) % 2 == 0
}

impl Driver {
    fn new(size: u16) -> (Driver, PackedRing) {
        let mem = crate::guest_memory::untracked(&[(GuestAddress(0), 1 << 20)]);
        let ring = PackedRing::new(size, RING, DRIVER_EVENT, DEVICE_EVENT, 0, 0);
        assert!(ring.is_valid(&mem));
        (Driver { mem, size, next: 0, used: 0, slots: vec![0; usize::from(size)] }, ring)
    }

    fn slot(&self, counter: u16) -> GuestAddress {
        GuestAddress(RING + u64::from(counter % self.size) * 16)
    }

    fn avail_flags(&self, counter: u16) -> u16 {
        if wrap(self.size, counter) {
            F_AVAIL
        } else {
            F_USED
        }
    }

    /// Writes raw ring descriptors (addr, len, flags without AVAIL/USED) for buffer `id`,
    /// the head's flags last.
    fn post_raw(&mut self, descs: &[RawDesc], id: u16) {
        let start = self.next;
        for (i, &(addr, len, flags)) in descs.iter().enumerate().rev() {
            let at = start.wrapping_add(i as u16);
            let flags = flags | self.avail_flags(at);
            let d = packed::Descriptor::new(addr, len, id, if i == 0 { 0 } else { flags });
            self.mem.write_obj(d, self.slot(at)).unwrap();
            if i == 0 {
                self.mem.write_obj(flags, self.slot(at).unchecked_add(DESC_FLAGS)).unwrap();
            }
        }
        if let Some(s) = self.slots.get_mut(usize::from(id)) {
            *s = descs.len() as u16;
        }
        self.next = start.wrapping_add(descs.len() as u16);
    }

    /// A chain of buffers (len, device-writable) for `id`.
    fn post(&mut self, bufs: &[(u32, bool)], id: u16) {
        let descs: Vec<_> = bufs
            .iter()
            .enumerate()
            .map(|(i, &(len, w))| {
                let next = if i + 1 < bufs.len() { F_NEXT } else { 0 };
                (BUF + i as u64 * 0x1000, len, next | if w { F_WRITE } else { 0 })
            })
            .collect();
        self.post_raw(&descs, id);
    }

    /// The next used descriptor, if the device wrote one: (id, len).
    fn take_used(&mut self) -> Option<(u16, u32)> {
        let flags: u16 = self.mem.read_obj(self.slot(self.used).unchecked_add(DESC_FLAGS)).unwrap();
        let w = wrap(self.size, self.used);
        if (flags & F_AVAIL != 0) != w || (flags & F_USED != 0) != w {
            return None;
        }
        let id: u16 = self.mem.read_obj(self.slot(self.used).unchecked_add(DESC_ID)).unwrap();
        let len: u32 = self.mem.read_obj(self.slot(self.used).unchecked_add(DESC_LEN)).unwrap();
        self.used = self.used.wrapping_add(self.slots[usize::from(id)]);
        Some((id, len))
    }

    fn set_driver_event(&self, off_wrap: u16, flags: u16) {
        self.mem.write_obj(off_wrap, GuestAddress(DRIVER_EVENT)).unwrap();
        self.mem.write_obj(flags, GuestAddress(DRIVER_EVENT + 2)).unwrap();
    }

    fn device_event(&self) -> (u16, u16) {
        (
            self.mem.read_obj(GuestAddress(DEVICE_EVENT)).unwrap(),
            self.mem.read_obj(GuestAddress(DEVICE_EVENT + 2)).unwrap(),
        )
    }
}

#[test]
fn buffers_of_one_and_three_descriptors_over_several_laps() {
    let (mut d, mut ring) = Driver::new(8);
    for round in 0..20u16 {
        // 1 + 3 = 4 slots per round: 10 laps of 8, each lap boundary crossed mid-chain
        // on odd rounds as the shapes alternate.
        let shapes: &[&[(u32, bool)]] = if round % 2 == 0 {
            &[&[(10, false)], &[(16, false), (100, true), (7, true)]]
        } else {
            &[&[(16, false), (1, true), (2, true)], &[(5, true)]]
        };
        d.post(shapes[0], 1);
        d.post(shapes[1], 5);
        let a = ring.pop(&d.mem).unwrap().expect("first buffer available");
        let b = ring.pop(&d.mem).unwrap().expect("second buffer available");
        assert!(ring.pop(&d.mem).unwrap().is_none(), "nothing more is available");
        assert_eq!((a.id, a.descriptors.len()), (1, shapes[0].len()));
        assert_eq!((b.id, b.descriptors.len()), (5, shapes[1].len()));
        for (desc, &(len, w)) in b.descriptors.iter().zip(shapes[1]) {
            assert_eq!((desc.len(), desc.is_write_only()), (len, w));
        }
        assert!(!b.descriptors.last().unwrap().has_next(), "the last descriptor ends the chain");
        assert!(b.descriptors[0].has_next() || b.descriptors.len() == 1);
        // Completed out of order: the used ring holds them in completion order.
        ring.add_used(&d.mem, 5, 40 + u32::from(round)).unwrap();
        ring.add_used(&d.mem, 1, 0).unwrap();
        assert_eq!(d.take_used(), Some((5, 40 + u32::from(round))));
        assert_eq!(d.take_used(), Some((1, 0)));
        assert_eq!(d.take_used(), None);
    }
    assert_eq!(ring.next_avail(), 80);
    assert_eq!(ring.next_used(), 80);
}

#[test]
fn indirect_table_is_followed_and_counts_one_slot() {
    let (mut d, mut ring) = Driver::new(4);
    let table = 0x8000u64;
    for (i, (len, flags)) in [(12u32, 0u16), (300, F_WRITE), (1, F_WRITE)].into_iter().enumerate() {
        // NEXT in an indirect table means nothing (§2.8.19): set on the first only.
        let flags = flags | if i == 0 { F_NEXT } else { 0 };
        d.mem
            .write_obj(
                packed::Descriptor::new(BUF + i as u64 * 0x1000, len, 0, flags),
                GuestAddress(table + i as u64 * 16),
            )
            .unwrap();
    }
    d.post_raw(&[(table, 48, F_INDIRECT)], 3);
    let chain = ring.pop(&d.mem).unwrap().unwrap();
    assert_eq!(chain.id, 3);
    let shape: Vec<_> =
        chain.descriptors.iter().map(|d| (d.addr().0, d.len(), d.is_write_only(), d.has_next())).collect();
    assert_eq!(shape, [(BUF, 12, false, true), (BUF + 0x1000, 300, true, true), (BUF + 0x2000, 1, true, false)]);
    ring.add_used(&d.mem, 3, 301).unwrap();
    assert_eq!(ring.next_used(), 1, "an indirect buffer takes one ring slot");
    assert_eq!(d.take_used(), Some((3, 301)));
}

#[test]
fn malformed_rings_are_errors_and_nothing_moves() {
    // Every slot chained to the next: a chain longer than the ring.
    let (mut d, mut ring) = Driver::new(4);
    d.post_raw(&[(BUF, 1, F_NEXT), (BUF, 1, F_NEXT), (BUF, 1, F_NEXT), (BUF, 1, F_NEXT)], 0);
    assert_eq!(ring.pop(&d.mem).unwrap_err(), PackedError::ChainTooLong(0));
    assert_eq!(ring.next_avail(), 0);

    let cases: [(&[RawDesc], PackedError); 5] = [
        (&[(0x8000, 0, F_INDIRECT)], PackedError::IndirectLength { addr: 0x8000, len: 0 }),
        (&[(0x8000, 20, F_INDIRECT)], PackedError::IndirectLength { addr: 0x8000, len: 20 }),
        (&[(0x8000, 16 * 5, F_INDIRECT)], PackedError::IndirectLength { addr: 0x8000, len: 80 }),
        (&[(0xffff_fff0, 32, F_INDIRECT)], PackedError::Memory(0xffff_fff0)),
        (&[(0x8000, 16, F_INDIRECT | F_NEXT), (BUF, 1, 0)], PackedError::IndirectWithNext(0)),
    ];
    for (descs, want) in cases {
        let (mut d, mut ring) = Driver::new(4);
        d.post_raw(descs, 0);
        assert_eq!(ring.pop(&d.mem).unwrap_err(), want);
        assert_eq!(ring.next_avail(), 0);
    }

    // A table holding an indirect descriptor.
    let (mut d, mut ring) = Driver::new(4);
    d.mem.write_obj(packed::Descriptor::new(0x9000, 16, 0, F_INDIRECT), GuestAddress(0x8000)).unwrap();
    d.post_raw(&[(0x8000, 16, F_INDIRECT)], 0);
    assert_eq!(ring.pop(&d.mem).unwrap_err(), PackedError::NestedIndirect(0x8000));

    // Lengths adding up past 4 GiB.
    let (mut d, mut ring) = Driver::new(4);
    d.post_raw(&[(BUF, u32::MAX, F_NEXT), (BUF, 2, 0)], 0);
    assert_eq!(ring.pop(&d.mem).unwrap_err(), PackedError::ChainOverflow(0));

    // A buffer id beyond the queue, and giving back a buffer never taken.
    let (mut d, mut ring) = Driver::new(4);
    d.post_raw(&[(BUF, 1, 0)], 9);
    assert_eq!(ring.pop(&d.mem).unwrap_err(), PackedError::UnknownId(9));
    assert_eq!(ring.add_used(&d.mem, 4, 0).unwrap_err(), PackedError::UnknownId(4));

    // A ring outside guest memory is not valid; a misaligned one neither.
    let mem = crate::guest_memory::untracked(&[(GuestAddress(0), 1 << 20)]);
    assert!(!PackedRing::new(4, (1 << 20) - 32, DRIVER_EVENT, DEVICE_EVENT, 0, 0).is_valid(&mem));
    assert!(!PackedRing::new(4, RING + 8, DRIVER_EVENT, DEVICE_EVENT, 0, 0).is_valid(&mem));
    assert!(!PackedRing::new(4, RING, DRIVER_EVENT + 2, DEVICE_EVENT, 0, 0).is_valid(&mem));
}

#[test]
fn a_buffer_put_back_is_taken_again() {
    let (mut d, mut ring) = Driver::new(4);
    d.post(&[(8, true)], 2);
    d.post(&[(8, true), (8, true)], 0);
    assert_eq!(ring.pop(&d.mem).unwrap().unwrap().id, 2);
    assert_eq!(ring.pop(&d.mem).unwrap().unwrap().id, 0);
    ring.go_to_previous_position();
    assert_eq!(ring.next_avail(), 1);
    assert_eq!(ring.pop(&d.mem).unwrap().unwrap().id, 0);
    assert_eq!(ring.avail_end(&d.mem).unwrap(), 3);
}

#[test]
fn driver_event_flags_decide_interrupts() {
    let (mut d, mut ring) = Driver::new(4);
    d.post(&[(1, true)], 0);
    ring.pop(&d.mem).unwrap();
    ring.add_used(&d.mem, 0, 1).unwrap();
    d.set_driver_event(0, EVENT_DISABLE);
    assert!(!ring.needs_notification(&d.mem).unwrap());
    d.set_driver_event(0, EVENT_ENABLE);
    assert!(ring.needs_notification(&d.mem).unwrap());
}

#[test]
fn event_idx_interrupts_only_when_the_named_slot_is_used() {
    let (mut d, mut ring) = Driver::new(4);
    ring.set_event_idx(true);
    // The driver asks for an interrupt once slot 2 of the second lap (wrap 0) is used.
    d.set_driver_event(2, EVENT_DESC);
    let mut notified = Vec::new();
    for i in 0..8u16 {
        d.post(&[(1, true)], i % 4);
        ring.pop(&d.mem).unwrap().unwrap();
        ring.add_used(&d.mem, i % 4, 1).unwrap();
        d.take_used().unwrap();
        if ring.needs_notification(&d.mem).unwrap() {
            notified.push(i);
        }
    }
    // The first check always notifies (nothing signalled yet), then only counter 6
    // (slot 2, second lap) being used does.
    assert_eq!(notified, [0, 6]);
}

#[test]
fn device_event_asks_for_or_stops_notifications() {
    let (mut d, mut ring) = Driver::new(4);
    ring.disable_notification(&d.mem).unwrap();
    assert_eq!(d.device_event().1, EVENT_DISABLE);
    assert!(!ring.enable_notification(&d.mem).unwrap(), "nothing available yet");
    assert_eq!(d.device_event().1, EVENT_ENABLE);
    d.post(&[(1, true)], 0);
    assert!(ring.enable_notification(&d.mem).unwrap(), "a buffer arrived meanwhile");

    // EVENT_IDX: the off_wrap form names the available position, wrap counter included.
    for i in 0..5u16 {
        ring.pop(&d.mem).unwrap().unwrap();
        ring.add_used(&d.mem, i % 4, 0).unwrap();
        d.take_used().unwrap();
        d.post(&[(1, true)], (i + 1) % 4);
    }
    ring.set_event_idx(true);
    ring.pop(&d.mem).unwrap().unwrap();
    // Counter 6: slot 2 of the second lap, whose wrap counter is 0.
    assert!(!ring.enable_notification(&d.mem).unwrap());
    assert_eq!(d.device_event(), (2, EVENT_DESC));
    ring.disable_notification(&d.mem).unwrap();
    assert_eq!(d.device_event(), (2, EVENT_DESC), "EVENT_IDX leaves the structure as the split ring does");
}

#[test]
fn off_wrap_maps_back_to_the_counter() {
    let (_, ring) = Driver::new(8);
    for counter in [0u16, 5, 8, 13, 16, 65535, 65528] {
        let ow = ring.off_wrap(counter);
        assert_eq!(ring.counter_of(ow, counter), counter);
        assert_eq!(ring.counter_of(ow, counter.wrapping_add(3)), counter);
    }
}
