//! One TCP connection to the MMDS's port 80, passive side only: SYN → SYN-ACK, the
//! guest's bytes in order into a request buffer, HTTP answers out within the guest's
//! window and MSS, FIN after `Connection: close` or the guest's own FIN.
//!
//! What it leaves out, and why that is enough here: frames to the guest are never lost
//! between us and the guest (the device holds each until the guest has a buffer), so
//! there is no retransmission timer; three duplicate ACKs still resend from the first
//! unacknowledged byte. Out-of-order segments are dropped and re-acknowledged (the guest
//! resends them). No window scaling: we never offer it, so the guest's window is plain.

use super::http::{self, Parsed};
use super::packet::{self, Endpoints, Segment, Tcp, ACK, FIN, PSH, RST, SYN};
use super::Mmds;

/// The MSS we announce: a standard 1500-byte MTU.
const MSS_OFFERED: u16 = 1460;
/// The peer's MSS when its SYN has none (RFC 9293).
const DEFAULT_PEER_MSS: u16 = 536;
/// The request bytes a connection holds before answering; also the window it offers.
pub const REQUEST_LIMIT: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    SynReceived,
    Established,
}

/// What a segment did to a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Both sides closed (or the guest reset it): forget it.
    Done,
}

pub struct Conn {
    pub ends: Endpoints,
    state: State,
    /// First byte sent and not acknowledged (our SYN and FIN count, as in TCP).
    snd_una: u32,
    snd_nxt: u32,
    /// The guest's window, from `snd_una`.
    snd_wnd: u32,
    mss: usize,
    rcv_nxt: u32,
    input: Vec<u8>,
    /// The answer bytes from `snd_una` on: sent and unacknowledged, then unsent.
    output: Vec<u8>,
    /// Send a FIN once `output` is all sent.
    close_after: bool,
    fin_sent: bool,
    fin_acked: bool,
    peer_fin: bool,
    syn_ack_due: bool,
    ack_due: bool,
    dup_acks: u8,
    /// When it last heard from the guest (the stack's counter), to evict the stalest.
    pub last_active: u64,
}

impl Conn {
    /// A connection for the guest's `syn`; its SYN-ACK is the first thing `next_frame` gives.
    pub fn accept(ends: Endpoints, syn: &Tcp, iss: u32, now: u64) -> Conn {
        Conn {
            ends,
            state: State::SynReceived,
            snd_una: iss,
            snd_nxt: iss,
            snd_wnd: u32::from(syn.window),
            mss: usize::from(syn.mss.unwrap_or(DEFAULT_PEER_MSS).clamp(64, MSS_OFFERED)),
            rcv_nxt: syn.seq.wrapping_add(1),
            input: Vec::new(),
            output: Vec::new(),
            close_after: false,
            fin_sent: false,
            fin_acked: false,
            peer_fin: false,
            syn_ack_due: true,
            ack_due: false,
            dup_acks: 0,
            last_active: now,
        }
    }

    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Takes one segment of the guest's.
    pub fn on_segment(&mut self, seg: &Tcp, mmds: &Mmds) -> Verdict {
        if seg.flags & RST != 0 {
            return Verdict::Done;
        }
        if seg.flags & SYN != 0 {
            if self.state == State::SynReceived && seg.seq.wrapping_add(1) == self.rcv_nxt {
                // Our SYN-ACK was lost or is late: send it again.
                self.syn_ack_due = true;
                self.snd_nxt = self.snd_una;
            } else {
                // RFC 5961's challenge ACK: a stray SYN learns where we are.
                self.ack_due = true;
            }
            return Verdict::Keep;
        }
        if seg.flags & ACK == 0 {
            return Verdict::Keep;
        }
        let in_flight = self.snd_nxt.wrapping_sub(self.snd_una);
        let mut acked = seg.ack.wrapping_sub(self.snd_una);
        if acked > in_flight {
            // It acknowledges what was never sent (or something old): tell it where we are.
            self.ack_due = true;
            return Verdict::Keep;
        }
        if acked > 0 {
            if self.state == State::SynReceived {
                self.state = State::Established;
                self.snd_una = self.snd_una.wrapping_add(1);
                acked -= 1;
            }
            let data = (acked as usize).min(self.output.len());
            self.output.drain(..data);
            self.snd_una = self.snd_una.wrapping_add(data as u32);
            if acked as usize > data {
                self.fin_acked = true;
                self.snd_una = self.snd_una.wrapping_add(1);
            }
            self.dup_acks = 0;
        } else if seg.data.is_empty() && seg.flags & FIN == 0 && in_flight > 0 && self.is_established() {
            self.dup_acks += 1;
            if self.dup_acks == 3 {
                // Go back to the first unacknowledged byte.
                self.dup_acks = 0;
                self.snd_nxt = self.snd_una;
                self.fin_sent = false;
            }
        }
        self.snd_wnd = u32::from(seg.window);
        if !self.is_established() {
            return Verdict::Keep;
        }
        if !seg.data.is_empty() || seg.flags & FIN != 0 {
            self.receive(seg);
            self.serve(mmds);
        }
        if self.fin_acked && self.peer_fin {
            Verdict::Done
        } else {
            Verdict::Keep
        }
    }

    /// The in-order part of `seg`'s data (and its FIN) into the request buffer.
    fn receive(&mut self, seg: &Tcp) {
        self.ack_due = true;
        if self.peer_fin {
            return;
        }
        // How far into the segment the next expected byte is; "negative" (a gap before
        // it) wraps to a huge value and takes nothing.
        let skip = self.rcv_nxt.wrapping_sub(seg.seq) as usize;
        if skip > seg.data.len() {
            return;
        }
        let new = &seg.data[skip..];
        let take = new.len().min(REQUEST_LIMIT - self.input.len());
        self.input.extend_from_slice(&new[..take]);
        self.rcv_nxt = self.rcv_nxt.wrapping_add(take as u32);
        if seg.flags & FIN != 0 && take == new.len() {
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            self.peer_fin = true;
        }
    }

    /// Answers every whole request buffered.
    fn serve(&mut self, mmds: &Mmds) {
        while !self.close_after {
            match http::parse(&self.input, REQUEST_LIMIT) {
                Parsed::Incomplete => {
                    if self.peer_fin {
                        self.close_after = true;
                    }
                    break;
                }
                Parsed::Complete(request, used) => {
                    let answer = mmds.answer(&request);
                    self.output.extend_from_slice(&answer.to_bytes(request.http10, request.keep_alive));
                    self.input.drain(..used);
                    self.close_after = !request.keep_alive;
                }
                Parsed::Bad(why) => {
                    self.output.extend_from_slice(&http::Answer::text(400, why).to_bytes(false, false));
                    self.close_after = true;
                }
            }
        }
        if self.close_after {
            self.input.clear();
        }
    }

    /// The next frame this connection has for the guest, if any.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        if self.syn_ack_due {
            self.syn_ack_due = false;
            self.snd_nxt = self.snd_una.wrapping_add(1);
            return Some(self.frame(self.snd_una, SYN | ACK, Some(MSS_OFFERED), &[]));
        }
        if !self.is_established() {
            return None;
        }
        // Bytes sent and unacknowledged; our FIN, once sent and until acknowledged, is
        // counted by the sequence numbers but is no byte of `output`.
        let fin_in_flight = self.fin_sent && !self.fin_acked;
        let sent = self.snd_nxt.wrapping_sub(self.snd_una) as usize - usize::from(fin_in_flight);
        let window = self.snd_wnd as usize;
        if sent < self.output.len() && sent < window {
            let n = (self.output.len() - sent).min(self.mss).min(window - sent);
            let last = sent + n == self.output.len();
            let mut flags = ACK | if last { PSH } else { 0 };
            if last && self.close_after {
                flags |= FIN;
                self.fin_sent = true;
            }
            let seq = self.snd_una.wrapping_add(sent as u32);
            self.snd_nxt = seq.wrapping_add(n as u32 + u32::from(flags & FIN != 0));
            self.ack_due = false;
            let data = self.output[sent..sent + n].to_vec();
            return Some(self.frame(seq, flags, None, &data));
        }
        if self.close_after && !self.fin_sent && sent == self.output.len() {
            self.fin_sent = true;
            let seq = self.snd_nxt;
            self.snd_nxt = seq.wrapping_add(1);
            self.ack_due = false;
            return Some(self.frame(seq, FIN | ACK, None, &[]));
        }
        self.ack_due().then(|| self.pure_ack())
    }

    /// Whether an ACK is owed (taking the debt).
    pub fn ack_due(&mut self) -> bool {
        std::mem::take(&mut self.ack_due)
    }

    pub fn pure_ack(&self) -> Vec<u8> {
        self.frame(self.snd_nxt, ACK, None, &[])
    }

    /// A reset for a connection being evicted.
    pub fn reset(&self) -> Vec<u8> {
        self.frame(self.snd_nxt, RST | ACK, None, &[])
    }

    fn frame(&self, seq: u32, flags: u8, mss: Option<u16>, data: &[u8]) -> Vec<u8> {
        let window = (REQUEST_LIMIT - self.input.len()).min(usize::from(u16::MAX)) as u16;
        packet::tcp_frame(&self.ends, &Segment { seq, ack: self.rcv_nxt, flags, window, mss, data })
    }
}
