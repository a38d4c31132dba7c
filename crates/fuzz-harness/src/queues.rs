//! virtio: raw MMIO register sequences, and each device's queue processing with chains the
//! input lays out (descriptors anywhere, any lengths and flags, any avail index), notified
//! at the input's will, with resets in between. Backends: a temporary file (block), the
//! socketpair stand-in for a tap (net), a socket pair as the chardev (console).

use crate::bytes::Bytes;
use devices::bus::BusDevice;
use devices::chardev::Chardev;
use devices::guest_events::GuestEvents;
use devices::virtio::balloon::{Balloon, BalloonOptions};
use devices::virtio::block::{Block, BlockOptions, CacheMode};
use devices::virtio::console::{Console, MultiportConsole, PortBackend};
use devices::virtio::input::VirtioKeyboard;
use devices::virtio::net::{Net, Tap};
use devices::virtio::rng::Rng;
use devices::virtio::test_driver::TestDriver;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Queue size every target activates with.
const QUEUE_SIZE: u16 = 16;

/// Raw register reads and writes of any width at any offset of one slot, with the device's
/// event loop run now and then (a virtio-rng behind it).
pub fn virtio_mmio(data: &[u8]) {
    let (mut d, _) = TestDriver::new(Rng::new().expect("rng"));
    let mut b = Bytes::new(data);
    for _ in 0..512 {
        if b.is_empty() {
            break;
        }
        let op = b.u8();
        let offset = u64::from(b.u16() % 0x200);
        let width = [1, 2, 4, 8][usize::from(op >> 1) % 4];
        match op & 1 {
            0 => {
                let mut buf = [0u8; 8];
                d.transport.read(offset, &mut buf[..width]);
            }
            _ => {
                let value = b.u64().to_le_bytes();
                d.transport.write(offset, &value[..width]);
            }
        }
        if op & 0x80 != 0 {
            d.run_ready();
        }
    }
    d.run_ready();
    // Whatever the guest did, a snapshot of it restores into a freshly built device.
    let state = d.save();
    if let Err(e) = d.restored(Rng::new().expect("rng"), state) {
        panic!("a state the transport saved was refused: {e}");
    }
}

/// Chains and notifications on an activated device; `poke` lets a target add its own
/// steps (a frame arriving on the tap, chardev input).
pub(crate) fn drive(
    d: &mut TestDriver,
    queues: usize,
    b: &mut Bytes,
    mut poke: impl FnMut(&mut TestDriver, &mut Bytes),
) {
    // Any subset of what the device offers (a refused set is the transport's business,
    // which virtio_mmio covers), packed ring included: with VIRTIO_F_RING_PACKED acked the
    // descriptors written below are read as a packed ring's.
    d.transport.offer_packed_ring(true);
    let offered = d.device_features();
    d.activate(b.u64() & offered, QUEUE_SIZE);
    let payload = b.slice(255);
    let base = d.alloc_with(payload);
    for _ in 0..256 {
        if b.is_empty() {
            break;
        }
        let q = usize::from(b.u8()) % queues;
        match b.u8() % 8 {
            0 | 1 => {
                let index = b.u16() % QUEUE_SIZE;
                let addr = if b.u8() % 4 == 0 { b.u64() } else { base + u64::from(b.u16()) };
                let len = if b.u8() % 4 == 0 { b.u32() } else { u32::from(b.u16()) };
                let (flags, next) = (b.u16() & 7, b.u16());
                d.write_desc(q, index, addr, len, flags, next);
            }
            2 => d.publish(q, b.u16()),
            3 => {
                d.kick(q as u32);
                d.run_ready();
            }
            4 => d.set_avail_idx(q, b.u16()),
            5 => {
                // Reset and activate again, as a driver reloading does.
                d.reset();
                d.activate(b.u64() & offered, QUEUE_SIZE);
            }
            6 => poke(d, b),
            _ => {
                let _ = d.used(q);
            }
        }
    }
    d.run_ready();
}

/// Whatever the guest did, a snapshot of the device restores into `fresh`, built as the
/// restoring process would build it, and the device serves on. (A macro: the device's
/// event-loop trait is event-manager's, which this crate does not depend on.)
macro_rules! snapshot_restores {
    ($d:expr, $fresh:expr) => {{
        let state = $d.save();
        if let Err(e) = $d.restored($fresh, state) {
            panic!("a state the device saved was refused: {e}");
        }
    }};
}

pub fn queue_rng(data: &[u8]) {
    let (mut d, _) = TestDriver::new(Rng::new().expect("rng"));
    drive(&mut d, 1, &mut Bytes::new(data), |_, _| {});
    snapshot_restores!(d, Rng::new().expect("rng"));
}

/// The virtio keyboard: its event and status queues, with keys typed by the monitor
/// (any key, pressed or released) and the driver's config-space selects in between.
pub fn queue_input(data: &[u8]) {
    let (mut d, keyboard) = TestDriver::new(VirtioKeyboard::new().expect("keyboard"));
    drive(&mut d, 2, &mut Bytes::new(data), |d, b| {
        let keys = devices::legacy::KEYS;
        let key = keys[usize::from(b.u8()) % keys.len()];
        keyboard.lock().unwrap_or_else(|p| p.into_inner()).key_event(&key, b.u8() & 1 == 1);
        let select = u32::from(b.u16());
        d.transport.write(0x100, &select.to_le_bytes()[..2]);
        let mut config = [0u8; 8];
        d.transport.read(0x100 + u64::from(b.u8() % 136), &mut config[..4]);
    });
}

/// A 1 MiB image in the temp dir, made once per process.
fn image() -> &'static PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("microvm-fuzz-block-{}.img", std::process::id()));
        std::fs::write(&path, vec![0u8; 1 << 20]).expect("the block target's image");
        path
    })
}

pub fn queue_block(data: &[u8]) {
    let mut b = Bytes::new(data);
    let options = BlockOptions {
        id: "fuzz".into(),
        path: image().clone(),
        read_only: b.u8() & 1 == 1,
        cache: CacheMode::Writeback,
        limits: Default::default(),
        engine: Default::default(),
        image: Default::default(),
        num_queues: 1,
    };
    let Ok(block) = Block::new(options) else { return };
    let (mut d, _) = TestDriver::new(block);
    drive(&mut d, 1, &mut b, |_, _| {});
}

pub fn queue_net(data: &[u8]) {
    let mut b = Bytes::new(data);
    let ufo = b.u8() & 1 == 1;
    let (tap, peer) = Tap::socketpair_for_tests(ufo);
    let Ok(net) = Net::new(tap, None) else { return };
    let mut peer = UnixStream::from(peer);
    let (mut d, _) = TestDriver::new(net);
    let mut sink = vec![0u8; 70_000];
    drive(&mut d, 2, &mut b, |d, b| {
        // A frame from the host side (any length the input says), then whatever the
        // guest sent is drained so the socket never fills.
        let frame = b.slice(255);
        let _ = peer.write(frame);
        while matches!(peer.read(&mut sink), Ok(n) if n > 0) {}
        d.run_ready();
    });
    // The same tap as far as the guest can tell (UFO offered or not).
    let (tap, _peer) = Tap::socketpair_for_tests(ufo);
    let Ok(fresh) = Net::new(tap, None) else { return };
    snapshot_restores!(d, fresh);
}

/// Inflate, deflate, statistics and (when the input turns it on) free page reporting; the
/// pages it returns are the test memory's own.
pub fn queue_balloon(data: &[u8]) {
    let mut b = Bytes::new(data);
    let options = BalloonOptions { deflate_on_oom: b.u8() & 1 == 1, free_page_reporting: b.u8() & 1 == 1 };
    let reporting = options.free_page_reporting;
    let Ok(mut balloon) = Balloon::new(options) else { return };
    // The guest's `actual` reaches the monitors' queue, as in microvm.
    let Ok(events) = GuestEvents::new() else { return };
    balloon.report_to(events.clone());
    let queues = 3 + usize::from(reporting);
    let (mut d, device) = TestDriver::new(balloon);
    drive(&mut d, queues, &mut b, |d, b| {
        // The monitor moving the target (QMP balloon) and asking for fresh statistics
        // (qom-get guest-stats).
        let mut balloon = device.lock().unwrap();
        balloon.set_target(b.u32());
        balloon.request_stats();
        drop(balloon);
        d.run_ready();
        events.take();
    });
    let Ok(fresh) = Balloon::new(options) else { return };
    snapshot_restores!(d, fresh);
}

/// virtio-serial with multiport: a virtconsole and a named port, each on a socket-pair
/// chardev, and the control queues the driver speaks to open, name and close ports.
pub fn queue_multiport(data: &[u8]) {
    let mut b = Bytes::new(data);
    let mut peers = Vec::new();
    let mut ports = Vec::new();
    for (id, name, console) in [("console0", None, true), ("port1", Some("org.fuzz.port".to_string()), false)] {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let _ = theirs.set_nonblocking(true);
        let output = ours.try_clone().expect("clone");
        let Ok(chardev) = Chardev::from_fds("fuzzport", Some(OwnedFd::from(ours)), Some(OwnedFd::from(output))) else {
            return;
        };
        ports.push(PortBackend { chardev, id: Some(id.into()), name, console });
        peers.push(theirs);
    }
    let Ok(mut console) = MultiportConsole::new(ports, 2) else { return };
    // Opens and closes reach the monitors' queue, as in microvm.
    let Ok(events) = GuestEvents::new() else { return };
    console.report_to(events.clone());
    let (mut d, _) = TestDriver::new(console);
    let mut sink = vec![0u8; 70_000];
    // Port 0's pair, the control pair, port 1's pair: six queues.
    drive(&mut d, 6, &mut b, |d, b| {
        let peer = &mut peers[usize::from(b.u8()) % 2];
        let _ = peer.write(b.slice(255));
        for peer in &mut peers {
            while matches!(peer.read(&mut sink), Ok(n) if n > 0) {}
        }
        d.run_ready();
        events.take();
    });
    let null = |name| Chardev::open(name, &devices::chardev::ChardevBackend::Null);
    let (Ok(console0), Ok(port1)) = (null("c"), null("p")) else { return };
    let ports = vec![
        PortBackend { chardev: console0, id: None, name: None, console: true },
        PortBackend { chardev: port1, id: None, name: Some("org.fuzz.port".into()), console: false },
    ];
    let Ok(fresh) = MultiportConsole::new(ports, 2) else { return };
    snapshot_restores!(d, fresh);
}

pub fn queue_console(data: &[u8]) {
    let mut b = Bytes::new(data);
    let (ours_in, mut theirs_in) = UnixStream::pair().expect("socket pair");
    let (ours_out, mut theirs_out) = UnixStream::pair().expect("socket pair");
    let _ = theirs_out.set_nonblocking(true);
    let chardev = Chardev::from_fds("fuzzcon", Some(OwnedFd::from(ours_in)), Some(OwnedFd::from(ours_out)));
    let Ok(chardev) = chardev else { return };
    let Ok(console) = Console::new(chardev) else { return };
    let (mut d, _) = TestDriver::new(console);
    let mut sink = vec![0u8; 70_000];
    // receiveq and transmitq of port 0.
    drive(&mut d, 2, &mut b, |d, b| {
        let _ = theirs_in.write(b.slice(255));
        while matches!(theirs_out.read(&mut sink), Ok(n) if n > 0) {}
        d.run_ready();
    });
    let Ok(chardev) = Chardev::open("fresh", &devices::chardev::ChardevBackend::Null) else { return };
    let Ok(fresh) = Console::new(chardev) else { return };
    snapshot_restores!(d, fresh);
}

/// Firecracker's hybrid vsock with real Unix sockets on the host side: besides the raw
/// chains of `drive`, the input sends well-formed packets (any op, ports, flags, window
/// and length, now and then from a foreign CID), posts rx buffers, connects host processes
/// with any first line (`CONNECT <port>` or not), and writes to or closes the host ends
/// of connections, whose listeners wait at `<uds_path>_0` to `_3`.
pub fn queue_vsock(data: &[u8]) {
    use devices::virtio::hvsock::packet::{Header, HDR_LEN, HOST_CID, TYPE_STREAM};
    use devices::virtio::hvsock::HybridVsock;
    use std::os::unix::net::UnixListener;
    const CID: u64 = 3;
    let Ok(dir) = vmm_sys_util::tempdir::TempDir::new() else { return };
    let uds = dir.as_path().join("v.sock");
    let Ok(vsock) = HybridVsock::new(CID, &uds) else { return };
    let listeners: Vec<UnixListener> = (0..4)
        .filter_map(|port| {
            let listener = UnixListener::bind(vsock.listener_path(port)).ok()?;
            listener.set_nonblocking(true).ok()?;
            Some(listener)
        })
        .collect();
    let mut peers: Vec<UnixStream> = Vec::new();
    let mut sink = vec![0u8; 70_000];
    let (mut d, _) = TestDriver::new(vsock);
    let mut b = Bytes::new(data);
    drive(&mut d, 3, &mut b, |d, b| {
        match b.u8() % 4 {
            0 => {
                // A guest packet as a driver lays it out, on the tx queue.
                let ports = [0, 1, 2, 3, 1 << 30, (1 << 30) + 1];
                let payload = b.slice(255);
                let header = Header {
                    src_cid: if b.u8() % 8 == 0 { b.u64() } else { CID },
                    dst_cid: HOST_CID,
                    src_port: u32::from(b.u8() % 4),
                    dst_port: ports[usize::from(b.u8()) % ports.len()],
                    len: if b.u8() % 8 == 0 { b.u32() } else { payload.len() as u32 },
                    kind: if b.u8() % 8 == 0 { b.u16() } else { TYPE_STREAM },
                    op: u16::from(b.u8() % 9),
                    flags: u32::from(b.u8() % 4),
                    buf_alloc: b.u32(),
                    fwd_cnt: b.u32(),
                };
                let mut packet = header.encode().to_vec();
                packet.extend_from_slice(payload);
                let addr = d.alloc_with(&packet);
                d.add_chain(1, &[(addr, packet.len() as u32, false)]);
                d.kick(1);
            }
            1 => {
                // rx buffers of any size the input says (Linux posts 4 KiB + a header).
                let len = if b.u8() % 4 == 0 { u32::from(b.u16()) } else { 4096 + HDR_LEN as u32 };
                let addr = d.alloc(len, 0);
                d.add_chain(0, &[(addr, len, true)]);
                d.kick(0);
            }
            2 => {
                // A host process connecting with whatever first line.
                if peers.len() < 16 {
                    if let Ok(mut s) = UnixStream::connect(&uds) {
                        let _ = s.set_nonblocking(true);
                        let _ = s.write(b.slice(32));
                        peers.push(s);
                    }
                }
            }
            _ => {
                // A host end writes, or closes.
                for listener in &listeners {
                    while let Ok((s, _)) = listener.accept() {
                        let _ = s.set_nonblocking(true);
                        peers.push(s);
                    }
                }
                if !peers.is_empty() {
                    let i = usize::from(b.u8()) % peers.len();
                    if b.u8() % 2 == 0 {
                        let _ = peers[i].write(b.slice(255));
                    } else {
                        peers.swap_remove(i);
                    }
                }
            }
        }
        d.run_ready();
        for peer in &mut peers {
            while matches!(peer.read(&mut sink), Ok(n) if n > 0) {}
        }
        d.run_ready();
    });
    let Ok(fresh) = HybridVsock::new(CID, &dir.as_path().join("restored.sock")) else { return };
    snapshot_restores!(d, fresh);
}
