//! Firecracker's REST API, server side, as Firecracker speaks it (its OpenAPI file,
//! `src/firecracker/swagger/firecracker.yaml`, and its API server's status codes and
//! messages), so that Firecracker's clients drive microvm unchanged.
//!
//! Pure protocol, like the `qmp` crate: no KVM, no epoll, no acting on anything. It decides
//! *what was asked* and formats *answers*:
//!
//! - [`http`]: HTTP/1.1 request framing on `httparse` (Content-Length bodies, keep-alive,
//!   `Expect: 100-continue`, Firecracker's `--http-api-max-payload-size`);
//! - [`route`]: method + path + JSON body → [`ApiRequest`], with Firecracker's checks;
//! - [`model`]: every body, spelled as the OpenAPI file spells it;
//! - [`response`]: 204 / 200 JSON / 400 `{"fault_message": ...}`;
//! - [`connection`]: one client over a non-blocking stream, for the VMM's loops;
//! - [`config_file`]: `--config-file` into the same requests;
//! - [`mmds`]: the MMDS data store's put/patch/get.
//!
//! ```
//! use fc_api::{ApiRequest, Connection, Response};
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//!
//! let (server, mut client) = UnixStream::pair().unwrap();
//! server.set_nonblocking(true).unwrap(); // in the VMM: from accept()
//! let mut conn = Connection::new(server, fc_api::http::DEFAULT_MAX_PAYLOAD);
//! client.write_all(b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
//! conn.on_readable().unwrap();
//! while let Some(request) = conn.next_request() {
//!     let answer = match request {
//!         Ok(ApiRequest::GetVersion) => Response::ok(&fc_api::model::FirecrackerVersion {
//!             firecracker_version: fc_api::model::FIRECRACKER_VERSION.into(),
//!         }),
//!         Ok(_) => Response::bad_request("not in this example"),
//!         Err(answer) => answer,
//!     };
//!     conn.respond(&answer).unwrap();
//! }
//! assert!(conn.is_done());
//! drop(conn);
//! let mut text = String::new();
//! client.read_to_string(&mut text).unwrap();
//! assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
//! ```

pub mod config_file;
pub mod connection;
pub mod http;
pub mod mmds;
pub mod model;
pub mod response;
pub mod route;

pub use connection::{Connection, ConnectionError};
pub use response::{Response, NOT_SUPPORTED_POST_BOOT, NOT_SUPPORTED_PRE_BOOT};
pub use route::{ApiRequest, RequestError};
