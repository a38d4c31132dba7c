use super::*;
use crate::virtio::status;
use crate::virtio::test_driver::{TestDriver, MEM_SIZE};

/// A driver that negotiated `features` and set up the queues they bring.
fn driver(options: BalloonOptions, features: u64) -> (TestDriver, Arc<Mutex<Balloon>>) {
    driver_with_queues_of(options, features, 16)
}

fn driver_with_queues_of(options: BalloonOptions, features: u64, size: u16) -> (TestDriver, Arc<Mutex<Balloon>>) {
    let (mut d, balloon) = TestDriver::new(Balloon::new(options).unwrap());
    assert_ne!(d.negotiate(features) & status::FEATURES_OK, 0);
    let queues = balloon.lock().unwrap().active_queues(features | VIRTIO_F_VERSION_1);
    for q in 0..queues as u32 {
        d.setup_queue(q, size);
    }
    assert_eq!(d.driver_ok() & status::DEVICE_NEEDS_RESET, 0, "activation refused");
    (d, balloon)
}

fn pfns(list: &[u32]) -> Vec<u8> {
    list.iter().flat_map(|p| p.to_le_bytes()).collect()
}

fn stat(tag: u16, value: u64) -> Vec<u8> {
    [tag.to_le_bytes().as_slice(), &value.to_le_bytes()].concat()
}

#[test]
fn identifies_as_a_balloon_offering_stats_and_the_asked_options() {
    let (mut d, _) = TestDriver::new(Balloon::new(BalloonOptions::default()).unwrap());
    assert_eq!(d.read_reg(0x8), VIRTIO_ID_BALLOON);
    assert_eq!(d.device_features(), VIRTIO_F_VERSION_1 | F_STATS_VQ);
    let all = BalloonOptions { deflate_on_oom: true, free_page_reporting: true };
    let (mut d, _) = TestDriver::new(Balloon::new(all).unwrap());
    assert_eq!(d.device_features(), VIRTIO_F_VERSION_1 | F_STATS_VQ | F_DEFLATE_ON_OOM | F_REPORTING);
    d.write_reg(0x30, 3);
    assert_eq!(d.read_reg(0x34), u32::from(QUEUE_SIZE), "a reporting queue exists");
}

#[test]
fn a_driver_without_statistics_needs_only_two_queues() {
    let (mut d, _) = driver(BalloonOptions::default(), 0);
    let page = d.alloc_with(&[0xaa; 4096]);
    let list = d.alloc_with(&pfns(&[(page / PAGE_SIZE) as u32]));
    d.add_chain(0, &[(list, 4, false)]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1);
}

#[test]
fn inflated_pages_go_back_to_the_host_and_read_as_zero() {
    let (mut d, balloon) = driver(BalloonOptions::default(), F_STATS_VQ);
    let pages = d.alloc(3 * 4096, 0x5a);
    assert_eq!(pages % PAGE_SIZE, 0);
    let first = (pages / PAGE_SIZE) as u32;
    let list = d.alloc_with(&pfns(&[first, first + 2]));
    d.add_chain(0, &[(list, 8, false)]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1);
    assert!(d.interrupted());
    assert_eq!(d.read_bytes(pages, 4096), vec![0; 4096], "first page returned");
    assert_eq!(d.read_bytes(pages + 4096, 4096), vec![0x5a; 4096], "page not in the list kept");
    assert_eq!(d.read_bytes(pages + 8192, 4096), vec![0; 4096], "third page returned");
    assert_eq!(balloon.lock().unwrap().state().lock().unwrap().returned_bytes, 8192);
}

#[test]
fn pfns_outside_guest_ram_and_ragged_lists_are_ignored() {
    let (mut d, balloon) = driver(BalloonOptions::default(), F_STATS_VQ);
    let beyond = (MEM_SIZE / PAGE_SIZE) as u32;
    let list = d.alloc_with(&[pfns(&[beyond, u32::MAX]), vec![1, 2, 3]].concat());
    d.add_chain(0, &[(list, 11, false)]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1, "the buffer still completes");
    assert_eq!(balloon.lock().unwrap().state().lock().unwrap().returned_bytes, 0);
    // A buffer that points outside guest memory completes too, with nothing done.
    d.add_chain(0, &[(MEM_SIZE - 2, 64, false)]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1);
}

/// Regression (queue_balloon fuzzer): one buffer listing every page of guest RAM took
/// one madvise per page in a single turn (40 s under ASan). Linux lists at most 256.
#[test]
fn an_inflate_buffer_releases_at_most_its_first_256_pfns() {
    let (mut d, balloon) = driver(BalloonOptions::default(), F_STATS_VQ);
    let count = MAX_PFNS_PER_BUFFER as u32 + 44;
    let pages = d.alloc(count * 4096, 0x5a);
    let first = (pages / PAGE_SIZE) as u32;
    let all: Vec<u32> = (first..first + count).collect();
    // Split over two descriptors: the bound is the buffer's, not each descriptor's.
    let (head, tail) = all.split_at(200);
    let (a, b) = (d.alloc_with(&pfns(head)), d.alloc_with(&pfns(tail)));
    d.add_chain(0, &[(a, 4 * head.len() as u32, false), (b, 4 * tail.len() as u32, false)]);
    d.notify(0);
    assert_eq!(d.used(0).len(), 1, "the buffer completes");
    assert_eq!(balloon.lock().unwrap().state().lock().unwrap().returned_bytes, MAX_PFNS_PER_BUFFER * PAGE_SIZE);
    let last_released = pages + (MAX_PFNS_PER_BUFFER - 1) * PAGE_SIZE;
    assert_eq!(d.read_bytes(last_released, 4096), vec![0; 4096]);
    assert_eq!(d.read_bytes(last_released + PAGE_SIZE, 4096), vec![0x5a; 4096], "the 257th page is kept");
}

#[test]
fn a_flood_of_inflate_buffers_is_served_64_a_turn() {
    let (mut d, _) = driver_with_queues_of(BalloonOptions::default(), F_STATS_VQ, QUEUE_SIZE);
    let page = d.alloc(4096, 0);
    let list = d.alloc_with(&pfns(&[(page / PAGE_SIZE) as u32]));
    for _ in 0..100 {
        d.add_chain(0, &[(list, 4, false)]);
    }
    d.kick(0);
    d.run_turn();
    assert_eq!(d.used(0).len(), CHAINS_PER_TURN, "one turn serves one batch");
    // The rest is served in later turns without another kick from the guest.
    d.run_events();
    assert_eq!(d.used(0).len(), 100 - CHAINS_PER_TURN);
}

#[test]
fn deflate_buffers_complete_without_touching_memory() {
    let (mut d, _) = driver(BalloonOptions::default(), F_STATS_VQ);
    let page = d.alloc(4096, 0x11);
    let list = d.alloc_with(&pfns(&[(page / PAGE_SIZE) as u32]));
    d.add_chain(1, &[(list, 4, false)]);
    d.notify(1);
    assert_eq!(d.used(1).len(), 1);
    assert_eq!(d.read_bytes(page, 4096), vec![0x11; 4096]);
}

#[test]
fn statistics_are_kept_and_the_buffer_held_until_asked_for_again() {
    let (mut d, balloon) = driver(BalloonOptions::default(), F_STATS_VQ);
    let stats = d.alloc_with(&[stat(4, 123 << 20), stat(5, 512 << 20), stat(99, 1)].concat());
    let head = d.add_chain(2, &[(stats, 30, false)]);
    d.notify(2);
    let state = balloon.lock().unwrap().state();
    assert_eq!(state.lock().unwrap().stats[4], Some(123 << 20));
    assert_eq!(state.lock().unwrap().stats[5], Some(512 << 20));
    assert_eq!(d.used(2), vec![], "held: returning it would ask for new statistics");
    balloon.lock().unwrap().request_stats();
    assert_eq!(d.used(2), vec![(u32::from(head), 0)]);
    assert!(d.interrupted());
}

#[test]
fn reporting_queue_follows_statistics_and_frees_the_ranges() {
    let options = BalloonOptions { deflate_on_oom: false, free_page_reporting: true };
    for (features, queue) in [(F_STATS_VQ | F_REPORTING, 3), (F_REPORTING, 2)] {
        let (mut d, balloon) = driver(options, features);
        let free = d.alloc(4 * 4096, 0x77);
        d.add_chain(queue, &[(free, 4 * 4096, true)]);
        d.notify(queue as u32);
        assert_eq!(d.used(queue).len(), 1, "features {features:#x}");
        assert_eq!(d.read_bytes(free, 4 * 4096), vec![0; 4 * 4096]);
        assert_eq!(balloon.lock().unwrap().state().lock().unwrap().returned_bytes, 4 * 4096);
    }
}

#[test]
fn the_target_reaches_the_guest_with_a_config_interrupt_and_actual_comes_back() {
    let (mut d, balloon) = driver(BalloonOptions::default(), F_STATS_VQ);
    let _ = d.interrupted();
    balloon.lock().unwrap().set_target(1000);
    assert!(d.interrupted());
    assert_eq!(d.read_reg(0x60) & 2, 2, "configuration change interrupt");
    assert_eq!(d.read_reg(0x100), 1000, "num_pages");
    d.write_reg(0x104, 600);
    assert_eq!(d.read_reg(0x104), 600, "actual");
    assert_eq!(balloon.lock().unwrap().state().lock().unwrap().actual_pages, 600);
    d.write_reg(0x100, 5);
    assert_eq!(d.read_reg(0x100), 1000, "num_pages is the host's");
}

#[test]
fn a_corrupt_avail_ring_stops_the_device_until_reset() {
    let (mut d, _) = driver(BalloonOptions::default(), F_STATS_VQ);
    d.set_avail_idx(0, 1000);
    d.notify(0);
    assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
}

#[test]
fn a_new_actual_is_announced_once_and_a_repeated_one_not_at_all() {
    use crate::guest_events::{GuestEvent, GuestEvents};
    let events = GuestEvents::new().unwrap();
    let mut balloon = Balloon::new(BalloonOptions::default()).unwrap();
    balloon.report_to(events.clone());
    let (mut d, _) = TestDriver::new(balloon);
    assert_ne!(d.negotiate(F_STATS_VQ) & status::FEATURES_OK, 0);
    d.write_reg(0x104, 600);
    assert_eq!(events.take(), [GuestEvent::BalloonActual { pages: 600 }]);
    d.write_reg(0x104, 600);
    assert_eq!(events.take(), [], "the same value again");
    d.write_reg(0x100, 5);
    assert_eq!(events.take(), [], "num_pages is the host's");
    d.write_reg(0x104, 0);
    assert_eq!(events.take(), [GuestEvent::BalloonActual { pages: 0 }]);
}

/// Target, actual, the statistics and the held statistics buffer survive a restore; the
/// reporting queue (optional, after the statistics queue) goes on too.
#[test]
fn target_actual_and_statistics_survive_a_restore() {
    let options = BalloonOptions { deflate_on_oom: true, free_page_reporting: true };
    let features = F_STATS_VQ | F_REPORTING | F_DEFLATE_ON_OOM;
    let (mut d, balloon) = driver(options, features);
    balloon.lock().unwrap().set_target(1000);
    d.write_reg(0x104, 600);
    let stats = d.alloc_with(&stat(4, 123 << 20));
    let head = d.add_chain(2, &[(stats, 10, false)]);
    d.notify(2);
    let free = d.alloc(3 * 4096, 0x77);
    d.add_chain(3, &[(free, 3 * 4096, true)]);
    d.notify(3);
    assert_eq!(d.used(3).len(), 1);
    let returned = balloon.lock().unwrap().state().lock().unwrap().returned_bytes;
    assert!(returned >= 2 * 4096);
    let saved = d.save();

    let (mut r, restored) = d.restored(Balloon::new(options).unwrap(), saved).unwrap();
    assert_eq!((r.read_reg(0x100), r.read_reg(0x104)), (1000, 600), "num_pages and actual");
    let state = restored.lock().unwrap().state();
    assert_eq!(state.lock().unwrap().stats[4], Some(123 << 20));
    assert_eq!(state.lock().unwrap().returned_bytes, returned);
    restored.lock().unwrap().request_stats();
    assert_eq!(r.used(2), [(u32::from(head), 0)], "the buffer held before the snapshot is given back");
    let again = r.alloc(3 * 4096, 0x66);
    r.add_chain(3, &[(again, 3 * 4096, true)]);
    r.notify(3);
    assert_eq!(r.used(3).len(), 1);
    assert_eq!(state.lock().unwrap().returned_bytes, 2 * returned, "reporting goes on");
    restored.lock().unwrap().set_target(10);
    assert_eq!(r.read_reg(0x100), 10);
}

/// A balloon built without free page reporting has one queue fewer than one with it.
#[test]
fn a_balloon_built_with_other_options_is_refused() {
    let with = BalloonOptions { deflate_on_oom: false, free_page_reporting: true };
    let (mut d, _) = driver(with, F_STATS_VQ | F_REPORTING);
    let saved = d.save();
    let err = d.restored(Balloon::new(BalloonOptions::default()).unwrap(), saved).err().unwrap();
    assert!(matches!(err, crate::state::StateError::QueueCount { saved: 4, now: 3 }), "{err}");
    let without_oom = BalloonOptions::default();
    let (mut d, _) = driver(BalloonOptions { deflate_on_oom: true, ..without_oom }, F_DEFLATE_ON_OOM);
    let saved = d.save();
    let err = d.restored(Balloon::new(without_oom).unwrap(), saved).err().unwrap();
    assert!(matches!(err, crate::state::StateError::Features { .. }), "{err}");
}

/// On a packed ring the statistics buffer held across a snapshot is given back after
/// the restore in the slot after it (one descriptor: what a restored ring assumes for a
/// buffer it did not take itself), and the queue goes on from there.
#[test]
fn a_held_statistics_buffer_comes_back_on_a_restored_packed_ring() {
    use crate::virtio::queue::VIRTIO_F_RING_PACKED;
    let (mut d, _) = TestDriver::new(Balloon::new(BalloonOptions::default()).unwrap());
    d.transport.offer_packed_ring(true);
    d.activate(VIRTIO_F_RING_PACKED | F_STATS_VQ, 4);
    let stats = d.alloc_with(&stat(4, 77 << 20));
    d.post_packed(2, &[(stats, 10, false)], 3);
    d.notify(2);
    assert_eq!(d.packed_used(2), [], "the device holds the statistics buffer");
    let saved = d.save();
    let (mut r, restored) = d.restored(Balloon::new(BalloonOptions::default()).unwrap(), saved).unwrap();
    assert_eq!(restored.lock().unwrap().state().lock().unwrap().stats[4], Some(77 << 20));
    restored.lock().unwrap().request_stats();
    assert_eq!(r.packed_used(2), [(3, 0)], "the buffer held before the snapshot is given back");
    let next = r.alloc_with(&stat(4, 88 << 20));
    r.post_packed(2, &[(next, 10, false)], 0);
    r.notify(2);
    assert_eq!(restored.lock().unwrap().state().lock().unwrap().stats[4], Some(88 << 20));
    // Inflating goes on as usual on the packed inflate queue.
    let pages = r.alloc_with(&pfns(&[100, 101]));
    r.post_packed(0, &[(pages, 8, false)], 1);
    r.notify(0);
    assert_eq!(r.packed_used(0), [(1, 0)]);
}

/// Firecracker's `balloon` section: each inflate and deflate turn, each statistics buffer,
/// each reported range and its bytes. The counters are the process's (other tests count
/// too): each check is a lower bound on what this test adds.
#[test]
fn the_balloon_metrics_count_each_queue() {
    let m = &metrics::BALLOON;
    let read = || {
        [
            &m.inflate_count,
            &m.deflate_count,
            &m.stats_updates_count,
            &m.free_page_report_count,
            &m.free_page_report_freed,
        ]
        .map(|c| c.total())
    };
    let before = read();
    let options = BalloonOptions { deflate_on_oom: false, free_page_reporting: true };
    let (mut d, _) = driver(options, F_STATS_VQ | F_REPORTING);
    let page = d.alloc(4096, 0);
    let list = d.alloc_with(&pfns(&[(page / PAGE_SIZE) as u32]));
    d.add_chain(0, &[(list, 4, false)]);
    d.notify(0);
    d.add_chain(1, &[(list, 4, false)]);
    d.notify(1);
    let stats = d.alloc_with(&stat(4, 1));
    d.add_chain(2, &[(stats, 10, false)]);
    d.notify(2);
    let free = d.alloc(2 * 4096, 0);
    d.add_chain(3, &[(free, 2 * 4096, true)]);
    d.notify(3);
    let added: Vec<u64> = read().iter().zip(before).map(|(a, b)| a - b).collect();
    assert!(added[..4].iter().all(|&n| n >= 1), "{added:?}");
    assert!(added[4] >= 2 * 4096, "{added:?}");
}
