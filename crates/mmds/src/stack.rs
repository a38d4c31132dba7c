//! What a virtio-net device with the MMDS hands its guest's frames to (Firecracker's
//! `MmdsNetworkStack`): [`MmdsStack::detour`] takes an ARP request for the MMDS's
//! address and every IPv4 packet to it, which never reach the tap; what the MMDS answers
//! waits in [`MmdsStack::next_frame`] for the device's receive path.

use super::packet::{self, Endpoints, Segment, Tcp, ACK, ETHERTYPE_ARP, ETHERTYPE_IPV4, FIN, PROTO_TCP, RST, SYN};
use super::tcp::{Conn, Verdict};
use super::Mmds;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// The MMDS's own MAC address, what its ARP replies give (Firecracker's).
pub const MAC: [u8; 6] = [0x06, 0x01, 0x23, 0x45, 0x67, 0x01];
/// The HTTP port; TCP to any other port of the MMDS's address is reset.
pub const PORT: u16 = 80;
/// Connections at once (Firecracker's); a new one evicts the one idle longest.
pub const MAX_CONNECTIONS: usize = 30;
/// ARP replies and resets waiting for the guest: more are dropped (the guest asks again).
const MAX_CONTROL_FRAMES: usize = 64;

pub struct MmdsStack {
    mmds: Mmds,
    ip: Ipv4Addr,
    conns: Vec<Conn>,
    control: VecDeque<Vec<u8>>,
    /// Counts the guest's segments: each connection's age for eviction.
    clock: u64,
    /// Where `next_frame` starts looking, so one busy connection cannot starve the rest.
    turn: usize,
}

impl MmdsStack {
    /// The MMDS at `ip`, answering from `mmds`.
    pub fn new(mmds: Mmds, ip: Ipv4Addr) -> MmdsStack {
        MmdsStack { mmds, ip, conns: Vec::new(), control: VecDeque::new(), clock: 0, turn: 0 }
    }

    /// Takes `frame` (Ethernet, as the guest sent it) if it is the MMDS's: true means it
    /// must not go to the tap.
    pub fn detour(&mut self, frame: &[u8]) -> bool {
        let Some(eth) = packet::ethernet(frame) else {
            metrics::MMDS.rx_bad_eth.inc();
            return false;
        };
        let taken = match eth.ethertype {
            ETHERTYPE_ARP => match packet::arp_request(eth.payload) {
                Some(request) if request.target == self.ip => {
                    self.queue_control(packet::arp_reply(&request, MAC));
                    true
                }
                _ => false,
            },
            ETHERTYPE_IPV4 if packet::ipv4_destination(eth.payload) == Some(self.ip) => {
                // The address is the MMDS's alone: what it does not serve is dropped here.
                match packet::ipv4(eth.payload) {
                    Some(ip) if ip.protocol == PROTO_TCP && !ip.fragment => match packet::tcp(ip.payload) {
                        Some(seg) => {
                            let ends = Endpoints {
                                local_mac: MAC,
                                local_ip: self.ip,
                                local_port: seg.dst_port,
                                peer_mac: eth.src,
                                peer_ip: ip.src,
                                peer_port: seg.src_port,
                            };
                            self.on_segment(ends, &seg);
                        }
                        None => metrics::MMDS.rx_accepted_err.inc(),
                    },
                    Some(_) => metrics::MMDS.rx_accepted_unusual.inc(),
                    None => metrics::MMDS.rx_accepted_err.inc(),
                }
                true
            }
            _ => false,
        };
        if taken {
            metrics::MMDS.rx_accepted.inc();
        }
        taken
    }

    fn on_segment(&mut self, ends: Endpoints, seg: &Tcp) {
        self.clock += 1;
        if seg.dst_port != PORT {
            metrics::MMDS.rx_accepted_unusual.inc();
            self.refuse(&ends, seg);
            return;
        }
        let found =
            self.conns.iter().position(|c| c.ends.peer_ip == ends.peer_ip && c.ends.peer_port == ends.peer_port);
        let fresh_syn = seg.flags & (SYN | ACK | RST) == SYN;
        match found {
            // A new SYN on a port whose connection we still hold: the guest moved on.
            Some(i) if fresh_syn && self.conns[i].is_established() => {
                self.conns.swap_remove(i);
                metrics::MMDS.connections_destroyed.inc();
                self.open(ends, seg);
            }
            Some(i) => {
                metrics::MMDS.rx_count.inc();
                let conn = &mut self.conns[i];
                conn.last_active = self.clock;
                if conn.on_segment(seg, &self.mmds) == Verdict::Done {
                    metrics::MMDS.connections_destroyed.inc();
                    let mut conn = self.conns.swap_remove(i);
                    if conn.ack_due() {
                        // The guest's last FIN is owed its ACK.
                        self.queue_control(conn.pure_ack());
                    }
                }
            }
            None if fresh_syn => self.open(ends, seg),
            None => {
                metrics::MMDS.rx_accepted_unusual.inc();
                self.refuse(&ends, seg)
            }
        }
    }

    fn open(&mut self, ends: Endpoints, syn: &Tcp) {
        if self.conns.len() >= MAX_CONNECTIONS {
            if let Some(stalest) = (0..self.conns.len()).min_by_key(|&i| self.conns[i].last_active) {
                let evicted = self.conns.swap_remove(stalest);
                metrics::MMDS.connections_destroyed.inc();
                self.queue_control(evicted.reset());
            }
        }
        let mut iss = [0u8; 4];
        // The initial sequence number only needs to be hard to guess; should the kernel
        // fail us, the clock still differs from one connection to the next.
        let iss = match super::token::random(&mut iss) {
            Ok(()) => u32::from_ne_bytes(iss),
            Err(_) => (self.clock as u32).wrapping_mul(0x9e37_79b9),
        };
        self.conns.push(Conn::accept(ends, syn, iss, self.clock));
        metrics::MMDS.rx_count.inc();
        metrics::MMDS.connections_created.inc();
    }

    /// RFC 9293's reset for a segment no connection takes (a reset is never answered).
    fn refuse(&mut self, ends: &Endpoints, seg: &Tcp) {
        if seg.flags & RST != 0 {
            return;
        }
        let reply = if seg.flags & ACK != 0 {
            Segment { seq: seg.ack, ack: 0, flags: RST, window: 0, mss: None, data: &[] }
        } else {
            let len = seg.data.len() as u32 + u32::from(seg.flags & SYN != 0) + u32::from(seg.flags & FIN != 0);
            Segment { seq: 0, ack: seg.seq.wrapping_add(len), flags: RST | ACK, window: 0, mss: None, data: &[] }
        };
        self.queue_control(packet::tcp_frame(ends, &reply));
    }

    fn queue_control(&mut self, frame: Vec<u8>) {
        if self.control.len() < MAX_CONTROL_FRAMES {
            self.control.push_back(frame);
        }
    }

    /// The next frame for the guest (Ethernet, no virtio-net header), if the MMDS has one.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let frame = self.next_owed();
        if frame.is_some() {
            metrics::MMDS.tx_count.inc();
        }
        frame
    }

    fn next_owed(&mut self) -> Option<Vec<u8>> {
        if let Some(frame) = self.control.pop_front() {
            return Some(frame);
        }
        let n = self.conns.len();
        for k in 0..n {
            let i = (self.turn + k) % n;
            if let Some(frame) = self.conns[i].next_frame() {
                self.turn = i + 1;
                return Some(frame);
            }
        }
        None
    }

    /// Connections open (for tests and the device's report).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
#[path = "stack_tests.rs"]
mod tests;
