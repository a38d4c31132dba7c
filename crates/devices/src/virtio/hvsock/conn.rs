//! One stream between a guest socket and a host Unix socket, with virtio-vsock's credit
//! accounting both ways (virtio 1.2 §5.10.6.3): the guest may send only what our
//! `buf_alloc` minus what it has sent and we have not forwarded (`fwd_cnt`) allows, and
//! we send the guest only what its own `buf_alloc`/`fwd_cnt` allow.

use super::packet::{Header, HOST_CID, SHUTDOWN_RCV, TYPE_STREAM};
use event_manager::EventSet;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;

/// What each connection may hold of the guest's data that the host peer has not read yet:
/// the `buf_alloc` the guest is told. A guest sending beyond it breaks the protocol and
/// gets its connection reset, so a slow host peer costs at most this much per connection.
pub const CONN_BUF: u32 = 256 << 10;
/// Forwarded bytes the guest has not been told of, beyond which it is sent a credit
/// update without waiting for a packet to carry it. Half the buffer: a guest that ran out
/// of credit always gets one, a guest that has not never waits for one.
const CREDIT_UPDATE_AFTER: u32 = CONN_BUF / 2;

/// A connection's two ports: the guest's end and the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub guest_port: u32,
    pub host_port: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Host-initiated: the REQUEST is owed or sent, the guest has not answered.
    Connecting,
    Established,
}

pub struct Conn {
    pub stream: UnixStream,
    pub key: Key,
    pub state: State,
    /// Bytes for the host peer that it has not taken yet: first `reply_left` bytes of
    /// our own `OK <port>\n` line, then the guest's data.
    pending: Vec<u8>,
    reply_left: usize,
    /// Guest bytes written to the host peer, as the guest is told (wrapping).
    pub fwd_cnt: u32,
    last_fwd_cnt_sent: u32,
    /// Payload bytes sent to the guest (wrapping), and the guest's window.
    pub tx_cnt: u32,
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    /// SHUTDOWN flags the guest sent.
    pub guest_shutdown: u32,
    /// The host peer will send no more (its end read 0): the guest was sent SHUTDOWN.
    pub host_eof: bool,
    /// The host peer closed its whole end (EPOLLHUP): the guest is told both directions
    /// are shut and owes its RST by `close_deadline`.
    pub host_gone: bool,
    /// When a guest that was told the host closed must have answered with its RST, else
    /// the device kills the connection (Firecracker's CONN_SHUTDOWN_TIMEOUT_MS).
    pub close_deadline: Option<std::time::Instant>,
    /// The host peer may have data: its input is not watched until a read would block.
    pub readable: bool,
    /// A CREDIT_REQUEST is out and unanswered.
    pub credit_requested: bool,
    /// Listed in the device's queue of owed credit updates.
    pub credit_update_owed: bool,
    /// What epoll watches for the stream now (None: not registered).
    pub watched: Option<EventSet>,
}

/// What writing to the host peer came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything pending was written.
    Done,
    /// The peer's socket is full; the rest waits for EPOLLOUT.
    Partial,
    /// The peer is gone (EPIPE and alike).
    Broken,
}

impl Conn {
    pub fn new(stream: UnixStream, key: Key, state: State, peer: Option<&Header>) -> Conn {
        let mut conn = Conn {
            stream,
            key,
            state,
            pending: Vec::new(),
            reply_left: 0,
            fwd_cnt: 0,
            last_fwd_cnt_sent: 0,
            tx_cnt: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            guest_shutdown: 0,
            host_eof: false,
            host_gone: false,
            close_deadline: None,
            readable: false,
            credit_requested: false,
            credit_update_owed: false,
            watched: None,
        };
        if let Some(h) = peer {
            conn.update_peer_credit(h);
        }
        conn
    }

    /// Every guest packet carries its window.
    pub fn update_peer_credit(&mut self, h: &Header) {
        self.peer_buf_alloc = h.buf_alloc;
        self.peer_fwd_cnt = h.fwd_cnt;
        self.credit_requested = false;
    }

    /// How many more payload bytes the guest can take now.
    pub fn peer_credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// A header for a packet of ours on this connection, with our window; the guest is
    /// told of every forwarded byte with it.
    pub fn header(&mut self, op: u16, guest_cid: u64) -> Header {
        self.last_fwd_cnt_sent = self.fwd_cnt;
        Header {
            src_cid: HOST_CID,
            dst_cid: guest_cid,
            src_port: self.key.host_port,
            dst_port: self.key.guest_port,
            len: 0,
            kind: TYPE_STREAM,
            op,
            flags: 0,
            buf_alloc: CONN_BUF,
            fwd_cnt: self.fwd_cnt,
        }
    }

    /// The guest's data still waiting for the host peer.
    pub fn pending_guest_bytes(&self) -> usize {
        self.pending.len() - self.reply_left
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The guest should be told of forwarded bytes now rather than with its next packet.
    pub fn wants_credit_update(&self) -> bool {
        self.fwd_cnt.wrapping_sub(self.last_fwd_cnt_sent) >= CREDIT_UPDATE_AFTER
    }

    /// Queues the host-initiated connection's `OK <host port>\n`, before any guest data.
    pub fn queue_reply(&mut self, line: &[u8]) {
        self.pending.splice(0..0, line.iter().copied());
        self.reply_left += line.len();
    }

    /// Takes the guest's payload: false if it exceeds the window we gave (the caller resets
    /// the connection).
    pub fn take_guest_data(&mut self, data: &[u8]) -> bool {
        if self.pending_guest_bytes() + data.len() > CONN_BUF as usize {
            return false;
        }
        self.pending.extend_from_slice(data);
        true
    }

    /// Writes what is pending to the host peer.
    pub fn flush(&mut self) -> Flush {
        let mut written = 0;
        let result = loop {
            if written == self.pending.len() {
                break Flush::Done;
            }
            match self.stream.write(&self.pending[written..]) {
                Ok(0) => break Flush::Broken,
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Flush::Partial,
                Err(_) => break Flush::Broken,
            }
        };
        let reply = written.min(self.reply_left);
        self.reply_left -= reply;
        self.fwd_cnt = self.fwd_cnt.wrapping_add((written - reply) as u32);
        metrics::VSOCK.tx_bytes_count.add((written - reply) as u64);
        self.pending.drain(..written);
        if self.pending.is_empty() {
            // Give back what a burst from the guest made the buffer grow to.
            self.pending.shrink_to(4096);
        }
        result
    }

    /// Whether the host peer's data should be read for the guest.
    pub fn wants_input(&self) -> bool {
        self.state == State::Established && !self.host_eof && self.guest_shutdown & SHUTDOWN_RCV == 0
    }

    /// What epoll should watch: input while wanted and not already known to be readable
    /// (a level-triggered readable fd the guest has no room for would spin the loop),
    /// output while something waits for the peer, and after the peer's EOF its hang-up (a
    /// peer that only shut its sending side may still close the rest; EPOLLHUP is level
    /// triggered too, so it is dropped once seen).
    pub fn interest(&self) -> EventSet {
        let mut set = EventSet::empty();
        if self.wants_input() && !self.readable {
            set |= EventSet::IN;
        }
        if self.has_pending() {
            set |= EventSet::OUT;
        }
        if self.host_eof && !self.host_gone && self.state == State::Established {
            set |= EventSet::HANG_UP;
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> (Conn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Conn::new(a, Key { guest_port: 1, host_port: 2 }, State::Established, None), b)
    }

    #[test]
    fn credit_counts_what_the_guest_has_not_consumed() {
        let (mut c, _peer) = conn();
        c.update_peer_credit(&Header { buf_alloc: 1000, fwd_cnt: 0, ..Default::default() });
        c.tx_cnt = 600;
        assert_eq!(c.peer_credit(), 400);
        c.update_peer_credit(&Header { buf_alloc: 1000, fwd_cnt: 500, ..Default::default() });
        assert_eq!(c.peer_credit(), 900);
        // Counters wrap.
        c.tx_cnt = 10;
        c.update_peer_credit(&Header { buf_alloc: 1000, fwd_cnt: u32::MAX - 9, ..Default::default() });
        assert_eq!(c.peer_credit(), 980);
    }

    #[test]
    fn the_reply_line_is_not_counted_as_forwarded_guest_data() {
        let (mut c, mut peer) = conn();
        assert!(c.take_guest_data(b"data"));
        c.queue_reply(b"OK 7\n");
        assert_eq!(c.pending_guest_bytes(), 4);
        assert_eq!(c.flush(), Flush::Done);
        assert_eq!(c.fwd_cnt, 4);
        let mut got = [0u8; 9];
        std::io::Read::read_exact(&mut peer, &mut got).unwrap();
        assert_eq!(&got, b"OK 7\ndata");
    }

    #[test]
    fn a_guest_overrunning_its_window_is_refused() {
        let (mut c, _peer) = conn();
        let big = vec![0u8; CONN_BUF as usize];
        assert!(c.take_guest_data(&big));
        assert!(!c.take_guest_data(b"x"));
    }

    #[test]
    fn a_full_peer_leaves_the_rest_pending_and_a_gone_one_is_broken() {
        let (mut c, peer) = conn();
        let small: libc::c_int = 4096;
        // SAFETY: a valid socket and a c_int option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&c.stream),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        let big = vec![1u8; CONN_BUF as usize];
        assert!(c.take_guest_data(&big));
        assert_eq!(c.flush(), Flush::Partial);
        assert!(c.has_pending());
        assert!(c.fwd_cnt > 0 && (c.fwd_cnt as usize) < big.len());
        assert_eq!(c.interest(), EventSet::IN | EventSet::OUT);
        drop(peer);
        assert!(c.take_guest_data(b"more"));
        assert_eq!(c.flush(), Flush::Broken);
    }
}
