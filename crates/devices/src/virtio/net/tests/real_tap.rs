//! The device on real taps, each test in a network namespace it creates
//! (unshare(CLONE_NEWNET) in a thread of its own, so nothing is visible
//! outside and everything vanishes with the thread). Needs root and
//! /dev/net/tun; fails otherwise, unless MICROVM_SKIP_TAP_TESTS=1.

use super::*;
use crate::virtio::net::TapError;
use std::time::{Duration, Instant};

const PACKET_VNET_HDR: libc::c_int = 15;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_GTSO: u32 = 0x1e;

fn in_new_netns(test: impl FnOnce() + Send + 'static) {
    if std::env::var("MICROVM_SKIP_TAP_TESTS").as_deref() == Ok("1") {
        eprintln!("MICROVM_SKIP_TAP_TESTS=1: tap test skipped");
        return;
    }
    let result = std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "tap tests need root: unshare(CLONE_NEWNET) failed: {}; set MICROVM_SKIP_TAP_TESTS=1 to skip them",
                std::io::Error::last_os_error()
            );
        }
        // No IPv6 autoconfiguration chatter (DAD, router solicitations)
        // on the test taps: the only frames are the tests' own.
        let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
        test();
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn open_tap(name: Option<&str>) -> Tap {
    Tap::open(name).unwrap_or_else(|e| {
        panic!("{e}; tap tests need /dev/net/tun and root (set MICROVM_SKIP_TAP_TESTS=1 to skip them)")
    })
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: plain data; all zeros is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    ifr
}

fn socket(domain: libc::c_int, kind: libc::c_int, protocol: libc::c_int) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fresh fd, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn link_up(name: &str) {
    let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
    let mut ifr = ifreq(name);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write our ifreq.
    unsafe {
        assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr), 0);
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut ifr), 0, "link up");
    }
}

/// An ethtool boolean (ETHTOOL_G*) of interface `name`.
fn ethtool_get(name: &str, cmd: u32) -> u32 {
    let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
    let mut value = [cmd, 0u32];
    let mut ifr = ifreq(name);
    ifr.ifr_ifru.ifru_data = value.as_mut_ptr().cast();
    // SAFETY: SIOCETHTOOL reads the command and writes the value through ifru_data.
    let ret = unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
    assert_eq!(ret, 0, "SIOCETHTOOL: {}", std::io::Error::last_os_error());
    value[1]
}

/// An AF_PACKET socket on the tap: what the device writes to the tap
/// arrives here, and what is sent here goes to the device.
struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    fn open(ifname: &str, vnet_hdr: bool) -> PacketSocket {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(protocol));
        if vnet_hdr {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads one int.
            let ret = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    PACKET_VNET_HDR,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(ret, 0, "PACKET_VNET_HDR: {}", std::io::Error::last_os_error());
        }
        let cname = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: reads a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        assert_ne!(ifindex, 0);
        // SAFETY: plain data; all zeros is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol;
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: bind reads a sockaddr_ll of the given size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(ret, 0, "bind: {}", std::io::Error::last_os_error());
        PacketSocket { fd }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: send reads `frame.len()` bytes from our slice.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "send: {}", std::io::Error::last_os_error());
    }

    /// The next frame with our EtherType (at `offset`, past any vnet
    /// header), waiting up to 2 s.
    fn recv_ours(&self, offset: usize) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one pollfd we own.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let mut buf = vec![0u8; 70000];
            // SAFETY: recv writes at most `buf.len()` bytes.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                continue;
            }
            buf.truncate(n as usize);
            if buf.len() >= offset + 14 && buf[offset + 12..offset + 14] == ETHERTYPE.to_be_bytes() {
                return Some(buf);
            }
        }
        None
    }
}

/// Runs the device's event loop until `count` RX used entries arrived (or 2 s).
fn wait_rx(d: &mut TestDriver, count: usize) -> Vec<(u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut used = Vec::new();
    while used.len() < count && Instant::now() < deadline {
        d.run_events();
        used.extend(d.used(RX));
    }
    used
}

fn net_on_tap(name: &str, features: u64) -> TestDriver {
    let tap = open_tap(Some(name));
    link_up(name);
    let (mut d, _) = TestDriver::new(Net::new(tap, Some(MAC)).unwrap());
    d.activate(features, 16);
    d
}

#[test]
fn taps_are_named_by_the_kernel_or_the_caller_and_errors_say_why() {
    in_new_netns(|| {
        let picked = open_tap(None);
        assert!(picked.name().starts_with("tap"), "{}", picked.name());
        assert!(!picked.name().contains('%'));
        let named = open_tap(Some("mvtest0"));
        assert_eq!(named.name(), "mvtest0");
        eprintln!("tap {} takes UFO: {}", named.name(), named.supports_ufo());
        let e = Tap::open(Some("mvtest0")).unwrap_err();
        assert!(matches!(e, TapError::Busy(_)), "{e}");
        assert_eq!(e.to_string(), "tap mvtest0 is in use (another process or VM has it open)");
        let e = Tap::open(Some("lo")).unwrap_err();
        assert!(matches!(e, TapError::NotATap(_)), "{e}");
        // Closing the fd deletes a tap we created: the name is free again.
        drop(named);
        assert_eq!(open_tap(Some("mvtest0")).name(), "mvtest0");
    });
}

#[test]
fn frames_cross_a_real_tap_both_ways() {
    in_new_netns(|| {
        let mut d = net_on_tap("mvtest1", 0);
        let sock = PacketSocket::open("mvtest1", false);

        let f = frame(100, 1);
        send_from_guest(&mut d, &packet(&f));
        d.notify(TX as u32);
        assert_eq!(sock.recv_ours(0), Some(f), "TX frame on the tap");
        assert_eq!(d.used(TX).len(), 1);

        let (head, addr) = post_rx(&mut d, 2048);
        d.notify(RX as u32);
        let f = frame(200, 2);
        sock.send(&f);
        assert_eq!(wait_rx(&mut d, 1), vec![(head, 12 + 200)]);
        let got = d.read_bytes(addr, 212);
        assert_eq!(got[..10], [0; 10], "no offload metadata for a plain frame");
        assert_eq!(num_buffers(&got), 1);
        assert_eq!(got[12..], f[..]);
    });
}

#[test]
fn tx_checksum_offload_metadata_reaches_the_host_stack() {
    in_new_netns(|| {
        let mut d = net_on_tap("mvtest2", F_CSUM);
        let sock = PacketSocket::open("mvtest2", true);
        // An IPv4/UDP frame whose UDP checksum the guest left to the host.
        let mut f = frame(14 + 20 + 8 + 32, 3);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip.copy_from_slice(&[0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 17, 0, 0, 169, 254, 0, 1, 169, 254, 0, 2]);
        f[34..42].copy_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 40, 0, 0]);
        let mut p = packet(&f);
        p[0] = 1; // NEEDS_CSUM
        p[6..8].copy_from_slice(&34u16.to_le_bytes()); // csum_start
        p[8..10].copy_from_slice(&6u16.to_le_bytes()); // csum_offset
        send_from_guest(&mut d, &p);
        d.notify(TX as u32);
        let deadline = Instant::now() + Duration::from_secs(2);
        let got = loop {
            assert!(Instant::now() < deadline, "UDP frame not seen on the tap");
            let mut pfd = libc::pollfd { fd: sock.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one pollfd we own.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let mut buf = vec![0u8; 2048];
            // SAFETY: recv writes at most `buf.len()` bytes.
            let n = unsafe { libc::recv(sock.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 10 + 14 && buf[10 + 6..10 + 12] == MAC {
                buf.truncate(n as usize);
                break buf;
            }
        };
        // The 10-byte header the host stack reports: NEEDS_CSUM, same offsets.
        assert_eq!(got[0] & 1, 1, "NEEDS_CSUM kept");
        assert_eq!(u16::from_le_bytes([got[6], got[7]]), 34);
        assert_eq!(u16::from_le_bytes([got[8], got[9]]), 6);
        assert_eq!(got[10..], f[..]);
    });
}

#[test]
fn big_frames_span_mergeable_buffers_and_wait_for_them() {
    in_new_netns(|| {
        let mut d = net_on_tap("mvtest3", F_MRG_RXBUF | F_EVENT_IDX);
        let sock = PacketSocket::open("mvtest3", false);
        let big = frame(1400, 4);
        let small = frame(100, 5);
        sock.send(&big);
        sock.send(&small);
        // No buffers yet: nothing delivered, nothing lost.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            d.run_events();
        }
        assert!(d.used(RX).is_empty());
        let chains: Vec<_> = (0..4).map(|_| post_rx(&mut d, 600)).collect();
        d.notify(RX as u32);
        let used = wait_rx(&mut d, 4);
        let heads: Vec<u32> = chains.iter().map(|c| c.0).collect();
        assert_eq!(used, vec![(heads[0], 600), (heads[1], 600), (heads[2], 212), (heads[3], 112)]);
        let mut got = d.read_bytes(chains[0].1, 600);
        got.extend(d.read_bytes(chains[1].1, 600));
        got.extend(d.read_bytes(chains[2].1, 212));
        assert_eq!(num_buffers(&got), 3);
        assert_eq!(got[12..], big[..]);
        let got = d.read_bytes(chains[3].1, 112);
        assert_eq!(num_buffers(&got), 1);
        assert_eq!(got[12..], small[..]);
    });
}

#[test]
fn tap_offloads_follow_the_features_the_guest_acked() {
    in_new_netns(|| {
        let mut d = net_on_tap("mvtest4", F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_MRG_RXBUF);
        assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTXCSUM), 1);
        assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTSO), 1);
        // A reset takes them back: a new driver may not handle them.
        d.write_reg(0x70, 0);
        assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTSO), 0);
        assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTXCSUM), 0);
        d.activate(F_GUEST_CSUM, 16);
        assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTXCSUM), 1);
        assert_eq!(ethtool_get("mvtest4", ETHTOOL_GTSO), 0);
    });
}

#[path = "real_tap_mq.rs"]
mod multiqueue;
