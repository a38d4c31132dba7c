//! One client connection over a non-blocking stream: input decoding, dispatch, output queueing.
//!
//! The VMM's event loop owns the socket's registration and calls
//! [`Connection::on_readable`] on EPOLLIN, [`Connection::flush`] on EPOLLOUT, asks for EPOLLOUT
//! only while [`Connection::wants_write`], and drops the connection whenever a call returns an
//! error or [`Status::PeerClosed`]. Nothing here ever blocks, provided the stream is
//! non-blocking: a client that stops reading gets its output queued up to
//! [`MAX_QUEUED_OUTPUT`], then the connection is declared dead rather than stall the VM.

use std::io::{self, Read, Write};

use serde::Serialize;

use crate::decoder::{DecodeError, Decoded, Decoder};
use crate::dispatch::{Dispatcher, Session};
use crate::json_text::write_message;
use crate::wire::{Event, Greeting, Reply};

/// Most output bytes kept for a client that is not reading. Replies and events are a few
/// hundred bytes; 1 MiB absorbs thousands of them (on top of the socket's own buffer) before
/// the client is considered gone.
pub const MAX_QUEUED_OUTPUT: usize = 1 << 20;

/// Bytes read from the stream per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// The connection cannot be used any more; the caller drops it (the error says why, for a log).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("reading from the QMP client failed")]
    Read(#[source] io::Error),
    #[error("writing to the QMP client failed")]
    Write(#[source] io::Error),
    #[error("the QMP client is not reading its output: more than {MAX_QUEUED_OUTPUT} bytes queued")]
    OutputOverflow,
    #[error("the QMP client's input cannot be decoded any further")]
    Decode(#[source] DecodeError),
    #[error("encoding a QMP message failed")]
    Encode(#[source] serde_json::Error),
}

/// What the caller does with a connection after a successful call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Keep it; ask for EPOLLOUT if [`Connection::wants_write`].
    Open,
    /// The client closed its end. The replies to what it sent were written as far as the socket
    /// accepted them (a client that half-closes after its last request still gets them, unless
    /// the socket buffer is full); drop the connection.
    PeerClosed,
}

/// A QMP connection: decoder, session state and output queue around a stream.
pub struct Connection<S> {
    stream: S,
    pretty: bool,
    decoder: Decoder,
    session: Session,
    /// Encoded messages not yet accepted by the stream, oldest first.
    output: Vec<u8>,
    /// Set once output overflowed: nothing more is queued, every call fails.
    dead: bool,
}

impl<S: Read + Write> Connection<S> {
    /// Wraps a freshly accepted, non-blocking stream and sends the greeting. `pretty` is the
    /// monitor's `pretty=on` option (indented output).
    pub fn new(stream: S, greeting: &Greeting, pretty: bool) -> Result<Self, ConnectionError> {
        let mut connection = Connection {
            stream,
            pretty,
            decoder: Decoder::new(),
            session: Session::new(),
            output: Vec::new(),
            dead: false,
        };
        connection.queue(greeting)?;
        connection.flush()?;
        Ok(connection)
    }

    /// Reads everything available, runs each complete request in order against `target`, and
    /// queues and starts writing the replies. Reads until the stream would block, so it suits
    /// edge-triggered epoll too.
    pub fn on_readable<T>(&mut self, dispatcher: &Dispatcher<T>, target: &mut T) -> Result<Status, ConnectionError> {
        self.check_alive()?;
        let mut buffer = [0u8; READ_CHUNK];
        let mut decoded = Vec::new();
        let status = loop {
            let count = match self.stream.read(&mut buffer) {
                Ok(0) => break Status::PeerClosed,
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Status::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnectionError::Read(e)),
            };
            let fed = self.decoder.feed(&buffer[..count], &mut decoded);
            for item in decoded.drain(..) {
                let reply = match item {
                    Decoded::Value(request) => dispatcher.dispatch(&mut self.session, target, request),
                    Decoded::Error(error) => Reply { outcome: Err(error), id: None },
                };
                self.queue(&reply)?;
            }
            if let Err(e) = fed {
                // The error reply for the oversized request is queued: try to get it out first.
                let _ = self.flush();
                return Err(ConnectionError::Decode(e));
            }
        };
        self.flush()?;
        Ok(status)
    }

    /// Queues `event` if the session is in command mode (dropped silently before negotiation,
    /// as QEMU does) and starts writing it.
    pub fn send_event(&mut self, event: &Event) -> Result<(), ConnectionError> {
        self.check_alive()?;
        if self.session.accepts_events() {
            self.queue(event)?;
            self.flush()?;
        }
        Ok(())
    }

    /// Writes as much queued output as the stream accepts now; the rest stays queued.
    pub fn flush(&mut self) -> Result<(), ConnectionError> {
        self.check_alive()?;
        let mut written = 0;
        let result = loop {
            if written == self.output.len() {
                break Ok(());
            }
            match self.stream.write(&self.output[written..]) {
                Ok(0) => break Err(ConnectionError::Write(io::ErrorKind::WriteZero.into())),
                Ok(count) => written += count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(ConnectionError::Write(e)),
            }
        };
        self.output.drain(..written);
        result
    }

    /// Whether output is waiting for the stream to become writable (ask epoll for EPOLLOUT).
    pub fn wants_write(&self) -> bool {
        !self.dead && !self.output.is_empty()
    }

    /// Whether the connection overflowed its output queue and must be dropped.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The stream, e.g. for its file descriptor.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Bytes queued and not yet written.
    pub fn queued_output(&self) -> usize {
        self.output.len()
    }

    fn check_alive(&self) -> Result<(), ConnectionError> {
        if self.dead {
            Err(ConnectionError::OutputOverflow)
        } else {
            Ok(())
        }
    }

    /// Appends one message to the output; past [`MAX_QUEUED_OUTPUT`] (after trying to write)
    /// the connection dies and its queue is freed.
    fn queue<M: Serialize + ?Sized>(&mut self, message: &M) -> Result<(), ConnectionError> {
        self.check_alive()?;
        write_message(message, self.pretty, &mut self.output).map_err(ConnectionError::Encode)?;
        if self.output.len() > MAX_QUEUED_OUTPUT {
            self.flush()?;
            if self.output.len() > MAX_QUEUED_OUTPUT {
                self.dead = true;
                self.output = Vec::new();
                return Err(ConnectionError::OutputOverflow);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
