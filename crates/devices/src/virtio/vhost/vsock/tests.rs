//! The vhost-vsock set-up paths, driven through the real MMIO transport by
//! the test driver, against a fake kernel backend.

use super::super::fake::{FakeVhost, Request};
use super::*;
use crate::virtio::status;
use crate::virtio::test_driver::{TestDriver, MEM_SIZE};
use virtio_queue::QueueT;
use vm_memory::GuestMemoryBackend;

const KERNEL_FEATURES: u64 = VIRTIO_F_VERSION_1
    | 1 << VIRTIO_RING_F_EVENT_IDX
    | VSOCK_F_SEQPACKET
    | 1 << 26 // VHOST_F_LOG_ALL: never offered to the guest
    | 1 << 33; // VIRTIO_F_ACCESS_PLATFORM: never offered either

fn device(fake: &FakeVhost) -> VhostVsock<FakeVhost> {
    VhostVsock::new(42, FakeVhost { features: KERNEL_FEATURES, ..fake.clone() }).unwrap()
}

fn vring_calls(queue: usize, size: u16) -> Vec<Request> {
    let base = 0x10000 + queue as u64 * 0x10000;
    let avail = base + 16 * u64::from(size);
    let used = (avail + 6 + 2 * u64::from(size)).next_multiple_of(4);
    vec![
        Request::VringNum(queue, size),
        Request::VringAddr(queue, base, avail, used),
        Request::VringBase(queue, 0),
        Request::VringCallFd(queue),
        Request::VringKick(queue),
    ]
}

#[test]
fn creation_claims_the_cid_and_offers_only_what_needs_no_vmm_help() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    assert_eq!(fake.taken(), [Request::SetOwner, Request::GuestCid(42)]);
    assert_eq!(driver.device_features(), VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | VSOCK_F_SEQPACKET);
    assert_eq!(driver.read_reg(0x100), 42, "guest_cid, low half");
    assert_eq!(driver.read_reg(0x104), 0, "guest_cid, high half");
}

#[test]
fn a_cid_in_use_is_one_clear_error() {
    let fake = FakeVhost { fail: Some(("GuestCid", libc::EADDRINUSE)), ..Default::default() };
    let err = VhostVsock::new(3, fake).err().unwrap();
    assert!(matches!(err, VsockError::CidInUse(3)));
    assert_eq!(err.to_string(), "guest-cid=3 is already in use by another VM on this host");
}

/// DRIVER_OK hands the kernel the negotiated features, the memory table
/// and both data vrings, then starts it; the event queue stays with the VMM.
#[test]
fn driver_ok_gives_the_kernel_memory_table_and_vrings() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    fake.taken();
    driver.activate(VSOCK_F_SEQPACKET, 64);
    let host = driver.mem.iter().next().unwrap().as_ptr() as u64;
    let mut want = vec![
        Request::SetFeatures(VIRTIO_F_VERSION_1 | VSOCK_F_SEQPACKET),
        Request::SetMemTable(vec![(0, MEM_SIZE, host)]),
    ];
    want.extend(vring_calls(0, 64));
    want.extend(vring_calls(1, 64));
    want.push(Request::Running(true));
    assert_eq!(fake.taken(), want);
}

/// The kernel's "call" becomes a virtio-mmio used-buffer interrupt; the
/// guest's kicks of the data queues are left for the kernel to read.
#[test]
fn calls_are_relayed_and_kicks_left_to_the_kernel() {
    let fake = FakeVhost::default();
    let (mut driver, dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    assert!(!driver.interrupted());
    dev.lock().unwrap().calls.eventfds()[1].write(1).unwrap();
    driver.run_events();
    assert!(driver.interrupted(), "the call reached the irqfd");
    assert_eq!(driver.read_reg(0x60) & 1, 1, "InterruptStatus says used buffer");

    driver.notify(0);
    driver.notify(1);
    let d = dev.lock().unwrap();
    let ctx = d.activation.active.as_ref().unwrap();
    assert_eq!(ctx.queue_events[0].read().unwrap(), 1, "rx kick still there for the kernel");
    assert_eq!(ctx.queue_events[1].read().unwrap(), 1, "tx kick still there for the kernel");
}

#[test]
fn reset_stops_the_kernel_device_and_it_starts_again() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    fake.taken();
    driver.write_reg(0x70, 0);
    driver.run_events();
    assert_eq!(fake.taken(), [Request::Running(false)]);
    driver.activate(0, 32);
    let calls = fake.taken();
    assert_eq!(calls.last(), Some(&Request::Running(true)));
    assert!(calls.contains(&Request::VringNum(1, 32)));
}

/// A kernel error reply: the device asks for a reset instead of running half set up.
#[test]
fn a_refused_vring_leaves_the_device_needing_reset() {
    let fake = FakeVhost { fail: Some(("VringAddr", libc::EFAULT)), ..Default::default() };
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    assert_eq!(driver.negotiate(0) & status::FEATURES_OK, status::FEATURES_OK);
    for q in 0..3 {
        driver.setup_queue(q, 64);
    }
    let s = driver.driver_ok();
    assert_ne!(s & status::DEVICE_NEEDS_RESET, 0, "status {s:#x}");
    assert!(!fake.taken().contains(&Request::Running(true)));
}

/// Malformed guest input: rings that run off guest RAM never reach the kernel.
#[test]
fn rings_outside_guest_memory_are_refused() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    fake.taken();
    driver.negotiate(0);
    for q in 0..3 {
        driver.setup_queue(q, 64);
    }
    // Queue 1's used ring in the last bytes of RAM: it would run past the end.
    driver.write_reg(0x30, 1);
    driver.write_reg(0x44, 0);
    driver.write_reg(0xa0, (MEM_SIZE - 16) as u32);
    driver.write_reg(0x44, 1);
    let s = driver.driver_ok();
    let calls = fake.taken();
    assert!(!calls.iter().any(|c| matches!(c, Request::VringAddr(..) | Request::Running(true))), "{calls:?}");
    assert_ne!(s & (status::DEVICE_NEEDS_RESET | status::FAILED), 0, "status {s:#x}");
}

#[test]
fn vring_config_checks_each_ring_against_its_region() {
    let mem = crate::guest_memory::untracked(&[
        (vm_memory::GuestAddress(0), 0x10000),
        (vm_memory::GuestAddress(0x20000), 0x10000),
    ]);
    let mut queue = virtio_queue::Queue::new(16).unwrap();
    queue.set_size(16);
    queue.set_desc_table_address(Some(0x1000), Some(0));
    queue.set_avail_ring_address(Some(0x2000), Some(0));
    queue.set_used_ring_address(Some(0x3000), Some(0));
    let mut queue = crate::virtio::queue::Virtqueue::from(queue);
    assert!(super::super::vring_config(&mem, 0, &queue).is_ok());
    // The used ring (6 + 8 * 16 bytes) would straddle the hole between the regions.
    if let crate::virtio::queue::Virtqueue::Split(q) = &mut queue {
        q.set_used_ring_address(Some(0x10000 - 64), Some(0));
    }
    let err = super::super::vring_config(&mem, 0, &queue).err().unwrap().to_string();
    assert!(err.contains("used ring"), "{err}");
}

/// Saving stops the kernel's device and reads where it got to; the device starts again
/// from there when the device thread next runs (the VM resumes).
#[test]
fn save_fetches_the_kernel_positions_and_the_device_resumes_from_them() {
    let fake = FakeVhost { vring_base: 7, ..Default::default() };
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    fake.taken();
    let state = driver.save();
    assert_eq!(fake.taken(), [Request::Running(false), Request::GetVringBase(0), Request::GetVringBase(1)]);
    let crate::state::DeviceState::Virtio(t) = &state else { panic!("virtio") };
    assert_eq!(t.queues.iter().map(|q| q.next_avail).collect::<Vec<_>>(), [7, 8, 0]);
    assert_eq!(t.device, VirtioState::VhostVsock(VhostVsockState { cid: 42 }));
    driver.run_ready();
    let calls = fake.taken();
    assert!(calls.contains(&Request::VringBase(0, 7)) && calls.contains(&Request::VringBase(1, 8)), "{calls:?}");
    assert_eq!(calls.last(), Some(&Request::Running(true)));
}

/// Restored (here with another CID, as a clone beside the original needs): the kernel
/// gets the saved positions before it runs, and the guest gets a transport reset in the
/// event buffer it had posted, then reads its new CID.
#[test]
fn restore_hands_the_kernel_its_positions_and_the_guest_a_transport_reset() {
    let fake = FakeVhost { vring_base: 300, ..Default::default() };
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    let event = driver.alloc(8, 0xee);
    let head = driver.add_chain(EVENT_QUEUE, &[(event, 8, true)]);
    driver.kick(EVENT_QUEUE as u32);
    driver.run_ready();
    assert!(driver.used(EVENT_QUEUE).is_empty(), "no event without a restore");
    let state = driver.save();

    let fresh = FakeVhost::default();
    let clone = VhostVsock::new(43, FakeVhost { features: KERNEL_FEATURES, ..fresh.clone() }).unwrap();
    fresh.taken();
    let (mut r, _) = driver.restored(clone, state).unwrap();
    let calls = fresh.taken();
    let base = |q| calls.iter().position(|c| *c == Request::VringBase(q, 300 + q as u16));
    let running = calls.iter().position(|c| *c == Request::Running(true)).expect("started");
    assert!(base(0).unwrap() < running && base(1).unwrap() < running, "{calls:?}");
    assert_eq!(r.used(EVENT_QUEUE), [(u32::from(head), 4)]);
    assert_eq!(r.read_bytes(event, 8), [0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee], "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET");
    assert!(r.interrupted());
    assert_eq!(r.read_reg(0x100), 43, "the guest reads its new CID");
}

/// Without an event buffer at restore, the reset waits for the guest to post one.
#[test]
fn a_transport_reset_waits_for_an_event_buffer() {
    let fake = FakeVhost::default();
    let (mut driver, _dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    let state = driver.save();
    let (mut r, _) = driver.restored(device(&FakeVhost::default()), state).unwrap();
    let event = r.alloc(4, 0xee);
    let head = r.add_chain(EVENT_QUEUE, &[(event, 4, true)]);
    r.notify(EVENT_QUEUE as u32);
    assert_eq!(r.used(EVENT_QUEUE), [(u32::from(head), 4)]);
    assert_eq!(r.read_bytes(event, 4), [0; 4]);
    let again = r.alloc(4, 0xee);
    r.add_chain(EVENT_QUEUE, &[(again, 4, true)]);
    r.notify(EVENT_QUEUE as u32);
    assert!(r.used(EVENT_QUEUE).is_empty(), "one reset only");
}

/// A call the kernel made while the device thread was parked is in the saved interrupt
/// status, and the restored guest gets it.
#[test]
fn a_call_not_yet_relayed_is_saved_as_a_pending_interrupt() {
    let fake = FakeVhost::default();
    let (mut driver, dev) = TestDriver::new(device(&fake));
    driver.activate(0, 64);
    assert!(!driver.interrupted());
    dev.lock().unwrap().calls.eventfds()[0].write(1).unwrap();
    let state = driver.save();
    let crate::state::DeviceState::Virtio(t) = &state else { panic!("virtio") };
    assert_eq!(t.interrupt_status, 1);
    let (mut r, _) = driver.restored(device(&FakeVhost::default()), state).unwrap();
    assert!(r.interrupted());
    assert_eq!(r.read_reg(0x60), 1);
}
