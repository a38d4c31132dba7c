//! The guest's side of the MMDS in HTTP/1.1: one request framed out of a TCP stream
//! (`parse`), answered from the store (`answer`) as Firecracker answers it (its
//! `mmds/mod.rs`: status codes, messages, V1/V2 token rules, JSON or IMDS text).

use super::store::MmdsStore;
use super::token::Tokens;
use super::{Settings, Version};
use serde_json::Value;

/// The token path, the one resource a PUT reaches.
pub const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_HEADERS: [&str; 2] = ["x-metadata-token", "x-aws-ec2-metadata-token"];
const TTL_HEADERS: [&str; 2] = ["x-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token-ttl-seconds"];
const MAX_HEADERS: usize = 32;

/// One request, as much of it as the answer needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The target's path: an absolute-form target loses its scheme and host, and any
    /// query is dropped.
    pub path: String,
    pub http10: bool,
    pub keep_alive: bool,
    /// Names in lower case.
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, names: &[&str]) -> Option<(&str, &str)> {
        self.headers.iter().find(|(n, _)| names.contains(&n.as_str())).map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A request, and how many bytes of the buffer it took (body included).
    Complete(Request, usize),
    /// Not HTTP we can answer: answered 400 and the connection closed.
    Bad(String),
}

/// Frames the first request of `buf`; `limit` bounds a request, body included.
pub fn parse(buf: &[u8], limit: usize) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limit => return Parsed::Bad("The request is too large.".into()),
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(e) => return Parsed::Bad(format!("Invalid request: {e}.")),
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if find("transfer-encoding").is_some() {
        return Parsed::Bad("Transfer-Encoding is not supported.".into());
    }
    let body = match find("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Parsed::Bad("Invalid Content-Length.".into()),
    };
    let Some(total) = head.checked_add(body).filter(|&t| t <= limit) else {
        return Parsed::Bad("The request is too large.".into());
    };
    if buf.len() < total {
        return Parsed::Incomplete;
    }
    let http10 = req.version == Some(0);
    let connection = find("connection").map(str::to_ascii_lowercase);
    let keep_alive = match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => !http10,
    };
    let target = req.path.unwrap_or("");
    let path = target.strip_prefix("http://").map_or(target, |rest| rest.find('/').map_or("", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or("").to_string();
    let request = Request { method: req.method.unwrap_or("").to_string(), path, http10, keep_alive, headers };
    Parsed::Complete(request, total)
}

/// An answer, before it is written out.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub json: bool,
    pub body: String,
    /// The TTL header a token answer echoes.
    pub echo: Option<(String, String)>,
}

impl Answer {
    pub fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer { status, json: false, body: body.into(), echo: None }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, http10: bool, keep_alive: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            501 => "Not Implemented",
            _ => "",
        };
        let mut head = format!(
            "HTTP/1.{} {} {reason}\r\nServer: Firecracker API\r\nConnection: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            if http10 { 0 } else { 1 },
            self.status,
            if keep_alive { "keep-alive" } else { "close" },
            if self.json { "application/json" } else { "text/plain" },
            self.body.len()
        );
        if self.status == 405 {
            head.push_str("Allow: GET, PUT\r\n");
        }
        if let Some((name, value)) = &self.echo {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

/// Firecracker's answer to `request`.
pub fn answer(request: &Request, store: &MmdsStore, settings: Settings, tokens: &mut Tokens) -> Answer {
    if request.path.is_empty() || !request.path.starts_with('/') {
        return Answer::text(400, "Invalid URI.");
    }
    // A strict JSON pointer: "//" collapses as in Firecracker.
    let mut path = request.path.clone();
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    match request.method.as_str() {
        "GET" => {
            if settings.version == Version::V2 {
                match request.header(&TOKEN_HEADERS) {
                    None => {
                        metrics::MMDS.rx_no_token.inc();
                        return Answer::text(401, "No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header to specify the session token.");
                    }
                    Some((_, token)) if !tokens.is_valid(token) => {
                        metrics::MMDS.rx_invalid_token.inc();
                        return Answer::text(401, "MMDS token not valid.");
                    }
                    Some(_) => {}
                }
            }
            let json = !settings.imds_compat
                && request.header(&["accept"]).is_some_and(|(_, v)| v.contains("application/json"));
            get(store, &path, &request.path, json)
        }
        "PUT" => put_token(request, &path, tokens),
        _ => Answer::text(405, "Not allowed HTTP method."),
    }
}

fn get(store: &MmdsStore, pointer: &str, uri: &str, json: bool) -> Answer {
    let pointer = pointer.strip_suffix('/').unwrap_or(pointer);
    let Some(value) = store.lookup(pointer) else {
        return Answer::text(404, format!("Resource not found: {uri}."));
    };
    if json {
        return Answer { status: 200, json: true, body: value.to_string(), echo: None };
    }
    // EC2's IMDS text: an object lists its keys (objects with a trailing '/'), a string
    // is itself; nothing else has a text form.
    match value {
        Value::Object(map) => {
            let keys: Vec<String> =
                map.iter().map(|(k, v)| if v.is_object() { format!("{k}/") } else { k.clone() }).collect();
            Answer::text(200, keys.join("\n"))
        }
        Value::String(s) => Answer::text(200, s.clone()),
        _ => Answer::text(501, "Cannot retrieve value. The value has an unsupported type."),
    }
}

fn put_token(request: &Request, path: &str, tokens: &mut Tokens) -> Answer {
    if request.header(&["x-forwarded-for"]).is_some() {
        return Answer::text(400, "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
    }
    if path != TOKEN_PATH {
        return Answer::text(404, format!("Resource not found: {}.", request.path));
    }
    let Some((name, value)) = request.header(&TTL_HEADERS) else {
        return Answer::text(400, "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or `X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime.");
    };
    let Ok(ttl) = value.parse::<u32>() else {
        return Answer::text(400, format!("Invalid header. Reason: Invalid value. Key:{name}; Value:{value}"));
    };
    match tokens.generate(ttl) {
        Ok(token) => Answer { status: 200, json: false, body: token, echo: Some((name.to_string(), ttl.to_string())) },
        Err(e) => Answer::text(400, e.to_string()),
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
