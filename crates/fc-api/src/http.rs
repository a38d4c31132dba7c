//! HTTP/1.1 request framing over a byte buffer: the request line and headers through
//! `httparse`, the body by `Content-Length`, as much of HTTP as Firecracker's clients use
//! (curl, Python `requests` over a Unix socket, Go's `net/http`). Chunked bodies are
//! refused: Firecracker's own server (micro_http) does not take them either.
//!
//! [`Decoder::decode`] never blocks and never panics: it either has a complete request, needs
//! more bytes, or names what is wrong with the input so the caller can answer 400 and close
//! (after a framing error the stream cannot be resynchronised).

use std::fmt;

/// Firecracker's `--http-api-max-payload-size` default (its `HTTP_MAX_PAYLOAD_SIZE`).
pub const DEFAULT_MAX_PAYLOAD: usize = 51_200;

/// Most bytes of request line plus headers. Firecracker's requests have a handful of short
/// headers; this bounds what a client can make microvm buffer before a body starts.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most headers in one request.
const MAX_HEADERS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Patch,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        })
    }
}

/// One complete request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The absolute path, without scheme, authority or query (`/drives/rootfs`).
    pub path: String,
    /// `None` without a body (no Content-Length, or 0), as Firecracker tells them apart.
    pub body: Option<Vec<u8>>,
    /// The client asked to close after this request (`Connection: close`, or HTTP/1.0
    /// without `Connection: keep-alive`).
    pub close: bool,
}

/// Input that cannot be a request; answered with 400 (413 for an oversized body), after
/// which the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// httparse's reason (its no_std build has no `std::error::Error` to chain).
    #[error("Invalid HTTP request: {0}.")]
    Malformed(httparse::Error),
    #[error("Invalid HTTP request: header value.")]
    HeaderValue,
    /// Neither `/path` nor `scheme://host/path` (the first 64 characters).
    #[error("Invalid HTTP request: request target {0}.")]
    Target(String),
    #[error("Unsupported HTTP method: {0}.")]
    Method(String),
    #[error("Unsupported HTTP version: HTTP/1.{0}.")]
    Version(u8),
    #[error("The request line and headers are longer than {MAX_HEAD} bytes.")]
    HeadTooLong,
    #[error("Invalid Content-Length header.")]
    ContentLength,
    #[error("Transfer-Encoding is not supported; send a Content-Length body.")]
    TransferEncoding,
    /// Firecracker's words for a body over `--http-api-max-payload-size`.
    #[error("Request payload with size {size} is larger than the limit of {limit} allowed by server.")]
    PayloadTooLarge { size: u64, limit: usize },
}

/// What the decoder has for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Request(Request),
    /// The head is complete and asked for `Expect: 100-continue`: the caller writes
    /// [`CONTINUE`] so the client (curl, for bodies over 1 KiB) sends the body now.
    Continue,
    /// More bytes are needed.
    Incomplete,
}

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A parsed head waiting for its body.
#[derive(Debug)]
struct Head {
    method: Method,
    path: String,
    close: bool,
    length: usize,
}

/// Cuts requests out of the bytes a connection receives.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max_payload: usize,
    head: Option<Head>,
}

impl Decoder {
    pub fn new(max_payload: usize) -> Decoder {
        Decoder { buf: Vec::new(), max_payload, head: None }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Nothing of a next request has arrived.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.head.is_none()
    }

    /// How many more bytes the decoder is willing to hold; the connection reads no more
    /// than this, so a client cannot make it buffer without bound.
    pub fn room(&self) -> usize {
        let limit = match &self.head {
            Some(head) => head.length,
            None => MAX_HEAD + self.max_payload,
        };
        limit.saturating_sub(self.buf.len()).max(1)
    }

    /// The next request, if complete. After an error the decoder must not be used again.
    pub fn decode(&mut self) -> Result<Decoded, HttpError> {
        if self.head.is_none() {
            let Some((head, used, expect)) = self.parse_head()? else {
                return Ok(Decoded::Incomplete);
            };
            self.buf.drain(..used);
            let waiting = self.buf.len() < head.length;
            self.head = Some(head);
            if expect && waiting {
                return Ok(Decoded::Continue);
            }
        }
        let Some(head) = &self.head else { return Ok(Decoded::Incomplete) };
        if self.buf.len() < head.length {
            return Ok(Decoded::Incomplete);
        }
        let Some(head) = self.head.take() else { return Ok(Decoded::Incomplete) };
        let body: Vec<u8> = self.buf.drain(..head.length).collect();
        Ok(Decoded::Request(Request {
            method: head.method,
            path: head.path,
            body: (!body.is_empty()).then_some(body),
            close: head.close,
        }))
    }

    /// The head, its length in bytes and whether it expects 100-continue.
    fn parse_head(&self) -> Result<Option<(Head, usize, bool)>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let used = match request.parse(&self.buf) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD => return Err(HttpError::HeadTooLong),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLong),
            Err(e) => return Err(HttpError::Malformed(e)),
        };
        if used > MAX_HEAD {
            return Err(HttpError::HeadTooLong);
        }
        let method = match request.method.unwrap_or_default() {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            other => return Err(HttpError::Method(other.chars().take(32).collect())),
        };
        let version = request.version.unwrap_or(1);
        let mut close = version == 0;
        let mut length: Option<u64> = None;
        let mut expect = false;
        for header in request.headers.iter() {
            let value = std::str::from_utf8(header.value).map_err(|_| HttpError::HeaderValue)?;
            let value = value.trim();
            if header.name.eq_ignore_ascii_case("content-length") {
                // Digits only (Rust's parse would also take a sign).
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HttpError::ContentLength);
                }
                let n: u64 = value.parse().map_err(|_| HttpError::ContentLength)?;
                if length.is_some_and(|m| m != n) {
                    return Err(HttpError::ContentLength);
                }
                length = Some(n);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(HttpError::TransferEncoding);
            } else if header.name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case("close") {
                    close = true;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            } else if header.name.eq_ignore_ascii_case("expect") {
                expect = value.eq_ignore_ascii_case("100-continue");
            }
        }
        let length = length.unwrap_or(0);
        if length > self.max_payload as u64 {
            return Err(HttpError::PayloadTooLarge { size: length, limit: self.max_payload });
        }
        let path = abs_path(request.path.unwrap_or("/"))?;
        Ok(Some((Head { method, path, close, length: length as usize }, used, expect)))
    }
}

/// The path of a request target: origin form (`/x`) or absolute form
/// (`http://localhost/x`, what some clients send over a Unix socket); the query is dropped.
fn abs_path(target: &str) -> Result<String, HttpError> {
    let rest = match target.split_once("://") {
        Some((_, after_scheme)) => after_scheme.find('/').map_or("/", |i| &after_scheme[i..]),
        None => target,
    };
    if !rest.starts_with('/') {
        return Err(HttpError::Target(rest.chars().take(64).collect()));
    }
    let path = rest.split(['?', '#']).next().unwrap_or("/");
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], max: usize) -> Vec<Result<Decoded, HttpError>> {
        let mut d = Decoder::new(max);
        d.push(bytes);
        let mut out = Vec::new();
        loop {
            let next = d.decode();
            let stop = matches!(next, Ok(Decoded::Incomplete) | Err(_));
            out.push(next);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn keep_alive_requests_in_one_read() {
        let input = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\nPUT http://localhost/boot-source?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let out = decode_all(input, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            out[0],
            Ok(Decoded::Request(Request { method: Method::Get, path: "/".into(), body: None, close: false }))
        );
        assert_eq!(
            out[1],
            Ok(Decoded::Request(Request {
                method: Method::Put,
                path: "/boot-source".into(),
                body: Some(b"{}".to_vec()),
                close: false
            }))
        );
        assert_eq!(out[2], Ok(Decoded::Incomplete));
    }

    #[test]
    fn body_in_pieces_and_expect_continue() {
        let mut d = Decoder::new(100);
        d.push(b"PATCH /vm HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 19\r\n");
        assert_eq!(d.decode(), Ok(Decoded::Incomplete));
        d.push(b"\r\n");
        assert_eq!(d.decode(), Ok(Decoded::Continue));
        d.push(b"{\"state\": ");
        assert_eq!(d.decode(), Ok(Decoded::Incomplete));
        d.push(b"\"Paused\"}");
        let Ok(Decoded::Request(r)) = d.decode() else { panic!("no request") };
        assert_eq!(r.body.as_deref(), Some(&b"{\"state\": \"Paused\"}"[..]));
    }

    #[test]
    fn bad_input_is_named() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"DELETE /drives/x HTTP/1.1\r\n\r\n", HttpError::Method("DELETE".into())),
            (
                b"PUT /x HTTP/1.1\r\nContent-Length: 60000\r\n\r\n",
                HttpError::PayloadTooLarge { size: 60000, limit: 51200 },
            ),
            (b"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HttpError::ContentLength),
            (b"PUT /x HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HttpError::ContentLength),
            (b"PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", HttpError::ContentLength),
            (b"PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HttpError::ContentLength),
            (b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", HttpError::TransferEncoding),
            (b"GET x HTTP/1.1\r\n\r\n", HttpError::Target("x".into())),
        ];
        for (input, error) in cases {
            let out = decode_all(input, DEFAULT_MAX_PAYLOAD);
            assert_eq!(out.last(), Some(&Err(error.clone())), "{}", String::from_utf8_lossy(input));
        }
        assert!(matches!(decode_all(b"\x00\x01garbage\r\n\r\n", 10).last(), Some(Err(HttpError::Malformed(_)))));
        assert_eq!(decode_all(&[b'a'; MAX_HEAD + 1], 10).last(), Some(&Err(HttpError::HeadTooLong)));
    }

    #[test]
    fn http_1_0_closes() {
        let out = decode_all(b"GET /version HTTP/1.0\r\n\r\n", 10);
        assert!(matches!(&out[0], Ok(Decoded::Request(r)) if r.close));
    }
}
