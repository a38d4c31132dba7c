//! One API client over a non-blocking stream: reads into the HTTP decoder, hands out routed
//! requests one at a time, queues the answers and writes them as the socket takes them.
//!
//! The caller (the VMM's pre-boot loop or its event loop) calls [`Connection::on_readable`]
//! when the socket is readable, then [`Connection::next_request`] until it returns `None`,
//! answering each with [`Connection::respond`]; it watches for writability while
//! [`Connection::wants_write`] and drops the connection once [`Connection::is_done`]. One
//! request at a time lets the caller stop between two requests (after `InstanceStart`) and
//! hand the connection, with what it still holds, to the running VM.

use crate::http::{Decoded, Decoder, CONTINUE};
use crate::response::Response;
use crate::route::{self, ApiRequest};
use std::io::{self, Read, Write};

/// Most answer bytes kept for a client that does not read; past this it is dropped, so a
/// client cannot stall the VMM or grow its memory.
pub const MAX_QUEUED_OUTPUT: usize = 1 << 20;

const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("reading from the API client failed")]
    Read(#[source] io::Error),
    #[error("writing to the API client failed")]
    Write(#[source] io::Error),
    #[error("the API client is not reading its answers: more than {MAX_QUEUED_OUTPUT} bytes queued")]
    OutputOverflow,
}

pub struct Connection<S> {
    stream: S,
    decoder: Decoder,
    output: Vec<u8>,
    /// The request being answered asked to close (or its framing broke the stream).
    close_after_answer: bool,
    /// No more requests are taken: the connection ends once its output is written.
    closing: bool,
    /// The client closed its end.
    eof: bool,
}

impl<S: Read + Write> Connection<S> {
    /// Wraps an accepted, non-blocking stream; bodies over `max_payload` bytes are refused.
    pub fn new(stream: S, max_payload: usize) -> Self {
        Connection {
            stream,
            decoder: Decoder::new(max_payload),
            output: Vec::new(),
            close_after_answer: false,
            closing: false,
            eof: false,
        }
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Reads what the socket has (bounded by what the decoder may hold).
    pub fn on_readable(&mut self) -> Result<(), ConnectionError> {
        let mut chunk = [0u8; READ_CHUNK];
        while !self.eof && !self.closing {
            let want = self.decoder.room().min(READ_CHUNK);
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.decoder.push(&chunk[..n]);
                    if n < want {
                        break;
                    }
                    // The decoder is full until a request is taken out.
                    if self.decoder.room() <= 1 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.eof = true,
                Err(e) => return Err(ConnectionError::Read(e)),
            }
        }
        Ok(())
    }

    /// The next complete request: routed, or the error answer to give. Answer it with
    /// [`Connection::respond`] before asking for the next.
    pub fn next_request(&mut self) -> Option<Result<ApiRequest, Response>> {
        if self.closing {
            return None;
        }
        loop {
            match self.decoder.decode() {
                Ok(Decoded::Incomplete) => return None,
                Ok(Decoded::Continue) => self.output.extend_from_slice(CONTINUE),
                Ok(Decoded::Request(request)) => {
                    self.close_after_answer = request.close;
                    return Some(route::parse(&request).map_err(Response::bad_request));
                }
                Err(e) => {
                    // The stream cannot be resynchronised: answer, then close.
                    self.close_after_answer = true;
                    return Some(Err(Response::bad_request(e)));
                }
            }
        }
    }

    /// Queues the answer to the request last handed out, and writes what the socket takes.
    pub fn respond(&mut self, response: &Response) -> Result<(), ConnectionError> {
        self.output.extend_from_slice(&response.encode(self.close_after_answer));
        if self.close_after_answer {
            self.closing = true;
        }
        self.flush()
    }

    /// Writes queued output until the socket would block.
    pub fn flush(&mut self) -> Result<(), ConnectionError> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(ConnectionError::Write(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnectionError::Write(e)),
            }
        }
        if self.output.len() > MAX_QUEUED_OUTPUT {
            return Err(ConnectionError::OutputOverflow);
        }
        Ok(())
    }

    /// Between requests with nothing to send: a keep-alive connection the client holds
    /// for later. A server at its client limit may close it (clients reconnect, as
    /// after any keep-alive timeout) rather than turn a new client away.
    pub fn is_idle(&self) -> bool {
        self.output.is_empty() && self.decoder.is_empty()
    }

    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Nothing more will come or go: the caller drops the connection. (A client that
    /// half-closed after its last request still gets its answers first.)
    pub fn is_done(&self) -> bool {
        (self.closing || self.eof) && self.output.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ActionType;
    use std::os::unix::net::UnixStream;

    #[test]
    fn answers_in_order_then_closes_on_request() {
        let (server, mut client) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut conn = Connection::new(server, 1024);
        client
            .write_all(
                b"GET /version HTTP/1.1\r\n\r\nPUT /actions HTTP/1.1\r\nConnection: close\r\nContent-Length: 33\r\n\r\n{\"action_type\": \"InstanceStart\"}\n",
            )
            .unwrap();
        conn.on_readable().unwrap();
        assert_eq!(conn.next_request().unwrap().unwrap(), ApiRequest::GetVersion);
        conn.respond(&Response::ok(&serde_json::json!({"firecracker_version": "1"}))).unwrap();
        assert_eq!(conn.next_request().unwrap().unwrap(), ApiRequest::Action(ActionType::InstanceStart));
        assert!(!conn.is_done());
        conn.respond(&Response::no_content()).unwrap();
        assert!(conn.next_request().is_none());
        assert!(conn.is_done());
        drop(conn);
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn oversized_body_is_refused_and_closes() {
        let (server, mut client) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut conn = Connection::new(server, 50);
        client.write_all(b"PUT /mmds HTTP/1.1\r\nContent-Length: 50000\r\n\r\naaaa").unwrap();
        conn.on_readable().unwrap();
        let answer = conn.next_request().unwrap().unwrap_err();
        assert_eq!(
            answer.fault_message().as_deref(),
            Some("Request payload with size 50000 is larger than the limit of 50 allowed by server.")
        );
        conn.respond(&answer).unwrap();
        assert!(conn.is_done());
    }
}
