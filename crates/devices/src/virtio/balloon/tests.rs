//! virtio-balloon through the real MMIO transport, driven by the test driver.

use super::*;
use crate::virtio::test_driver::{TestDriver, MEM_SIZE};

const OPTIONS: BalloonOptions = BalloonOptions { deflate_on_oom: true, free_page_reporting: true };
/// A page the tests fill and expect the balloon to give back (zeroes after).
const PAGE: u64 = 0x80_0000;

fn active(options: BalloonOptions) -> (TestDriver, Arc<std::sync::Mutex<Balloon>>) {
    let (mut driver, dev) = TestDriver::new(Balloon::new(options, MEM_SIZE).unwrap());
    driver.activate(F_STATS_VQ | F_DEFLATE_ON_OOM | F_FREE_PAGE_REPORTING, 64);
    (driver, dev)
}

fn fill(driver: &TestDriver, addr: u64, pages: u64) {
    driver.mem.write_slice(&vec![0xaa; (pages * PAGE_SIZE) as usize], GuestAddress(addr)).unwrap();
}

fn is_zero(driver: &TestDriver, addr: u64, len: u64) -> bool {
    driver.read_bytes(addr, len as usize).iter().all(|b| *b == 0)
}

#[test]
fn features_queues_and_config_follow_the_options() {
    let (mut driver, _dev) = TestDriver::new(Balloon::new(OPTIONS, MEM_SIZE).unwrap());
    assert_eq!(driver.device_features(), VIRTIO_F_VERSION_1 | F_STATS_VQ | F_DEFLATE_ON_OOM | F_FREE_PAGE_REPORTING);
    let plain = Balloon::new(BalloonOptions { deflate_on_oom: false, free_page_reporting: false }, MEM_SIZE).unwrap();
    assert_eq!(plain.queue_max_sizes().len(), 3);
    assert_eq!(plain.features(), VIRTIO_F_VERSION_1 | F_STATS_VQ);
}

/// QMP `balloon`: the target reaches config space with a config interrupt;
/// the driver's `actual` reaches the monitor's state.
#[test]
fn target_and_actual_travel_through_config_space() {
    let (mut driver, dev) = active(OPTIONS);
    let state = dev.lock().unwrap().state();
    dev.lock().unwrap().set_target(1000);
    assert!(driver.interrupted());
    assert_eq!(driver.read_reg(0x60) & 2, 2, "InterruptStatus: configuration change");
    assert_eq!(driver.read_reg(0x100), 1000, "num_pages");
    driver.write_reg(0x104, 640);
    assert_eq!(state.actual_pages(), 640);
    assert_eq!(driver.read_reg(0x104), 640);
}

/// Inflated pages go back to the host: they read as zeroes afterwards.
#[test]
fn inflated_pages_are_returned_to_the_host() {
    let (mut driver, _dev) = active(OPTIONS);
    fill(&driver, PAGE, 3);
    let pfns: Vec<u8> =
        [PAGE >> 12, (PAGE >> 12) + 2, (PAGE >> 12) + 1].iter().flat_map(|p| (*p as u32).to_le_bytes()).collect();
    let buf = driver.alloc_with(&pfns);
    let head = driver.add_chain(INFLATE, &[(buf, pfns.len() as u32, false)]);
    driver.notify(INFLATE as u32);
    assert_eq!(driver.used(INFLATE), [(u32::from(head), 0)]);
    assert!(is_zero(&driver, PAGE, 3 * PAGE_SIZE));
    assert!(driver.interrupted());
}

/// Malformed input: frame numbers outside RAM and odd lengths are skipped,
/// the buffer is still returned, nothing else is touched.
#[test]
fn bogus_frame_numbers_are_ignored() {
    let (mut driver, _dev) = active(OPTIONS);
    fill(&driver, PAGE, 1);
    let mut pfns: Vec<u8> = [u32::MAX, (MEM_SIZE >> 12) as u32].iter().flat_map(|p| p.to_le_bytes()).collect();
    pfns.push(7); // a stray byte
    let buf = driver.alloc_with(&pfns);
    let head = driver.add_chain(INFLATE, &[(buf, pfns.len() as u32, false)]);
    driver.notify(INFLATE as u32);
    assert_eq!(driver.used(INFLATE), [(u32::from(head), 0)]);
    assert!(!is_zero(&driver, PAGE, PAGE_SIZE), "an unrelated page was discarded");
    // A descriptor pointing outside guest memory.
    let head = driver.add_chain(INFLATE, &[(MEM_SIZE - 2, 8, false)]);
    driver.notify(INFLATE as u32);
    assert_eq!(driver.used(INFLATE), [(u32::from(head), 0)]);
}

/// Free page reporting: each reported range is discarded; one running past
/// the end of RAM is left alone.
#[test]
fn reported_free_pages_are_discarded() {
    let (mut driver, _dev) = active(OPTIONS);
    fill(&driver, PAGE, 4);
    // As Linux posts them: device-writable scatter-gather entries.
    let head = driver.add_chain(3, &[(PAGE, PAGE_SIZE as u32, true), (PAGE + PAGE_SIZE, PAGE_SIZE as u32, true)]);
    driver.notify(3);
    assert_eq!(driver.used(3), [(u32::from(head), 0)]);
    assert!(is_zero(&driver, PAGE, 2 * PAGE_SIZE));
    assert!(!is_zero(&driver, PAGE + 2 * PAGE_SIZE, 2 * PAGE_SIZE));
    fill(&driver, MEM_SIZE - PAGE_SIZE, 1);
    driver.add_chain(3, &[(MEM_SIZE - PAGE_SIZE, (2 * PAGE_SIZE) as u32, true)]);
    driver.notify(3);
    assert!(!is_zero(&driver, MEM_SIZE - PAGE_SIZE, PAGE_SIZE));
}

/// Statistics: the buffer is read and held; asking for more returns it.
#[test]
fn stats_are_read_and_the_buffer_held_until_requested() {
    let (mut driver, dev) = active(OPTIONS);
    let mut entries = Vec::new();
    for (tag, value) in [(4u16, 1u64 << 30), (5, 123_456)] {
        entries.extend(tag.to_le_bytes());
        entries.extend(value.to_le_bytes());
    }
    let buf = driver.alloc_with(&entries);
    let head = driver.add_chain(STATS, &[(buf, entries.len() as u32, false)]);
    driver.notify(STATS as u32);
    assert_eq!(dev.lock().unwrap().stats(), [(4, 1 << 30), (5, 123_456)]);
    assert_eq!(driver.used(STATS), [], "held until the host wants fresh statistics");
    dev.lock().unwrap().request_stats();
    assert_eq!(driver.used(STATS), [(u32::from(head), 0)]);
}

/// Shared (memfd) guest memory: MADV_DONTNEED would keep the pages in the
/// file, so the balloon punches holes instead.
#[test]
fn shared_memory_gets_holes_punched() {
    // SAFETY: a fresh memfd nobody else owns.
    let fd = unsafe { libc::memfd_create(c"balloon-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: fd was just created and is owned here.
    let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.set_len(MEM_SIZE).unwrap();
    let region = vm_memory::mmap::MmapRegionBuilder::new(MEM_SIZE as usize)
        .with_file_offset(vm_memory::FileOffset::new(file.try_clone().unwrap(), 0))
        .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
        .with_mmap_flags(libc::MAP_SHARED)
        .build()
        .unwrap();
    let mem =
        GuestMemoryMmap::from_regions(vec![vm_memory::GuestRegionMmap::new(region, GuestAddress(0)).unwrap()]).unwrap();
    mem.write_slice(&[0xaa; 8192], GuestAddress(PAGE)).unwrap();
    discard_range(&mem, PAGE, 8192);
    let mut back = [1u8; 8192];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut back, PAGE).unwrap();
    assert!(back.iter().all(|b| *b == 0), "the file still holds the pages");
}
