//! Acceptance: a guest repeating mistakes cannot fill the host's log. 10^5 rounds of bad
//! virtio-mmio register writes (to a read-only register, a notify of a missing queue, a
//! queue whose rings break alignment at DRIVER_OK, which virtio-queue itself logs) end in
//! a handful of lines. The logger here applies `devices::noise::admit` as the binary's does.

use devices::bus::BusDevice;
use devices::virtio::mmio::MmioTransport;
use devices::virtio::rng::Rng;
use devices::virtio::{status, Interrupt};
use log::{LevelFilter, Log, Metadata, Record};
use std::sync::{Arc, Mutex};
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        if let Some(note) = devices::noise::admit(record.target()) {
            LINES.lock().unwrap().push(format!("{}{note}", record.args()));
        }
    }
    fn flush(&self) {}
}

fn write(transport: &mut MmioTransport, offset: u64, value: u32) {
    transport.write(offset, &value.to_le_bytes());
}

#[test]
fn a_hundred_thousand_bad_register_writes_log_a_few_lines() {
    static CAPTURE: Capture = Capture;
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(LevelFilter::Trace);

    let mem = devices::guest_memory::untracked(&[(GuestAddress(0), 1 << 20)]);
    let irq = EventFd::new(EFD_NONBLOCK).unwrap();
    let interrupt = Arc::new(Interrupt::new(irq));
    let events = vec![EventFd::new(EFD_NONBLOCK).unwrap()];
    let device = Arc::new(Mutex::new(Rng::new().unwrap()));
    let mut transport = MmioTransport::new(device, mem, interrupt, events).unwrap();
    for _ in 0..100_000 {
        write(&mut transport, 0x000, 0xdead); // MagicValue is read-only
        write(&mut transport, 0x050, 7); // QueueNotify: no queue 7
        write(&mut transport, 0x070, 0); // reset
        write(&mut transport, 0x070, status::ACKNOWLEDGE | status::DRIVER);
        write(&mut transport, 0x020, 1); // VERSION_1 is bit 32
        write(&mut transport, 0x024, 1);
        write(&mut transport, 0x020, 1);
        write(&mut transport, 0x070, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        write(&mut transport, 0x030, 0);
        write(&mut transport, 0x038, 16);
        write(&mut transport, 0x080, 0x1001); // a descriptor table must be 16-byte aligned
        write(&mut transport, 0x044, 1);
        write(&mut transport, 0x070, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK);
    }
    let lines = LINES.lock().unwrap();
    let from_queue = lines.iter().filter(|l| l.contains("virtio queue")).count();
    assert!(from_queue > 0, "virtio-queue never complained: the test does not reach it\n{lines:#?}");
    assert!(
        lines.len() <= 2 * devices::noise::LINES_PER_CAUSE as usize,
        "{} lines for 10^5 bad rounds:\n{lines:#?}",
        lines.len()
    );
}
