//! virtio-net with `mq=on` on three stand-in tap queues: the offer and config space,
//! the control queue's answers, pairs served only once the guest enables them, traffic
//! on pair k reaching tap queue k both ways, and the enabled pairs across a snapshot.

use super::*;
use crate::state::DeviceState;
use crate::virtio::net::ctrl::CTRL_QUEUE_SIZE;
use crate::virtio::net::{Backend, MultiqueueNetState};
use crate::virtio::{VirtioDevice, VirtioState};
use virtio_bindings::virtio_net as vn;

pub(super) const PAIRS: usize = 3;
/// Where the control queue is with MQ acked: after the three pairs.
pub(super) const CTRL: usize = 2 * PAIRS;

fn mq_device() -> (Net, Vec<Peer>) {
    let (taps, peers): (Vec<Backend>, Vec<Peer>) = (0..PAIRS)
        .map(|_| {
            let (tap, peer) = Tap::socketpair_for_tests(false);
            (Backend::from(tap), Peer(peer))
        })
        .unzip();
    (Net::multiqueue(taps, Some(MAC)).unwrap(), peers)
}

fn mq_driver(features: u64) -> (TestDriver, Vec<Peer>, std::sync::Arc<std::sync::Mutex<Net>>) {
    let (net, peers) = mq_device();
    let (mut d, dev) = TestDriver::new(net);
    d.activate(features, 16);
    (d, peers, dev)
}

/// Sends one control command (header and data in one buffer, the ack byte in a writable
/// one) on queue `ctrl`; returns the ack the device wrote.
pub(super) fn command(d: &mut TestDriver, ctrl: usize, bytes: &[u8]) -> u8 {
    let cmd = d.alloc_with(bytes);
    let ack = d.alloc(1, 0xee);
    d.add_chain(ctrl, &[(cmd, bytes.len() as u32, false), (ack, 1, true)]);
    d.notify(ctrl as u32);
    d.read_bytes(ack, 1)[0]
}

pub(super) fn set_pairs(d: &mut TestDriver, n: u16) -> u8 {
    let [lo, hi] = n.to_le_bytes();
    command(d, CTRL, &[vn::VIRTIO_NET_CTRL_MQ as u8, vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET as u8, lo, hi])
}

/// Posts a receive buffer of 2 KiB on pair `k`.
fn post_rx_on(d: &mut TestDriver, k: usize) -> u32 {
    let addr = d.alloc(2048, 0xee);
    let head = u32::from(d.add_chain(2 * k, &[(addr, 2048, true)]));
    d.notify((2 * k) as u32);
    head
}

/// Sends `p` on pair `k`'s transmit queue.
fn send_on(d: &mut TestDriver, k: usize, p: &[u8]) {
    let buf = d.alloc_with(p);
    d.add_chain(2 * k + 1, &[(buf, p.len() as u32, false)]);
    d.notify((2 * k + 1) as u32);
}

pub(super) const OK: u8 = vn::VIRTIO_NET_OK as u8;
const ERR: u8 = vn::VIRTIO_NET_ERR as u8;

#[test]
fn offers_mq_and_the_control_queue_with_max_pairs_in_config_space() {
    let (net, _peers) = mq_device();
    let mut sizes = vec![256u16; 2 * PAIRS];
    sizes.push(CTRL_QUEUE_SIZE);
    assert_eq!(net.queue_max_sizes(), &sizes[..]);
    let (mut d, _) = TestDriver::new(net);
    let offered = d.device_features();
    assert_ne!(offered & F_MQ, 0);
    assert_ne!(offered & F_CTRL_VQ, 0);
    let mut config = [0u8; 10];
    d.transport.read(0x100, &mut config);
    assert_eq!(&config[..6], &MAC);
    assert_eq!(u16::from_le_bytes([config[8], config[9]]), PAIRS as u16);
    // A single-queue device offers neither and shows one pair.
    let (single, _peer) = device(false);
    assert_eq!(single.features() & (F_MQ | F_CTRL_VQ), 0);
    assert_eq!(single.queue_max_sizes().len(), 2);
    assert_eq!(config_space(&MAC, 1)[8..], [1, 0]);
}

#[test]
fn pairs_carry_traffic_only_once_enabled_and_each_on_its_own_tap_queue() {
    let (mut d, peers, dev) = mq_driver(F_MQ | F_CTRL_VQ);
    let heads: Vec<u32> = (0..PAIRS).map(|k| post_rx_on(&mut d, k)).collect();
    // Before VQ_PAIRS_SET only pair 0 is served (virtio 1.x §5.1.6.5.5).
    for (k, peer) in peers.iter().enumerate() {
        peer.send(&packet(&frame(60 + k, k as u8)));
    }
    d.run_events();
    assert_eq!(d.used(0), [(heads[0], 72)]);
    assert!(d.used(2).is_empty() && d.used(4).is_empty(), "pairs 1 and 2 are not enabled yet");
    send_on(&mut d, 2, &packet(&frame(70, 9)));
    assert!(d.used(5).is_empty(), "a disabled pair's transmit queue is not served");

    assert_eq!(set_pairs(&mut d, PAIRS as u16), OK);
    assert_eq!(dev.lock().unwrap().enabled_pairs(), PAIRS);
    assert_eq!(d.used(CTRL).len(), 1, "the command chain is returned");
    // The frames waiting on tap queues 1 and 2 now reach pairs 1 and 2, and the frame
    // pair 2 sent reaches tap queue 2, not another.
    assert_eq!(d.used(2), [(heads[1], 73)]);
    assert_eq!(d.used(4), [(heads[2], 74)]);
    assert_eq!(peers[2].recv().as_deref(), Some(&packet(&frame(70, 9))[..]));
    for k in 0..PAIRS {
        let p = packet(&frame(80, 20 + k as u8));
        send_on(&mut d, k, &p);
        for (j, peer) in peers.iter().enumerate() {
            assert_eq!(peer.recv().as_deref(), (j == k).then_some(&p[..]), "pair {k} to tap queue {j}");
        }
    }

    // Back to one pair: the others are not served any more.
    assert_eq!(set_pairs(&mut d, 1), OK);
    post_rx_on(&mut d, 1);
    peers[1].send(&packet(&frame(60, 1)));
    d.run_events();
    assert!(d.used(2).is_empty());
}

/// With EVENT_IDX the driver kicks the control queue only when its avail index passes
/// the avail_event the device published (Linux then spins on the answer): after each
/// command the device asks to be kicked for the next one.
#[test]
fn with_event_idx_the_control_queue_asks_for_the_next_kick() {
    let (mut d, _peers, dev) = mq_driver(F_MQ | F_CTRL_VQ | F_EVENT_IDX);
    for (round, n) in [1u16, 3, 2].into_iter().enumerate() {
        assert_eq!(set_pairs(&mut d, n), OK);
        assert_eq!(dev.lock().unwrap().enabled_pairs(), usize::from(n));
        assert_eq!(d.avail_event(CTRL), round as u16 + 1, "command {round}");
    }
}

#[test]
fn bad_pair_counts_and_unknown_commands_are_refused_and_change_nothing() {
    let (mut d, _peers, dev) = mq_driver(F_MQ | F_CTRL_VQ);
    assert_eq!(set_pairs(&mut d, 0), ERR);
    assert_eq!(set_pairs(&mut d, PAIRS as u16 + 1), ERR);
    assert_eq!(dev.lock().unwrap().enabled_pairs(), 1);
    // RX mode commands are acked (the device filters nothing); others as QEMU: ERR.
    let rx = vn::VIRTIO_NET_CTRL_RX as u8;
    assert_eq!(command(&mut d, CTRL, &[rx, vn::VIRTIO_NET_CTRL_RX_PROMISC as u8, 1]), OK);
    assert_eq!(command(&mut d, CTRL, &[rx, vn::VIRTIO_NET_CTRL_RX_ALLMULTI as u8, 1]), OK);
    assert_eq!(command(&mut d, CTRL, &[vn::VIRTIO_NET_CTRL_VLAN as u8, 0, 1, 0]), ERR);
    // A chain with no room for the answer is returned unanswered; the queue goes on.
    let cmd = d.alloc_with(&[vn::VIRTIO_NET_CTRL_MQ as u8, 0, 2, 0]);
    let head = d.add_chain(CTRL, &[(cmd, 4, false)]);
    d.notify(CTRL as u32);
    assert_eq!(d.used(CTRL).last(), Some(&(u32::from(head), 0)));
    assert_eq!(dev.lock().unwrap().enabled_pairs(), 1);
    assert_eq!(set_pairs(&mut d, 2), OK);
    assert_eq!(dev.lock().unwrap().enabled_pairs(), 2);
}

#[test]
fn without_mq_the_control_queue_follows_the_first_pair() {
    // CTRL_VQ alone: three queues set up, the control queue at index 2, one pair.
    let (mut d, peers, dev) = mq_driver(F_CTRL_VQ);
    let [lo, hi] = 2u16.to_le_bytes();
    let set = [vn::VIRTIO_NET_CTRL_MQ as u8, vn::VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET as u8, lo, hi];
    assert_eq!(command(&mut d, 2, &set), ERR, "VQ_PAIRS_SET needs MQ");
    assert_eq!(dev.lock().unwrap().enabled_pairs(), 1);
    let p = packet(&frame(64, 3));
    send_on(&mut d, 0, &p);
    assert_eq!(peers[0].recv().as_deref(), Some(&p[..]));
}

#[test]
fn the_enabled_pairs_survive_a_snapshot() {
    let (mut d, _peers, _dev) = mq_driver(F_MQ | F_CTRL_VQ);
    assert_eq!(set_pairs(&mut d, 2), OK);
    let head = {
        let addr = d.alloc(2048, 0xee);
        u32::from(d.add_chain(2, &[(addr, 2048, true)]))
    };
    d.notify(2);
    let state = d.save();
    let DeviceState::Virtio(t) = &state else { panic!("virtio") };
    assert_eq!(t.device, VirtioState::MultiqueueNet(MultiqueueNetState { mac: MAC, pairs: 2 }));
    assert_eq!(t.queues.len(), 2 * PAIRS + 1);

    let (net, peers) = mq_device();
    let (mut r, dev) = d.restored(net, state.clone()).unwrap();
    assert_eq!(dev.lock().unwrap().enabled_pairs(), 2);
    peers[1].send(&packet(&frame(61, 1)));
    r.run_events();
    assert_eq!(r.used(2), [(head, 73)], "pair 1's buffer, posted before the snapshot");
    // A single-queue device cannot take a multiqueue device's state.
    let (single, _peer) = device(false);
    assert!(d.restored(single, state).is_err());
}
