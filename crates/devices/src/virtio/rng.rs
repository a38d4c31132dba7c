//! virtio-rng: fills the guest's buffers from the host's getrandom(), within an optional
//! rate limit (Firecracker's `entropy` `rate_limiter`): a request over the budget waits in
//! the ring until the limit's timer fires.

use super::{
    come_back_later, read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, CHAINS_PER_TURN,
    VIRTIO_F_VERSION_1,
};
use crate::guest_memory::GuestMemoryMmap;
use crate::guest_warn;
use crate::noise::LineBudget;
use crate::rate_limiter::{Gate, LimiterConfig};
use event_manager::{EventOps, Events, MutEventSubscriber};
use virtio_bindings::virtio_ids::VIRTIO_ID_RNG;

use vm_memory::Bytes;

const QUEUE_SIZE: u16 = 256;
/// Most bytes served per request: bounds the host buffer a guest can make
/// us allocate with one huge descriptor.
const MAX_REQUEST: usize = 64 << 10;

pub struct Rng {
    activation: Activation,
    /// Set once the device stopped serving its queue (needs a reset).
    broken: bool,
    used_ring_lines: LineBudget,
    gate: Gate,
}

impl Rng {
    pub fn new() -> std::io::Result<Self> {
        Self::limited(&LimiterConfig::default())
    }

    /// A device whose requests (ops) and bytes are limited by `limits`.
    pub fn limited(limits: &LimiterConfig) -> std::io::Result<Self> {
        Ok(Rng {
            activation: Activation::new()?,
            broken: false,
            used_ring_lines: LineBudget::new(),
            gate: Gate::new(limits),
        })
    }

    fn process_queue(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        if self.gate.blocked() {
            return;
        }
        let mem = ctx.mem.clone();
        let queue = &mut ctx.queues[0];
        let mut used_any = false;
        let mut served = 0;
        loop {
            if served == CHAINS_PER_TURN {
                come_back_later(&ctx.queue_events[0]);
                break;
            }
            let chain = match queue.iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    // A corrupt avail ring: stop serving rather than guess.
                    if !self.broken {
                        log::warn!("virtio-rng: bad avail ring ({e}); device needs reset");
                        self.broken = true;
                        ctx.interrupt.signal_needs_reset();
                    }
                    return;
                }
            };
            let Some(chain) = chain else { break };
            if !self.gate.admit(1, || request_len(&chain)) {
                metrics::ENTROPY.entropy_rate_limiter_throttled.inc();
                // Left in the ring until the gate's timer fires.
                queue.go_to_previous_position();
                break;
            }
            metrics::ENTROPY.entropy_event_count.inc();
            let head = chain.head_index();
            let written = fill_chain(&mem, chain);
            if queue.add_used(&mem, head, written).is_err() {
                metrics::ENTROPY.entropy_event_fails.inc();
                guest_warn!(self.used_ring_lines, "virtio-rng: used ring is outside guest memory");
                return;
            }
            metrics::ENTROPY.entropy_bytes.add(u64::from(written));
            used_any = true;
            served += 1;
        }
        if used_any && queue.needs_notification(&mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
    }
}

/// The bytes `chain` asks for, as [`fill_chain`] serves them: what a rate limit counts.
fn request_len<M>(chain: &crate::virtio::queue::Chain<M>) -> u64
where
    M: std::ops::Deref<Target = GuestMemoryMmap> + Clone,
{
    let asked: u64 = chain.clone().writable().map(|d| u64::from(d.len())).sum();
    asked.min(MAX_REQUEST as u64)
}

/// Fills the device-writable descriptors of `chain`; returns bytes written.
fn fill_chain<M>(mem: &GuestMemoryMmap, chain: crate::virtio::queue::Chain<M>) -> u32
where
    M: std::ops::Deref<Target = GuestMemoryMmap>,
{
    let mut total = 0usize;
    for desc in chain.writable() {
        let len = (desc.len() as usize).min(MAX_REQUEST - total);
        let mut buf = vec![0u8; len];
        if getrandom(&mut buf).is_err() {
            metrics::ENTROPY.host_rng_fails.inc();
            break;
        }
        if mem.write_slice(&buf, desc.addr()).is_err() {
            metrics::ENTROPY.entropy_event_fails.inc();
            break;
        }
        total += len;
        if total == MAX_REQUEST {
            break;
        }
    }
    total as u32
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most the given length into our buffer.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(())
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_RNG
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&[], offset, data);
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.activation.activate(ctx).inspect_err(|_| metrics::ENTROPY.activate_fails.inc())
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.gate.waker.cancel();
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    /// Nothing beyond the queue: each request is answered within the turn it is taken.
    fn save(&mut self) -> Result<super::VirtioState, crate::state::StateError> {
        Ok(super::VirtioState::Rng)
    }
    fn restore(&mut self, state: super::VirtioState) -> Result<(), crate::state::StateError> {
        match state {
            super::VirtioState::Rng => Ok(()),
            other => Err(other.mismatch("virtio-rng")),
        }
    }
}

impl MutEventSubscriber for Rng {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.gate.waker.watch(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.gate.waker.is_expiry(&events) {
            metrics::ENTROPY.rate_limiter_event_count.inc();
            if !self.broken {
                self.process_queue();
            }
        } else if self.activation.single_queue_turn(&events, ops).serves(self.broken) {
            self.process_queue();
        }
        // A limit that blocked for the first time made the refill timer.
        self.gate.waker.watch(ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::BusDevice;
    use crate::virtio::status;
    use crate::virtio::test_driver::TestDriver;

    fn driver() -> TestDriver {
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        d.activate(0, 16);
        d
    }

    #[test]
    fn identifies_as_rng_with_one_queue() {
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        assert_eq!(d.read_reg(0x0), 0x7472_6976);
        assert_eq!(d.read_reg(0x4), 2);
        assert_eq!(d.read_reg(0x8), VIRTIO_ID_RNG);
        assert_eq!(d.device_features(), VIRTIO_F_VERSION_1);
        d.write_reg(0x30, 0);
        assert_eq!(d.read_reg(0x34), u32::from(QUEUE_SIZE));
        d.write_reg(0x30, 1);
        assert_eq!(d.read_reg(0x34), 0, "no second queue");
    }

    /// With `packed=on` and the driver acking VIRTIO_F_RING_PACKED, the same device serves
    /// a packed ring: chains of one and two descriptors over three laps of a 4-slot ring,
    /// each filled and given back with its id, then on after a snapshot restore mid-lap.
    #[test]
    fn serves_a_packed_ring_across_laps_and_a_restore() {
        use crate::virtio::queue::VIRTIO_F_RING_PACKED;
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        assert_eq!(d.device_features() & VIRTIO_F_RING_PACKED, 0, "packed=off (the default) does not offer it");
        d.transport.offer_packed_ring(true);
        assert_ne!(d.device_features() & VIRTIO_F_RING_PACKED, 0);
        d.activate(VIRTIO_F_RING_PACKED, 4);
        for round in 0..3u16 {
            let (a, b, c) = (d.alloc(16, 0xaa), d.alloc(8, 0xaa), d.alloc(24, 0xaa));
            d.post_packed(0, &[(a, 16, true)], 1);
            d.post_packed(0, &[(b, 8, true), (c, 24, true)], 3);
            d.notify(0);
            assert_eq!(d.packed_used(0), [(1, 16), (3, 32)], "round {round}");
            let mut filled = [0u8; 24];
            vm_memory::Bytes::read_slice(&d.mem, &mut filled, vm_memory::GuestAddress(c)).unwrap();
            assert_ne!(filled, [0xaa; 24], "random bytes were written");
            assert!(d.interrupted());
        }
        // Mid-lap (slot 2 of the fourth lap): the restored ring goes on from there.
        let a = d.alloc(4, 0);
        d.post_packed(0, &[(a, 4, true)], 0);
        d.notify(0);
        assert_eq!(d.packed_used(0), [(0, 4)]);
        let state = d.save();
        let (mut r, _) = d.restored(Rng::new().unwrap(), state).unwrap();
        let (b, c) = (r.alloc(8, 0), r.alloc(8, 0));
        r.post_packed(0, &[(b, 8, true), (c, 8, true)], 2);
        r.notify(0);
        assert_eq!(r.packed_used(0), [(2, 16)]);
        // A VM without packed=on refuses that state: its device never offered the layout.
        let state = r.save();
        r.transport.offer_packed_ring(false);
        assert!(r.restored(Rng::new().unwrap(), state).is_err());
    }

    /// A packed ring is checked in its own layout at DRIVER_OK: a driver event structure
    /// on a 2-byte boundary (fine for a split avail ring) is refused, the device asks
    /// for a reset and serves nothing.
    #[test]
    fn a_misaligned_packed_ring_is_refused_at_driver_ok() {
        use crate::virtio::queue::VIRTIO_F_RING_PACKED;
        for packed in [false, true] {
            let (mut d, _) = TestDriver::new(Rng::new().unwrap());
            d.transport.offer_packed_ring(true);
            let features = if packed { VIRTIO_F_RING_PACKED } else { 0 };
            assert_ne!(d.negotiate(features) & status::FEATURES_OK, 0);
            d.setup_queue(0, 4);
            d.write_reg(0x30, 0);
            d.write_reg(0x44, 0);
            d.write_reg(0x90, 0x3_0002);
            d.write_reg(0x44, 1);
            let refused = d.driver_ok() & status::DEVICE_NEEDS_RESET != 0;
            assert_eq!(refused, packed, "packed={packed}: only the packed layout needs 4-byte alignment");
        }
    }

    /// After a restore the queue goes on, and an interrupt the guest had not
    /// acknowledged is raised again.
    #[test]
    fn requests_and_a_pending_interrupt_survive_a_restore() {
        let mut d = driver();
        let a = d.alloc(64, 0);
        d.add_chain(0, &[(a, 64, true)]);
        d.notify(0);
        assert_eq!(d.used(0).len(), 1);
        assert!(d.interrupted());
        let state = d.save();
        let (mut r, _) = d.restored(Rng::new().unwrap(), state).unwrap();
        assert!(r.interrupted(), "the unacknowledged interrupt is raised once more");
        assert_eq!(r.read_reg(0x60), 1, "used-buffer interrupt status");
        r.write_reg(0x64, 1);
        let b = r.alloc(32, 0);
        let head = r.add_chain(0, &[(b, 32, true)]);
        r.notify(0);
        assert_eq!(r.used(0), vec![(u32::from(head), 32)]);
        assert_eq!(r.used_idx(0), 2);
        assert!(r.interrupted());
    }

    /// Before DRIVER_OK a driver may have left anything in the registers: features the
    /// transport refused, a ready queue whose rings are outside memory. A snapshot then
    /// restores as it was, and the transport goes on refusing them.
    #[test]
    fn a_half_set_up_device_restores_with_what_the_driver_wrote() {
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        assert_eq!(d.negotiate(1 << 40) & status::FEATURES_OK, 0, "refused");
        d.setup_queue(0, 16);
        d.write_reg(0x30, 0);
        d.write_reg(0x44, 0);
        d.write_reg(0xa0, 0xffff_f000);
        d.write_reg(0xa4, 0xff);
        d.write_reg(0x44, 1);
        let state = d.save();
        let (mut r, _) = d.restored(Rng::new().unwrap(), state).unwrap();
        assert_eq!(r.status() & status::FEATURES_OK, 0);
        let s = r.status();
        r.write_reg(0x70, s | status::FEATURES_OK);
        assert_eq!(r.status() & status::FEATURES_OK, 0, "the features are still refused");
        r.write_reg(0x30, 0);
        assert_eq!(r.read_reg(0x44), 1, "the queue is still marked ready");
    }

    #[test]
    fn fills_every_writable_buffer_with_random_bytes() {
        let mut d = driver();
        let a = d.alloc(4096, 0);
        let b = d.alloc(100, 0);
        let head = d.add_chain(0, &[(a, 4096, true), (b, 100, true)]);
        d.notify(0);
        assert_eq!(d.used(0), vec![(u32::from(head), 4196)]);
        assert!(d.interrupted());
        let bytes = d.read_bytes(a, 4096);
        assert!(bytes.iter().filter(|&&x| x == 0).count() < 100, "looks random");
        assert_ne!(d.read_bytes(b, 100), vec![0; 100]);
    }

    #[test]
    fn huge_requests_are_capped() {
        let mut d = driver();
        let a = d.alloc(1 << 20, 0);
        d.add_chain(0, &[(a, 1 << 20, true)]);
        d.notify(0);
        assert_eq!(d.used(0)[0].1, MAX_REQUEST as u32);
    }

    #[test]
    fn buffer_outside_guest_memory_completes_with_nothing_written() {
        let mut d = driver();
        let head = d.add_chain(0, &[(crate::virtio::test_driver::MEM_SIZE - 16, 64, true)]);
        d.notify(0);
        assert_eq!(d.used(0), vec![(u32::from(head), 0)]);
        // The device keeps working afterwards.
        let a = d.alloc(32, 0);
        d.add_chain(0, &[(a, 32, true)]);
        d.notify(0);
        assert_eq!(d.used(0).len(), 1);
    }

    #[test]
    fn read_only_buffers_are_not_written() {
        let mut d = driver();
        let a = d.alloc(64, 0xaa);
        d.add_chain(0, &[(a, 64, false)]);
        d.notify(0);
        assert_eq!(d.used(0)[0].1, 0);
        assert_eq!(d.read_bytes(a, 64), vec![0xaa; 64]);
    }

    #[test]
    fn a_looping_chain_is_cut_off() {
        let mut d = driver();
        let a = d.alloc(8, 0);
        // Descriptor 0 points to itself forever.
        d.write_desc(
            0,
            0,
            a,
            8,
            crate::virtio::test_driver::VIRTQ_DESC_F_WRITE | crate::virtio::test_driver::VIRTQ_DESC_F_NEXT,
            0,
        );
        d.publish(0, 0);
        d.notify(0);
        let used = d.used(0);
        assert_eq!(used.len(), 1);
        assert!(used[0].1 <= 8 * 16, "at most queue-size descriptors served");
    }

    #[test]
    fn an_avail_index_that_jumps_stops_the_device_and_asks_for_reset() {
        let mut d = driver();
        d.set_avail_idx(0, 1000);
        d.notify(0);
        assert!(d.used(0).is_empty());
        assert_ne!(d.interrupt.status() & 2, 0, "config-change interrupt");
        assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
        // Later well-formed requests are not served either: state is unknown.
        let a = d.alloc(8, 0);
        d.add_chain(0, &[(a, 8, true)]);
        d.notify(0);
        assert!(d.used(0).is_empty());
    }

    #[test]
    fn notify_after_reset_does_not_spin_and_reactivation_serves_again() {
        let mut d = driver();
        d.write_reg(0x70, 0);
        assert_eq!(d.status(), 0);
        d.notify(0);
        d.activate(0, 16);
        let a = d.alloc(16, 0);
        d.add_chain(0, &[(a, 16, true)]);
        d.notify(0);
        assert_eq!(d.used(0).len(), 1);
    }

    #[test]
    fn invalid_queue_size_is_refused_at_driver_ok() {
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        d.negotiate(0);
        d.setup_queue(0, 3); // not a power of two
        let s = d.driver_ok();
        assert_ne!(s & status::DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn unknown_features_are_refused() {
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        assert_eq!(d.negotiate(1 << 20) & status::FEATURES_OK, 0);
    }

    /// Acceptance: a guest flooding one device does not starve another on the shared thread.
    #[test]
    fn a_flooded_queue_is_served_in_bounded_turns_and_its_neighbour_still_served() {
        let (mut flooded, _) = TestDriver::new(Rng::new().unwrap());
        flooded.activate(0, QUEUE_SIZE);
        let (mut quiet, _) = TestDriver::beside(Rng::new().unwrap(), &flooded);
        quiet.activate(0, 16);
        for _ in 0..QUEUE_SIZE {
            let a = flooded.alloc(8, 0);
            flooded.add_chain(0, &[(a, 8, true)]);
        }
        let a = quiet.alloc(8, 0);
        let head = quiet.add_chain(0, &[(a, 8, true)]);
        flooded.kick(0);
        quiet.kick(0);
        flooded.run_turn();
        assert_eq!(quiet.used(0), vec![(u32::from(head), 8)], "the quiet device is served in the same turn");
        assert_eq!(flooded.used(0).len(), CHAINS_PER_TURN, "one turn serves one batch of the flood");
        // The rest is served in later turns without another kick from the guest.
        flooded.run_events();
        assert_eq!(flooded.used(0).len(), usize::from(QUEUE_SIZE) - CHAINS_PER_TURN);
    }

    #[test]
    fn wrong_width_register_accesses_are_ignored() {
        let (mut d, _) = TestDriver::new(Rng::new().unwrap());
        let mut two = [0xffu8; 2];
        d.transport.read(0x0, &mut two);
        assert_eq!(two, [0, 0]);
        d.transport.write(0x70, &[1]);
        assert_eq!(d.status(), 0);
    }

    /// Firecracker's `entropy` `rate_limiter`: 1000 bytes, then 100 bytes every 100 ms;
    /// a request over the budget waits in the ring and is served in full later.
    #[test]
    fn a_bandwidth_limit_holds_requests_back_without_shortening_them() {
        let limits = LimiterConfig {
            bandwidth: Some(crate::rate_limiter::BucketConfig { size: 1000, one_time_burst: 0, refill_time_ms: 1000 }),
            ops: None,
        };
        let (mut d, _) = TestDriver::new(Rng::limited(&limits).unwrap());
        d.activate(0, 16);
        for _ in 0..3 {
            let a = d.alloc(400, 0);
            d.add_chain(0, &[(a, 400, true)]);
        }
        let start = std::time::Instant::now();
        d.notify(0);
        assert_eq!(d.used(0).len(), 2, "800 of the 1000 bytes; the third request waits");
        let mut later = Vec::new();
        while later.is_empty() && start.elapsed() < std::time::Duration::from_secs(5) {
            d.run_turn();
            later = d.used(0);
        }
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].1, 400, "served in full");
        assert!(start.elapsed() >= std::time::Duration::from_millis(200), "200 bytes at 1000/s");
    }

    /// Firecracker's `entropy` section: requests, bytes, and those the limit held back.
    /// The counters are the process's: lower bounds on what this test adds.
    #[test]
    fn the_entropy_metrics_count_requests_bytes_and_throttling() {
        let m = &metrics::ENTROPY;
        let read = || [&m.entropy_event_count, &m.entropy_bytes, &m.entropy_rate_limiter_throttled].map(|c| c.total());
        let before = read();
        let limits = LimiterConfig {
            bandwidth: Some(crate::rate_limiter::BucketConfig { size: 100, one_time_burst: 0, refill_time_ms: 60_000 }),
            ops: None,
        };
        let (mut d, _) = TestDriver::new(Rng::limited(&limits).unwrap());
        d.activate(0, 16);
        for _ in 0..2 {
            let buf = d.alloc(100, 0);
            d.add_chain(0, &[(buf, 100, true)]);
        }
        d.notify(0);
        assert_eq!(d.used(0).len(), 1, "the second request waits for the bucket");
        let added: Vec<u64> = read().iter().zip(before).map(|(a, b)| a - b).collect();
        assert!(added[0] >= 1 && added[1] >= 100 && added[2] >= 1, "{added:?}");
    }
}
