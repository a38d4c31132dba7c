//! The host side: the listener at `uds_path` and its `CONNECT <port>\n` handshake, and
//! the events of every connection's host stream.

use super::conn::{Conn, Flush, Key, State};
use super::packet::{op, SHUTDOWN_BOTH, SHUTDOWN_SEND};
use super::{start_close_deadline, Handshake, HybridVsock, MAX_CONNECTIONS, MAX_HANDSHAKES};
use event_manager::{EventOps, EventSet, Events};
use std::io::{ErrorKind, Read};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Host-side ports of host-initiated connections start here (as Firecracker's), far from
/// the ports guests listen on.
pub const FIRST_HOST_PORT: u32 = 1 << 30;
/// Longest `CONNECT <port>` line: the word, a space, ten digits, some slack for spaces.
const CONNECT_LINE_MAX: usize = 32;

/// The guest port of a `CONNECT <port>` line (without its newline).
pub fn parse_connect(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split_whitespace();
    if words.next()? != "CONNECT" {
        return None;
    }
    let port = words.next()?.parse().ok()?;
    words.next().is_none().then_some(port)
}

/// Connects to the Unix socket at `path` without blocking: a listener whose backlog is full
/// refuses at once (EAGAIN) rather than holding the device thread, which serves every
/// device (std's `UnixStream::connect` would wait for room).
pub fn connect_now(path: &Path) -> std::io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    let mut addr = libc::sockaddr_un { sun_family: libc::AF_UNIX as libc::sa_family_t, sun_path: [0; 108] };
    // The path and its terminating NUL must fit.
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::from(ErrorKind::InvalidInput));
    }
    for (to, &from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = from as libc::c_char;
    }
    let flags = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socket() takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is the socket just created, owned by nothing else; the stream closes it.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_un that outlives the call, and `len` is within it.
    let rc = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}

impl HybridVsock {
    /// Takes every waiting host connection; each must send its line next.
    pub(super) fn accept(&mut self, ops: &mut EventOps) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    metrics::VSOCK.muxer_event_fails.inc();
                    log::warn!("hybrid vsock: cannot accept on {}: {e}", self.uds_path.display());
                    return;
                }
            };
            // Too many silent peers: this one is closed at once (it sees EOF).
            if self.handshakes.len() >= MAX_HANDSHAKES || stream.set_nonblocking(true).is_err() {
                continue;
            }
            if let Err(e) = ops.add(Events::new(&stream, EventSet::IN)) {
                metrics::VSOCK.conn_event_fails.inc();
                log::error!("hybrid vsock: cannot watch a host connection: {e:?}");
                continue;
            }
            self.handshakes.insert(stream.as_raw_fd(), Handshake { stream, line: Vec::new() });
        }
    }

    /// Reads a handshake byte by byte (nothing past the newline is taken: it is the
    /// connection's data) and, at the newline, asks the guest for the connection.
    pub(super) fn read_handshake(&mut self, fd: RawFd, ops: &mut EventOps) {
        let Some(hs) = self.handshakes.get_mut(&fd) else { return };
        let complete = loop {
            let mut byte = [0u8];
            match hs.stream.read(&mut byte) {
                Ok(0) => break None,
                Ok(_) if byte[0] == b'\n' => break parse_connect(&hs.line),
                Ok(_) if hs.line.len() == CONNECT_LINE_MAX => break None,
                Ok(_) => hs.line.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break None,
            }
        };
        let Some(hs) = self.handshakes.remove(&fd) else { return };
        let _ = ops.remove(Events::new(&hs.stream, EventSet::IN));
        // A bad line, an inactive device or a full table: the stream closes, as Firecracker's.
        let Some(guest_port) = complete else { return };
        if self.activation.active.is_none() || self.conns.len() >= MAX_CONNECTIONS {
            return;
        }
        let host_port = self.free_host_port(guest_port);
        let key = Key { guest_port, host_port };
        let mut conn = Conn::new(hs.stream, key, State::Connecting, None);
        let request = conn.header(op::REQUEST, self.cid);
        self.control.push_back(request);
        self.by_fd.insert(fd, key);
        self.conns.insert(key, conn);
        metrics::VSOCK.conns_added.inc();
    }

    fn free_host_port(&mut self, guest_port: u32) -> u32 {
        loop {
            let port = self.next_host_port;
            self.next_host_port = port.checked_add(1).unwrap_or(FIRST_HOST_PORT);
            if !self.conns.contains_key(&Key { guest_port, host_port: port }) {
                return port;
            }
        }
    }

    /// The host stream of `key` is readable, writable or gone.
    pub(super) fn host_event(&mut self, key: Key, set: EventSet, ops: &mut EventOps) {
        let Some(conn) = self.conns.get_mut(&key) else { return };
        let gone = set.intersects(EventSet::HANG_UP | EventSet::ERROR | EventSet::READ_HANG_UP);
        if set.intersects(EventSet::HANG_UP | EventSet::ERROR) && !conn.host_gone {
            // The peer closed its whole end. Once its last bytes are read (at its EOF, in
            // `next_packet`) the guest is told both directions are shut; if that EOF was
            // read already (the peer had shut only its sending side), it is told now.
            conn.host_gone = true;
            if conn.host_eof && conn.state == State::Established {
                let mut h = conn.header(op::SHUTDOWN, self.cid);
                h.flags = SHUTDOWN_BOTH;
                start_close_deadline(conn, &mut self.close_timer, &mut self.close_timer_at);
                self.control.push_back(h);
            }
        }
        if conn.has_pending() && (set.contains(EventSet::OUT) || gone) && !self.flush(key, ops) {
            return;
        }
        let Some(conn) = self.conns.get_mut(&key) else { return };
        if (set.contains(EventSet::IN) || gone) && conn.wants_input() && !conn.readable {
            conn.readable = true;
            self.ready.push_back(key);
        }
    }

    /// Writes what waits for the host peer and finishes a shutdown the guest asked for
    /// once nothing waits. False if the connection is gone.
    pub(super) fn flush(&mut self, key: Key, ops: &mut EventOps) -> bool {
        let Some(conn) = self.conns.get_mut(&key) else { return false };
        match conn.flush() {
            Flush::Broken => {
                metrics::VSOCK.tx_flush_fails.inc();
                self.reset_conn(key, ops);
                return false;
            }
            Flush::Partial => {}
            Flush::Done => {
                if conn.guest_shutdown & SHUTDOWN_BOTH == SHUTDOWN_BOTH {
                    self.close_conn(key, ops);
                    return false;
                }
                if conn.guest_shutdown & SHUTDOWN_SEND != 0 {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                }
            }
        }
        if conn.wants_credit_update() && !conn.credit_update_owed {
            conn.credit_update_owed = true;
            self.credit_owed.push_back(key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::parse_connect;

    #[test]
    fn connect_lines() {
        assert_eq!(parse_connect(b"CONNECT 52"), Some(52));
        assert_eq!(parse_connect(b"CONNECT  4294967295 "), Some(u32::MAX));
        assert_eq!(parse_connect(b"CONNECT 4294967296"), None);
        assert_eq!(parse_connect(b"CONNECT"), None);
        assert_eq!(parse_connect(b"connect 52"), None);
        assert_eq!(parse_connect(b"CONNECT 52 53"), None);
        assert_eq!(parse_connect(b"CONNECT -1"), None);
        assert_eq!(parse_connect(&[0xff, 0xfe]), None);
    }
}
