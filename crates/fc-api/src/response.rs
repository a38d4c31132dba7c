//! Firecracker's answers: 204 without a body on success, 200 with JSON for a GET, 400 with
//! `{"fault_message": "..."}` for a request it cannot do (413 when the MMDS store would
//! outgrow its limit), each with the headers Firecracker's server sends.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// JSON text; `None` for 204.
    pub body: Option<String>,
}

impl Response {
    pub fn no_content() -> Response {
        Response { status: 204, body: None }
    }

    /// 200 with `value` as JSON.
    pub fn ok<T: Serialize + ?Sized>(value: &T) -> Response {
        let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
        Response { status: 200, body: Some(body) }
    }

    /// 400 with Firecracker's fault message.
    pub fn bad_request(message: impl std::fmt::Display) -> Response {
        Response::fault(400, message)
    }

    pub fn fault(status: u16, message: impl std::fmt::Display) -> Response {
        let body = serde_json::json!({ "fault_message": message.to_string() }).to_string();
        Response { status, body: Some(body) }
    }

    /// The fault message, if this is one (for logs and tests).
    pub fn fault_message(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(self.body.as_deref()?).ok()?;
        value.get("fault_message")?.as_str().map(str::to_owned)
    }

    /// The response on the wire. `close` adds `Connection: close`.
    pub fn encode(&self, close: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nServer: Firecracker API\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            if close { "close" } else { "keep-alive" }
        );
        match &self.body {
            Some(body) => {
                out.push_str("Content-Type: application/json\r\n");
                out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                out.push_str(body);
            }
            None if self.status == 204 => out.push_str("\r\n"),
            None => out.push_str("Content-Length: 0\r\n\r\n"),
        }
        out.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        _ => "",
    }
}

/// Firecracker's answers for a request in the wrong state.
pub const NOT_SUPPORTED_PRE_BOOT: &str = "The requested operation is not supported before starting the microVM.";
pub const NOT_SUPPORTED_POST_BOOT: &str = "The requested operation is not supported after starting the microVM.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let text = String::from_utf8(Response::no_content().encode(false)).unwrap();
        assert_eq!(text, "HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n");
        let fault = Response::bad_request("no \"kernel\"");
        assert_eq!(fault.body.as_deref(), Some(r#"{"fault_message":"no \"kernel\""}"#));
        assert_eq!(fault.fault_message().as_deref(), Some("no \"kernel\""));
        let text = String::from_utf8(fault.encode(true)).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(text.contains("Connection: close\r\nContent-Type: application/json\r\nContent-Length: 33\r\n\r\n{"));
    }
}
