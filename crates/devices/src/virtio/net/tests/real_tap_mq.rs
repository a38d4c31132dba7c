//! `mq=on` on a real multiqueue tap: the kernel steers the host's flows only to the
//! tap queues of the pairs the guest enabled (the others are detached), and spreads
//! them over all of them once the guest enables them.

use super::super::multiqueue::{set_pairs, OK, PAIRS};
use super::*;
use crate::virtio::net::Backend;

/// An IPv4/UDP frame to the guest from source port `port`: the tap's queue choice
/// hashes the flow, so frames of different ports spread over its queues.
fn udp_frame(port: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let payload = 8;
    let total = (20 + 8 + payload) as u16;
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&(8 + payload as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[0x5a; 8]);
    f
}

/// Sends 32 flows from the host and counts the frames each pair's receive queue got.
fn frames_per_pair(d: &mut TestDriver, sock: &PacketSocket, first_port: u16) -> Vec<usize> {
    for port in first_port..first_port + 32 {
        sock.send(&udp_frame(port));
    }
    let mut counts = vec![0; PAIRS];
    let deadline = Instant::now() + Duration::from_secs(2);
    while counts.iter().sum::<usize>() < 32 && Instant::now() < deadline {
        d.run_events();
        for (k, count) in counts.iter_mut().enumerate() {
            *count += d.used(2 * k).len();
        }
    }
    counts
}

#[test]
fn a_multiqueue_tap_steers_flows_only_to_the_pairs_the_guest_enabled() {
    in_new_netns(|| {
        // A single-queue tap of the name cannot take more queues: one line says why.
        let single = open_tap(Some("mvsq0"));
        let e = Tap::open_queues(Some(single.name()), 2).unwrap_err();
        assert!(matches!(e, TapError::NotAMultiqueueTap(_)), "{e}");
        assert!(e.to_string().contains("multi_queue"), "{e}");

        let taps = Tap::open_queues(Some("mvmq0"), PAIRS as u16).unwrap();
        assert!(taps.iter().all(|t| t.name() == "mvmq0"));
        link_up("mvmq0");
        let net = Net::multiqueue(taps.into_iter().map(Backend::from).collect(), Some(MAC)).unwrap();
        let (mut d, _) = TestDriver::new(net);
        d.activate(F_MQ | F_CTRL_VQ, 64);
        for k in 0..PAIRS {
            for _ in 0..60 {
                let addr = d.alloc(2048, 0);
                d.add_chain(2 * k, &[(addr, 2048, true)]);
            }
            d.notify((2 * k) as u32);
        }
        let sock = PacketSocket::open("mvmq0", false);
        // One pair enabled: its tap queue is the only one attached, so every flow is its.
        assert_eq!(frames_per_pair(&mut d, &sock, 1000), [32, 0, 0]);
        assert_eq!(set_pairs(&mut d, PAIRS as u16), OK);
        let counts = frames_per_pair(&mut d, &sock, 2000);
        assert_eq!(counts.iter().sum::<usize>(), 32, "{counts:?}");
        assert!(counts.iter().all(|&c| c > 0), "32 flows over 3 attached queues: {counts:?}");
    });
}
