//! vhost-net set-up through the real MMIO transport, against a fake kernel backend.

use super::super::fake::{FakeVhost, Request};
use super::*;
use crate::virtio::status;
use crate::virtio::test_driver::TestDriver;

const F_MQ: u64 = 1 << virtio_bindings::virtio_net::VIRTIO_NET_F_MQ;

/// What Linux 6.12's vhost_net offers, minus the bits microvm must never pass on.
const KERNEL: u64 = VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | F_MRG_RXBUF;

fn device(fake: &FakeVhost) -> VhostNet<FakeVhost> {
    let (tap, _peer) = Tap::socketpair_for_tests(false);
    VhostNet::new(tap, Some([2, 0, 0, 0, 0, 1]), FakeVhost { features: KERNEL, ..fake.clone() }).unwrap()
}

#[test]
fn kernel_features_it_lacks_are_not_offered_the_taps_are() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    assert_eq!(fake.taken(), [Request::SetOwner]);
    let offered = driver.device_features();
    assert_eq!(offered & (1 << VIRTIO_RING_F_INDIRECT_DESC), 0, "the kernel lacks it here");
    assert_ne!(offered & F_MRG_RXBUF, 0);
    assert_ne!(offered & (1 << virtio_bindings::virtio_net::VIRTIO_NET_F_GUEST_CSUM), 0, "the tap's offload");
    assert_ne!(offered & (1 << virtio_bindings::virtio_net::VIRTIO_NET_F_MAC), 0);
    assert_eq!(driver.read_reg(0x100), 0x0000_0002, "MAC bytes 0-3 in config space");
}

#[test]
fn driver_ok_attaches_the_tap_to_both_queues_and_reset_detaches_it() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    fake.taken();
    driver.activate(F_MRG_RXBUF | 1 << virtio_bindings::virtio_net::VIRTIO_NET_F_MAC, 128);
    let calls = fake.taken();
    assert_eq!(calls[0], Request::SetFeatures(VIRTIO_F_VERSION_1 | F_MRG_RXBUF), "only kernel bits reach the kernel");
    assert!(matches!(calls[1], Request::SetMemTable(_)));
    assert_eq!(&calls[calls.len() - 2..], [Request::NetBackend(0, true), Request::NetBackend(1, true)]);
    assert!(calls.contains(&Request::VringNum(1, 128)));
    driver.write_reg(0x70, 0);
    driver.run_events();
    assert_eq!(fake.taken(), [Request::NetBackend(0, false), Request::NetBackend(1, false)]);
}

#[test]
fn a_refused_backend_leaves_the_device_needing_reset() {
    let fake = FakeVhost { fail: Some(("NetBackend", libc::EBADFD)), ..Default::default() };
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    driver.negotiate(0);
    driver.setup_queue(0, 64);
    driver.setup_queue(1, 64);
    assert_ne!(driver.driver_ok() & status::DEVICE_NEEDS_RESET, 0);
}

/// Saving detaches the tap and reads the kernel's positions; the device resumes from
/// them; a restored device hands them to the kernel before it attaches the tap, and
/// keeps the guest's MAC.
#[test]
fn snapshot_positions_go_through_the_kernel_both_ways() {
    let fake = FakeVhost { vring_base: 20, ..Default::default() };
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    fake.taken();
    let state = driver.save();
    assert_eq!(
        fake.taken(),
        [
            Request::NetBackend(0, false),
            Request::NetBackend(1, false),
            Request::GetVringBase(0),
            Request::GetVringBase(1)
        ]
    );
    let crate::state::DeviceState::Virtio(t) = &state else { panic!("virtio") };
    assert_eq!(t.queues.iter().map(|q| q.next_avail).collect::<Vec<_>>(), [20, 21]);
    driver.run_ready();
    assert_eq!(fake.taken().last(), Some(&Request::NetBackend(1, true)), "resumed");

    let fresh = FakeVhost::default();
    let (tap, _peer) = Tap::socketpair_for_tests(false);
    let clone = VhostNet::new(tap, None, FakeVhost { features: KERNEL, ..fresh.clone() }).unwrap();
    let (mut r, dev) = driver.restored(clone, state).unwrap();
    let calls = fresh.taken();
    let at = |want: Request| calls.iter().position(|c| *c == want).unwrap_or_else(|| panic!("{want:?} in {calls:?}"));
    assert!(at(Request::VringBase(0, 20)) < at(Request::NetBackend(0, true)));
    assert!(at(Request::VringBase(1, 21)) < at(Request::NetBackend(1, true)));
    assert_eq!(dev.lock().unwrap().mac(), [2, 0, 0, 0, 0, 1]);
    assert_eq!(r.read_reg(0x100), 0x0000_0002);
}

/// `mq=on` with two pairs: each pair's /dev/vhost-net gets that pair's two queues as its
/// vrings 0 and 1 and its own tap queue; the control queue stays in microvm, which
/// answers VQ_PAIRS_SET; the kernel is never told of MQ or the control queue.
#[test]
fn each_pair_has_its_own_backend_and_the_control_queue_is_answered_here() {
    use crate::virtio::net::ctrl::CTRL_QUEUE_SIZE;
    use virtio_bindings::virtio_net as vn;
    let fakes = [FakeVhost::default(), FakeVhost::default()];
    let mut peers = Vec::new();
    let pairs = fakes
        .iter()
        .map(|f| {
            let (tap, peer) = Tap::socketpair_for_tests(false);
            peers.push(peer);
            (tap, FakeVhost { features: KERNEL, ..f.clone() })
        })
        .collect();
    let net = VhostNet::multiqueue(pairs, Some([2, 0, 0, 0, 0, 1])).unwrap();
    assert_eq!(net.queue_max_sizes(), [256, 256, 256, 256, CTRL_QUEUE_SIZE]);
    let (mut driver, _dev) = TestDriver::new(net);
    assert_ne!(driver.device_features() & (F_MQ | 1 << vn::VIRTIO_NET_F_CTRL_VQ), 0);
    assert_eq!(driver.read_reg(0x108) & 0xffff, 2, "max_virtqueue_pairs");
    fakes.iter().for_each(|f| assert_eq!(f.taken(), [Request::SetOwner]));
    let event_idx = 1 << VIRTIO_RING_F_EVENT_IDX;
    driver.activate(F_MQ | 1 << vn::VIRTIO_NET_F_CTRL_VQ | F_MRG_RXBUF | event_idx, 64);
    // Only pair 0 runs until the guest enables more: the kernel refuses a detached tap
    // queue as a backend.
    assert!(fakes[0].calls.lock().unwrap().contains(&Request::NetBackend(1, true)));
    assert_eq!(fakes[1].taken(), []);
    let set_pairs = |driver: &mut TestDriver, n: u8| {
        let cmd = driver.alloc_with(&[vn::VIRTIO_NET_CTRL_MQ as u8, vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET as u8, n, 0]);
        let ack = driver.alloc(1, 0xee);
        driver.add_chain(4, &[(cmd, 4, false), (ack, 1, true)]);
        driver.notify(4);
        driver.read_bytes(ack, 1)[0]
    };
    assert_eq!(set_pairs(&mut driver, 2), vn::VIRTIO_NET_OK as u8);
    assert_eq!(driver.used(4).len(), 1);
    assert_eq!(driver.avail_event(4), 1, "the control queue asks to be kicked for the next command");
    for (k, fake) in fakes.iter().enumerate() {
        let calls = fake.taken();
        assert_eq!(calls[0], Request::SetFeatures(VIRTIO_F_VERSION_1 | F_MRG_RXBUF | event_idx), "pair {k}");
        // The test driver puts queue q's descriptor table at 0x10000 * (q + 1).
        for vring in 0..2 {
            let desc = 0x10000 * (2 * k as u64 + vring as u64 + 1);
            assert!(
                calls.iter().any(|c| matches!(c, Request::VringAddr(v, d, _, _) if *v == vring && *d == desc)),
                "pair {k} vring {vring}: {calls:?}"
            );
        }
        assert!(!calls.iter().any(|c| matches!(c, Request::VringNum(2.., _))), "pair {k}: {calls:?}");
        assert_eq!(&calls[calls.len() - 2..], [Request::NetBackend(0, true), Request::NetBackend(1, true)]);
    }
    // Back to one pair: pair 1 stops, its positions read back for a later start.
    assert_eq!(set_pairs(&mut driver, 1), vn::VIRTIO_NET_OK as u8);
    assert_eq!(
        fakes[1].taken(),
        [
            Request::NetBackend(0, false),
            Request::NetBackend(1, false),
            Request::GetVringBase(0),
            Request::GetVringBase(1)
        ]
    );
    assert_eq!(fakes[0].taken(), []);
}
