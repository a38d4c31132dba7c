//! The stack against crafted guest frames: ARP, the TCP handshake, HTTP over it (V1, V2
//! tokens, IMDS text and JSON), closing, resets, and frames that are not the MMDS's.

use super::*;
use crate::packet::{checksum, ethernet, ipv4, tcp, ETH_HLEN, IPV4_HLEN, PSH};
use crate::{Settings, Version, DEFAULT_IPV4};
use serde_json::json;

const GUEST_MAC: [u8; 6] = [0x06, 0, 0xac, 0x10, 0, 2];
const GUEST_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);

fn mmds(version: Version) -> Mmds {
    let mmds = Mmds::new(51200);
    mmds.put(json!({"latest": {"meta-data": {"ami-id": "ami-12345678", "reservation-id": "r-fea54097", "n": 7}}}))
        .unwrap();
    mmds.set_settings(Settings { version, imds_compat: false });
    mmds
}

/// The guest's side of one connection.
struct Guest {
    stack: MmdsStack,
    port: u16,
    seq: u32,
    /// What it acknowledges: the next byte it expects from the MMDS.
    ack: u32,
    window: u16,
    mss: u16,
}

/// A segment the MMDS sent, checked and taken apart.
#[derive(Debug)]
struct Reply {
    seq: u32,
    ack: u32,
    flags: u8,
    mss: Option<u16>,
    data: Vec<u8>,
}

fn parse_reply(frame: &[u8]) -> Reply {
    let eth = ethernet(frame).unwrap();
    assert_eq!(&frame[..6], &GUEST_MAC, "to the guest");
    assert_eq!(eth.src, MAC, "from the MMDS's MAC");
    assert_eq!(eth.ethertype, ETHERTYPE_IPV4);
    let ip_header = &eth.payload[..IPV4_HLEN];
    assert_eq!(checksum(&[ip_header], 0), 0, "IPv4 header checksum");
    let ip = ipv4(eth.payload).unwrap();
    assert_eq!(ip.src, DEFAULT_IPV4);
    assert_eq!(&eth.payload[16..20], &GUEST_IP.octets());
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&DEFAULT_IPV4.octets());
    pseudo[4..8].copy_from_slice(&GUEST_IP.octets());
    pseudo[9] = PROTO_TCP;
    pseudo[10..].copy_from_slice(&(ip.payload.len() as u16).to_be_bytes());
    assert_eq!(checksum(&[&pseudo, ip.payload], 0), 0, "TCP checksum");
    let seg = tcp(ip.payload).unwrap();
    assert_eq!(seg.src_port, PORT);
    Reply { seq: seg.seq, ack: seg.ack, flags: seg.flags, mss: seg.mss, data: seg.data.to_vec() }
}

fn guest_ends(port: u16, dst_port: u16) -> Endpoints {
    Endpoints {
        local_mac: GUEST_MAC,
        local_ip: GUEST_IP,
        local_port: port,
        peer_mac: MAC,
        peer_ip: DEFAULT_IPV4,
        peer_port: dst_port,
    }
}

impl Guest {
    fn new(mmds: &Mmds) -> Guest {
        Guest {
            stack: MmdsStack::new(mmds.clone(), DEFAULT_IPV4),
            port: 40000,
            seq: 1000,
            ack: 0,
            window: 64000,
            mss: 1460,
        }
    }

    fn send(&mut self, flags: u8, data: &[u8]) {
        let seg = Segment {
            seq: self.seq,
            ack: self.ack,
            flags,
            window: self.window,
            mss: (flags & SYN != 0).then_some(self.mss),
            data,
        };
        let frame = packet::tcp_frame(&guest_ends(self.port, PORT), &seg);
        assert!(self.stack.detour(&frame), "a segment to the MMDS is the MMDS's");
        self.seq = self.seq.wrapping_add(data.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
    }

    fn replies(&mut self) -> Vec<Reply> {
        std::iter::from_fn(|| self.stack.next_frame()).map(|f| parse_reply(&f)).collect()
    }

    fn connect(&mut self) {
        self.send(SYN, &[]);
        let r = self.replies();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].flags, SYN | ACK);
        assert_eq!(r[0].ack, self.seq, "the SYN is acknowledged");
        assert_eq!(r[0].mss, Some(1460));
        self.ack = r[0].seq.wrapping_add(1);
        self.send(ACK, &[]);
        assert!(self.replies().is_empty(), "nothing answers the handshake's ACK");
    }

    /// Sends `request`, acknowledges everything, returns the bytes and whether a FIN came.
    fn exchange(&mut self, request: &str) -> (String, bool) {
        self.send(ACK | PSH, request.as_bytes());
        let mut bytes = Vec::new();
        let mut fin = false;
        for r in self.replies() {
            assert_eq!(r.seq, self.ack, "in order, nothing missing");
            assert_eq!(r.ack, self.seq, "the request is acknowledged");
            assert!(r.data.len() <= usize::from(self.mss));
            self.ack = self.ack.wrapping_add(r.data.len() as u32 + u32::from(r.flags & FIN != 0));
            fin |= r.flags & FIN != 0;
            bytes.extend_from_slice(&r.data);
        }
        (String::from_utf8(bytes).unwrap(), fin)
    }

    /// One request on a fresh connection: (status, body).
    fn request(&mut self, request: &str) -> (u16, String) {
        self.port += 1;
        self.connect();
        let (text, _) = self.exchange(request);
        let status = text[9..12].parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&GUEST_IP.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

#[test]
fn an_arp_request_for_the_mmds_gets_its_mac() {
    let mut stack = MmdsStack::new(mmds(Version::V1), DEFAULT_IPV4);
    assert!(stack.detour(&arp_request(DEFAULT_IPV4)));
    let reply = stack.next_frame().unwrap();
    assert_eq!(&reply[..6], &GUEST_MAC);
    assert_eq!(&reply[6..12], &MAC);
    let arp = &reply[ETH_HLEN..];
    assert_eq!(&arp[6..8], &[0, 2], "a reply");
    assert_eq!(&arp[8..14], &MAC, "the MMDS's MAC");
    assert_eq!(&arp[14..18], &DEFAULT_IPV4.octets());
    assert_eq!(&arp[18..24], &GUEST_MAC);
    assert_eq!(&arp[24..28], &GUEST_IP.octets());
    assert!(stack.next_frame().is_none());
}

#[test]
fn frames_not_for_the_mmds_go_to_the_tap() {
    let mut stack = MmdsStack::new(mmds(Version::V1), DEFAULT_IPV4);
    assert!(!stack.detour(&arp_request(Ipv4Addr::new(172, 16, 0, 1))), "ARP for another address");
    let mut elsewhere = guest_ends(40000, 80);
    elsewhere.peer_ip = Ipv4Addr::new(172, 16, 0, 1);
    let syn = Segment { seq: 1, ack: 0, flags: SYN, window: 1000, mss: None, data: &[] };
    assert!(!stack.detour(&packet::tcp_frame(&elsewhere, &syn)), "TCP to another address");
    let mut ipv6 = packet::tcp_frame(&guest_ends(40000, 80), &syn);
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    assert!(!stack.detour(&ipv6), "another ethertype");
    assert!(!stack.detour(&[0u8; 10]), "a runt");
    assert!(stack.next_frame().is_none() && stack.connections() == 0);
}

#[test]
fn v1_answers_a_get_in_imds_text_or_json() {
    let mut g = Guest::new(&mmds(Version::V1));
    let (status, body) = g.request("GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, "ami-id\nn\nreservation-id"), "IMDS: the keys");
    let (status, body) = g.request("GET /latest HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, "meta-data/"), "an object's key ends in /");
    let (status, body) = g.request("GET //latest/meta-data//ami-id HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, "ami-12345678"), "a string is itself; // collapses");
    let (status, body) = g.request("GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["n"], 7, "JSON: {body}");
    let (status, _) = g.request("GET /latest/meta-data/n HTTP/1.1\r\n\r\n");
    assert_eq!(status, 501, "a number has no IMDS text");
    let (status, body) = g.request("GET /nothing HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (404, "Resource not found: /nothing."));
    let (status, _) = g.request("DELETE /latest HTTP/1.1\r\n\r\n");
    assert_eq!(status, 405);
}

#[test]
fn v2_needs_a_token_from_put() {
    let store = mmds(Version::V2);
    let mut g = Guest::new(&store);
    let get = "GET /latest/meta-data/ami-id HTTP/1.1\r\n";
    let (status, body) = g.request(&format!("{get}\r\n"));
    assert_eq!(status, 401, "V1's tokenless GET is refused under V2: {body}");
    assert!(body.starts_with("No MMDS token provided."));
    let (status, _) = g.request("PUT /latest/api/token HTTP/1.1\r\n\r\n");
    assert_eq!(status, 400, "a token needs a TTL");
    let (status, _) = g.request("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21601\r\n\r\n");
    assert_eq!(status, 400, "a TTL beyond 6 hours");
    let (status, _) =
        g.request("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\nX-Forwarded-For: x\r\n\r\n");
    assert_eq!(status, 400, "forwarded requests get no token");
    let (status, token) = g.request("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(token.len(), 64);
    let (status, body) = g.request(&format!("{get}X-metadata-token: {token}\r\n\r\n"));
    assert_eq!((status, body.as_str()), (200, "ami-12345678"));
    let (status, body) = g.request(&format!("{get}X-aws-ec2-metadata-token: {token}\r\n\r\n"));
    assert_eq!((status, body.as_str()), (200, "ami-12345678"), "EC2's header name too");
    let (status, body) = g.request(&format!("{get}X-metadata-token: {}\r\n\r\n", "0".repeat(64)));
    assert_eq!((status, body.as_str()), (401, "MMDS token not valid."));
    store.set_settings(Settings { version: Version::V2, imds_compat: true });
    let (status, body) =
        g.request(&format!("GET /latest HTTP/1.1\r\nAccept: application/json\r\nX-metadata-token: {token}\r\n\r\n"));
    assert_eq!((status, body.as_str()), (200, "meta-data/"), "imds_compat ignores Accept");
}

#[test]
fn keep_alive_then_close_ends_the_connection_both_ways() {
    let mut g = Guest::new(&mmds(Version::V1));
    g.connect();
    let (text, fin) = g.exchange("GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("Connection: keep-alive") && !fin, "{text}");
    // Two requests in one segment are both answered, the second closes.
    let (text, fin) = g.exchange("GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\nGET /latest HTTP/1.0\r\n\r\n");
    assert_eq!(text.matches("200 OK").count(), 2, "{text}");
    assert!(text.ends_with("meta-data/") && fin, "HTTP/1.0 without keep-alive closes: {text}");
    g.send(ACK | FIN, &[]);
    let last = g.replies();
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!((last[0].flags, last[0].ack), (ACK, g.seq), "the guest's FIN is acknowledged");
    assert_eq!(g.stack.connections(), 0);
}

#[test]
fn after_our_fin_is_acknowledged_the_guest_may_still_talk_then_close() {
    let mut g = Guest::new(&mmds(Version::V1));
    g.connect();
    let (_, fin) = g.exchange("GET /latest HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(fin);
    // Our FIN acknowledged alone (FIN-WAIT-2 on our side), then more bytes and the FIN.
    g.send(ACK, &[]);
    assert!(g.replies().is_empty());
    g.send(ACK | PSH, b"late bytes");
    let r = g.replies();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].flags, r[0].ack), (ACK, g.seq), "acknowledged, not answered");
    g.send(ACK | FIN, &[]);
    assert_eq!(g.replies().len(), 1, "the FIN's ACK");
    assert_eq!(g.stack.connections(), 0);
}

#[test]
fn the_guest_closing_first_still_gets_its_answer() {
    let mut g = Guest::new(&mmds(Version::V1));
    g.connect();
    // nc's way: the request, then the write side shut.
    let (text, fin) = g.exchange("GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
    assert!(text.ends_with("ami-12345678") && !fin);
    g.send(ACK | FIN, &[]);
    let r = g.replies();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].flags, FIN | ACK, "nothing more to say: our FIN");
    g.ack = g.ack.wrapping_add(1);
    g.send(ACK, &[]);
    assert_eq!(g.stack.connections(), 0);
}

#[test]
fn answers_keep_to_the_guests_window_and_mss() {
    let store = mmds(Version::V1);
    store.put(json!({"big": "x".repeat(3000)})).unwrap();
    let mut g = Guest::new(&store);
    g.mss = 536;
    g.window = 1000;
    g.connect();
    g.send(ACK | PSH, b"GET /big HTTP/1.1\r\n\r\n");
    let first = g.replies();
    assert_eq!(first.iter().map(|r| r.data.len()).collect::<Vec<_>>(), [536, 464], "MSS, then the window's rest");
    // Acknowledge the first segment only: 536 more bytes of window.
    g.ack = first[0].seq.wrapping_add(536);
    g.send(ACK, &[]);
    let more = g.replies();
    assert_eq!(more.iter().map(|r| r.data.len()).collect::<Vec<_>>(), [536]);
    assert_eq!(more[0].seq, first[1].seq.wrapping_add(464));
    // Three duplicate ACKs: everything from the first unacknowledged byte again.
    for _ in 0..3 {
        g.send(ACK, &[]);
    }
    let again = g.replies();
    assert_eq!(again.first().map(|r| r.seq), Some(first[1].seq), "{again:?}");
}

#[test]
fn other_ports_and_strangers_are_reset() {
    let mut stack = MmdsStack::new(mmds(Version::V1), DEFAULT_IPV4);
    let syn = Segment { seq: 77, ack: 0, flags: SYN, window: 1000, mss: None, data: &[] };
    assert!(stack.detour(&packet::tcp_frame(&guest_ends(40000, 22), &syn)), "the address is the MMDS's");
    let frame = stack.next_frame().unwrap();
    let seg = tcp(ipv4(&frame[ETH_HLEN..]).unwrap().payload).map(|s| (s.flags, s.ack)).unwrap();
    assert_eq!(seg, (RST | ACK, 78), "port 22: refused");
    let stray = Segment { seq: 5, ack: 1234, flags: ACK, window: 1000, mss: None, data: b"x" };
    assert!(stack.detour(&packet::tcp_frame(&guest_ends(40001, 80), &stray)));
    let frame = stack.next_frame().unwrap();
    let seg = tcp(ipv4(&frame[ETH_HLEN..]).unwrap().payload).map(|s| (s.flags, s.seq)).unwrap();
    assert_eq!(seg, (RST, 1234), "no such connection");
    assert_eq!(stack.connections(), 0);
}

#[test]
fn connections_are_bounded_and_a_bad_request_closes() {
    let mut stack = MmdsStack::new(mmds(Version::V1), DEFAULT_IPV4);
    for port in 0..MAX_CONNECTIONS as u16 + 5 {
        let syn = Segment { seq: 1, ack: 0, flags: SYN, window: 1000, mss: None, data: &[] };
        assert!(stack.detour(&packet::tcp_frame(&guest_ends(30000 + port, 80), &syn)));
    }
    assert_eq!(stack.connections(), MAX_CONNECTIONS);
    let mut g = Guest::new(&mmds(Version::V1));
    g.connect();
    let (text, fin) = g.exchange("NOT HTTP AT ALL\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 400") && fin, "{text}");
}

/// Firecracker's `mmds` metrics section moves with what the guest does. The counters are
/// the process's, shared with the tests running beside this one: each check is a lower
/// bound on what this test alone adds.
#[test]
fn the_mmds_metrics_count_frames_connections_and_tokens() {
    let m = &metrics::MMDS;
    let read = || {
        [
            &m.rx_accepted,
            &m.rx_bad_eth,
            &m.rx_no_token,
            &m.rx_invalid_token,
            &m.rx_count,
            &m.tx_count,
            &m.connections_created,
            &m.connections_destroyed,
            &m.rx_accepted_unusual,
        ]
        .map(|c| c.total())
    };
    let before = read();
    let store = mmds(Version::V2);
    let mut g = Guest::new(&store);
    assert!(!g.stack.detour(&[0u8; 10]), "too short for Ethernet");
    let get = "GET /latest HTTP/1.1\r\n";
    assert_eq!(g.request(&format!("{get}\r\n")).0, 401);
    assert_eq!(g.request(&format!("{get}X-metadata-token: {}\r\n\r\n", "0".repeat(64))).0, 401);
    // A new SYN from the same port: the guest moved on, the old connection is destroyed.
    g.seq = g.seq.wrapping_add(100_000);
    g.connect();
    // TCP to another port: reset, and counted as unusual.
    let frame = packet::tcp_frame(
        &guest_ends(50000, 81),
        &Segment { seq: 1, ack: 0, flags: SYN, window: 1000, mss: None, data: &[] },
    );
    assert!(g.stack.detour(&frame));
    let added: Vec<u64> = read().iter().zip(before).map(|(a, b)| a - b).collect();
    // Three handshakes (SYN, ACK), two requests, the stranger's SYN: 9 frames taken, 8 of
    // them by connections; the MMDS answered each SYN and request.
    assert!(added[0] >= 9, "rx_accepted {added:?}");
    assert!(added[1] >= 1, "rx_bad_eth {added:?}");
    assert!(added[2] >= 1 && added[3] >= 1, "no token, invalid token {added:?}");
    assert!(added[4] >= 8, "rx_count {added:?}");
    assert!(added[5] >= 5, "tx_count {added:?}");
    assert!(added[6] >= 3, "connections_created {added:?}");
    assert!(added[7] >= 1, "connections_destroyed {added:?}");
    assert!(added[8] >= 1, "rx_accepted_unusual {added:?}");
}
