//! Every kind of device state survives postcard, the VMM's encoding of the state file.

use super::*;
use crate::bus::{Bus, BusDevice};
use crate::chardev::{Chardev, ChardevBackend};
use crate::legacy::{I8042Controller, I8042Port, I8042PortDevice, SerialPort};
use crate::virtio::balloon::{Balloon, BalloonOptions};
use crate::virtio::block::{Block, BlockOptions, CacheMode};
use crate::virtio::console::{Console, MultiportConsole, PortBackend};
use crate::virtio::net::{Net, Tap};
use crate::virtio::rng::Rng;
use crate::virtio::test_driver::TestDriver;
use crate::virtio::vhost::fake::FakeVhost;
use crate::virtio::vhost::net::VhostNet;
use crate::virtio::vhost::vsock::VhostVsock;
use crate::EventFdTrigger;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

fn trigger() -> EventFdTrigger {
    EventFdTrigger::new(EventFd::new(EFD_NONBLOCK).unwrap())
}

fn null() -> Chardev {
    Chardev::open("n", &ChardevBackend::Null).unwrap()
}

/// The saved state of an activated virtio device.
fn virtio<D>(device: D) -> DeviceState
where
    D: crate::virtio::VirtioDevice + event_manager::MutEventSubscriber + 'static,
{
    let (mut d, _) = TestDriver::new(device);
    d.activate(0, 16);
    d.save()
}

#[test]
fn every_device_kind_round_trips_through_postcard() {
    let mut serial = SerialPort::new(trigger(), Box::new(std::io::sink()));
    serial.queue_input(b"typed");
    let controller = Arc::new(Mutex::new(I8042Controller::new(trigger(), trigger())));
    let mut keyboard = I8042PortDevice { controller, port: I8042Port::Data };
    let ged = crate::acpi::GenericEventDevice::new(trigger());
    let sleep = crate::acpi::SleepControlRegisters::new(trigger(), trigger());
    let mut bus = Bus::new();
    bus.insert(0x3f8, 8, "serial", Arc::new(Mutex::new(serial))).unwrap();
    bus.insert(0xfea00000, 4, "ged", Arc::new(Mutex::new(ged))).unwrap();
    bus.insert(0xfea00200, 3, "sleep", Arc::new(Mutex::new(sleep))).unwrap();
    let mut saved = bus.save_all().unwrap();
    saved.push(SavedDevice { base: 0x60, len: 1, name: "i8042".into(), state: keyboard.save().unwrap() });
    let (tap, _peer) = Tap::socketpair_for_tests(false);
    let ports = vec![PortBackend { chardev: null(), id: Some("p".into()), name: Some("n".into()), console: false }];
    let vsock = VhostVsock::new(3, FakeVhost::default()).unwrap();
    let (vhost_tap, _vhost_peer) = Tap::socketpair_for_tests(false);
    let vhost_net = VhostNet::new(vhost_tap, None, FakeVhost::default()).unwrap();
    let image = std::env::temp_dir().join(format!("microvm-state-test-{}", std::process::id()));
    std::fs::write(&image, vec![0u8; 4096]).unwrap();
    let opts = BlockOptions {
        id: "d".into(),
        path: image.clone(),
        read_only: false,
        cache: CacheMode::Writeback,
        limits: Default::default(),
        engine: Default::default(),
        image: Default::default(),
        num_queues: 1,
    };
    let block = Block::new(opts).unwrap();
    std::fs::remove_file(&image).unwrap();
    let devices = [
        virtio(block),
        virtio(vhost_net),
        virtio(Rng::new().unwrap()),
        virtio(Balloon::new(BalloonOptions { deflate_on_oom: true, free_page_reporting: true }).unwrap()),
        virtio(Console::new(null()).unwrap()),
        virtio(MultiportConsole::new(ports, 2).unwrap()),
        virtio(Net::new(tap, None).unwrap()),
        virtio(vsock),
    ];
    for (i, state) in devices.into_iter().enumerate() {
        saved.push(SavedDevice { base: 0xd000_0000 + 0x200 * i as u64, len: 0x200, name: "virtio".into(), state });
    }
    // The clock needs a timer; a test one.
    struct NoTimer;
    impl crate::legacy::RtcTimer for NoTimer {
        fn arm(&mut self, _: Option<std::time::Duration>) {}
    }
    let mut rtc = crate::legacy::Rtc::new(crate::legacy::host_clock(), trigger(), NoTimer);
    saved.push(SavedDevice { base: 0x70, len: 2, name: "rtc".into(), state: rtc.save().unwrap() });
    saved.push(SavedDevice { base: 0x501, len: 1, name: "exit".into(), state: DeviceState::Stateless });

    let bytes = postcard::to_allocvec(&saved).unwrap();
    let back: Vec<SavedDevice> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, saved);
    let kinds: Vec<_> = back.iter().map(|d| d.state.kind()).collect();
    assert_eq!(
        kinds,
        [
            "serial",
            "acpi-ged",
            "acpi-sleep",
            "i8042",
            "virtio-mmio",
            "virtio-mmio",
            "virtio-mmio",
            "virtio-mmio",
            "virtio-mmio",
            "virtio-mmio",
            "virtio-mmio",
            "virtio-mmio",
            "rtc",
            "stateless"
        ]
    );
    assert!(postcard::from_bytes::<Vec<SavedDevice>>(&bytes[..bytes.len() / 2]).is_err(), "a cut file is refused");
}

/// The VMM carries these across threads and into its own error types.
#[test]
fn errors_and_states_can_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<StateError>();
    send_sync::<DeviceState>();
    send_sync::<SavedDevice>();
}
