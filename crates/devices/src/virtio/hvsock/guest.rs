//! The guest side: its packets from the tx queue, ours into its rx buffers.

use super::conn::{Conn, Key, State};
use super::packet::{self, op, Header, HDR_LEN, HOST_CID, MAX_PAYLOAD, SHUTDOWN_BOTH, SHUTDOWN_SEND, TYPE_STREAM};
use super::{host, start_close_deadline, HybridVsock, MAX_CONNECTIONS, MAX_CONTROL, RX, TX};
use crate::guest_warn;
use crate::virtio::{come_back_later, CHAINS_PER_TURN};
use event_manager::EventOps;
use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

impl HybridVsock {
    /// Takes the guest's packets, at most a turn's worth, while the control packets owed
    /// to it stay below their cap.
    pub(super) fn process_tx(&mut self, ops: &mut EventOps) {
        let mut used_any = false;
        for served in 0.. {
            if self.control.len() >= MAX_CONTROL {
                self.tx_waiting = true;
                break;
            }
            let Some(ctx) = self.activation.active.as_mut() else { return };
            if served == CHAINS_PER_TURN {
                come_back_later(&ctx.queue_events[TX]);
                break;
            }
            let mem = ctx.mem.clone();
            let queue = &mut ctx.queues[TX];
            let chain = match queue.iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return self.stop_serving(format_args!("bad tx avail ring ({e})")),
            };
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            let mut payload = std::mem::take(&mut self.payload);
            let parsed = packet::gather(&mem, chain, &mut payload);
            if queue.add_used(&mem, head, 0).is_err() {
                self.payload = payload;
                return self.stop_serving(format_args!("tx used ring outside guest memory"));
            }
            used_any = true;
            match parsed {
                Ok(header) => {
                    metrics::VSOCK.tx_packets_count.inc();
                    self.handle_packet(header, &payload, ops)
                }
                Err(why) => guest_warn!(self.bad_packet_lines, "hybrid vsock: dropped a tx packet: {why}"),
            }
            self.payload = payload;
        }
        if let Some(ctx) = self.activation.active.as_mut() {
            if used_any && ctx.queues[TX].needs_notification(&ctx.mem).unwrap_or(true) {
                ctx.interrupt.signal_used_queue();
            }
        }
    }

    /// One packet from the guest.
    fn handle_packet(&mut self, h: Header, payload: &[u8], ops: &mut EventOps) {
        if h.src_cid != self.cid || h.dst_cid != HOST_CID {
            // Not ours to answer (Firecracker drops these too).
            guest_warn!(
                self.bad_packet_lines,
                "hybrid vsock: dropped a packet from CID {} to CID {} (the guest is CID {}, the host {HOST_CID})",
                h.src_cid,
                h.dst_cid,
                self.cid
            );
            return;
        }
        let key = Key { guest_port: h.src_port, host_port: h.dst_port };
        if h.kind != TYPE_STREAM {
            if h.op != op::RST {
                self.reset_conn(key, ops);
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            match h.op {
                op::REQUEST => self.connect_to_host(key, &h, ops),
                op::RST => {}
                _ => self.reset_conn(key, ops),
            }
            return;
        };
        conn.update_peer_credit(&h);
        match (h.op, conn.state) {
            (op::RESPONSE, State::Connecting) => {
                conn.state = State::Established;
                conn.queue_reply(format!("OK {}\n", key.host_port).as_bytes());
                self.flush(key, ops);
            }
            (op::RW, State::Established) if conn.guest_shutdown & SHUTDOWN_SEND == 0 => {
                if !conn.take_guest_data(payload) {
                    guest_warn!(
                        self.bad_packet_lines,
                        "hybrid vsock: the guest sent beyond its credit; connection reset"
                    );
                    return self.reset_conn(key, ops);
                }
                self.flush(key, ops);
            }
            (op::SHUTDOWN, State::Established) => {
                conn.guest_shutdown |= h.flags & SHUTDOWN_BOTH;
                if !conn.has_pending() {
                    // Nothing waits for the peer: the shutdown (or the close) happens now.
                    self.flush(key, ops);
                }
            }
            (op::CREDIT_UPDATE, _) => {}
            (op::CREDIT_REQUEST, _) => {
                if !conn.credit_update_owed {
                    conn.credit_update_owed = true;
                    self.credit_owed.push_back(key);
                }
            }
            (op::RST, _) => {
                self.remove(key, ops);
            }
            // A REQUEST on an open connection, data before it is established or after the
            // guest's own SHUTDOWN, an unknown op: the connection is reset.
            _ => self.reset_conn(key, ops),
        }
    }

    /// `<uds_path>_<port>`, where a guest connecting to host port `port` is sent.
    pub fn listener_path(&self, port: u32) -> PathBuf {
        let mut path = OsString::from(self.uds_path.as_os_str());
        path.push(format!("_{port}"));
        PathBuf::from(path)
    }

    /// The guest's REQUEST: connects to the host listener, then RESPONSE, or RST if none
    /// listens (or the table is full).
    fn connect_to_host(&mut self, key: Key, h: &Header, ops: &mut EventOps) {
        if self.conns.len() >= MAX_CONNECTIONS {
            return self.reset_conn(key, ops);
        }
        // A full backlog refuses like a missing listener: the guest retries as it sees fit.
        let Ok(stream) = host::connect_now(&self.listener_path(key.host_port)) else {
            return self.reset_conn(key, ops);
        };
        let fd = stream.as_raw_fd();
        let mut conn = Conn::new(stream, key, State::Established, Some(h));
        let response = conn.header(op::RESPONSE, self.cid);
        self.control.push_back(response);
        self.by_fd.insert(fd, key);
        self.conns.insert(key, conn);
        metrics::VSOCK.conns_added.inc();
    }

    /// Puts our packets in the guest's rx buffers: control packets first, then credit
    /// updates, then data from the host streams in turn.
    pub(super) fn fill_rx(&mut self, ops: &mut EventOps) {
        let mut used_any = false;
        for served in 0.. {
            let Some(ctx) = self.activation.active.as_mut() else { return };
            if served == CHAINS_PER_TURN {
                come_back_later(&ctx.queue_events[RX]);
                break;
            }
            if self.control.is_empty() && self.credit_owed.is_empty() && self.ready.is_empty() {
                break;
            }
            let mem = ctx.mem.clone();
            let chain = match ctx.queues[RX].iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => return self.stop_serving(format_args!("bad rx avail ring ({e})")),
            };
            // No buffer: the guest's next rx kick brings us back.
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            let Some(buffers) = packet::rx_buffers(chain) else {
                guest_warn!(self.bad_packet_lines, "hybrid vsock: an rx buffer is device-readable or too small");
                if ctx.queues[RX].add_used(&mem, head, 0).is_err() {
                    return self.stop_serving(format_args!("rx used ring outside guest memory"));
                }
                used_any = true;
                continue;
            };
            let Some(header) = self.next_packet(packet::payload_room(&buffers), ops) else {
                if let Some(ctx) = self.activation.active.as_mut() {
                    ctx.queues[RX].go_to_previous_position();
                }
                break;
            };
            let len = header.len as usize;
            let written = packet::scatter(&mem, &buffers, &header, &self.payload[..len]);
            if !written {
                guest_warn!(self.ring_lines, "hybrid vsock: an rx buffer is outside guest memory; a packet was lost");
            }
            let Some(ctx) = self.activation.active.as_mut() else { return };
            if written {
                metrics::VSOCK.rx_packets_count.inc();
            }
            let used = if written { (HDR_LEN + len) as u32 } else { 0 };
            if ctx.queues[RX].add_used(&mem, head, used).is_err() {
                return self.stop_serving(format_args!("rx used ring outside guest memory"));
            }
            used_any = true;
        }
        if let Some(ctx) = self.activation.active.as_mut() {
            if used_any && ctx.queues[RX].needs_notification(&ctx.mem).unwrap_or(true) {
                ctx.interrupt.signal_used_queue();
            }
        }
    }

    /// The next packet for the guest, its payload in `self.payload`, fitting `room`
    /// payload bytes; None if nothing is owed.
    fn next_packet(&mut self, room: usize, ops: &mut EventOps) -> Option<Header> {
        if let Some(mut h) = self.control.pop_front() {
            // Carry the connection's latest window, if it still exists.
            if let Some(conn) = self.conns.get_mut(&Key { guest_port: h.dst_port, host_port: h.src_port }) {
                let fresh = conn.header(h.op, self.cid);
                h.buf_alloc = fresh.buf_alloc;
                h.fwd_cnt = fresh.fwd_cnt;
            }
            return Some(h);
        }
        while let Some(key) = self.credit_owed.pop_front() {
            if let Some(conn) = self.conns.get_mut(&key) {
                conn.credit_update_owed = false;
                return Some(conn.header(op::CREDIT_UPDATE, self.cid));
            }
        }
        for _ in 0..self.ready.len() {
            let key = self.ready.pop_front()?;
            let Some(conn) = self.conns.get_mut(&key) else { continue };
            if !conn.readable || !conn.wants_input() {
                conn.readable = false;
                continue;
            }
            let credit = conn.peer_credit() as usize;
            if credit == 0 {
                // Wait for the guest's window; ask for it once.
                self.ready.push_back(key);
                if !conn.credit_requested {
                    conn.credit_requested = true;
                    return Some(conn.header(op::CREDIT_REQUEST, self.cid));
                }
                continue;
            }
            let want = room.min(credit).min(MAX_PAYLOAD);
            if want == 0 {
                self.ready.push_back(key);
                continue;
            }
            self.payload.resize(want, 0);
            match conn.stream.read(&mut self.payload[..want]) {
                Ok(0) => {
                    // The peer will send no more; the guest can still send until it closes,
                    // unless the peer closed its whole end: then, as in Firecracker, both
                    // directions are shut and the guest owes its RST within CLOSE_TIMEOUT.
                    conn.host_eof = true;
                    conn.readable = false;
                    let mut h = conn.header(op::SHUTDOWN, self.cid);
                    h.flags = SHUTDOWN_SEND;
                    if conn.host_gone {
                        h.flags = SHUTDOWN_BOTH;
                        start_close_deadline(conn, &mut self.close_timer, &mut self.close_timer_at);
                    }
                    return Some(h);
                }
                Ok(n) => {
                    metrics::VSOCK.rx_bytes_count.add(n as u64);
                    conn.tx_cnt = conn.tx_cnt.wrapping_add(n as u32);
                    self.ready.push_back(key);
                    let mut h = conn.header(op::RW, self.cid);
                    h.len = n as u32;
                    return Some(h);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => self.ready.push_back(key),
                Err(_) => {
                    metrics::VSOCK.rx_read_fails.inc();
                    if self.remove(key, ops) {
                        metrics::VSOCK.conns_killed.inc();
                    }
                    return Some(self.reply(key, op::RST));
                }
            }
        }
        None
    }
}
