//! The QEMU Machine Protocol (QMP), server side, as QEMU speaks it (docs/interop/qmp-spec and
//! the QAPI schema's wording), so that QEMU's clients can drive microvm unchanged.
//!
//! Pure protocol: no KVM, no epoll. The VMM builds one [`Dispatcher`] with its commands, wraps
//! each accepted non-blocking socket in a [`Connection`], and forwards readiness to it:
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use qmp::{Arguments, Connection, Dispatcher, Event, Greeting, QmpError, Status, VersionInfo, VersionTriple};
//! use serde_json::{json, Value};
//!
//! struct Vm { quit_requested: bool }
//! fn quit(vm: &mut Vm, args: Arguments) -> Result<Value, QmpError> {
//!     args.finish()?;
//!     vm.quit_requested = true; // acted on by the VMM once the reply is flushed
//!     Ok(json!({}))
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut dispatcher = Dispatcher::new();
//! dispatcher.register("quit", quit)?;
//! let greeting = Greeting {
//!     version: VersionInfo { qemu: VersionTriple { micro: 0, minor: 2, major: 9 }, package: "microvm".into() },
//! };
//! let (socket, _client) = UnixStream::pair()?; // in the VMM: from accept()
//! socket.set_nonblocking(true)?;
//! let mut vm = Vm { quit_requested: false };
//! let mut connection = Connection::new(socket, &greeting, false)?;
//! // EPOLLIN:
//! match connection.on_readable(&dispatcher, &mut vm) {
//!     Ok(Status::Open) => {} // register EPOLLOUT iff connection.wants_write()
//!     Ok(Status::PeerClosed) | Err(_) => drop(connection), // Err: log it first
//! }
//! // EPOLLOUT: connection.flush(); a VM event: connection.send_event(&Event::new("STOP", None))
//! # Ok(())
//! # }
//! ```
//!
//! Modules, in the order a request travels: [`Decoder`] frames bytes into JSON values,
//! [`parse_request`] checks the envelope, [`Dispatcher`] runs the command for the connection's
//! [`Session`] (capabilities negotiation first), and replies and events are written as QEMU
//! writes them (ASCII JSON, `", "` separators, `\r\n`, optional pretty layout).
//!
//! Limits: [`MAX_REQUEST_BYTES`] per request (fatal: close the connection), [`MAX_NESTING`]
//! levels of brackets (one error), [`MAX_QUEUED_OUTPUT`] bytes of output waiting for a client
//! that does not read (the connection dies).
//!
//! Not supported: out-of-band execution (`oob` is not offered; `exec-oob` is refused).

mod arguments;
mod connection;
mod decoder;
mod dispatch;
mod json_text;
mod request;
mod wire;

pub use arguments::{ArgumentType, Arguments};
pub use connection::{Connection, ConnectionError, Status, MAX_QUEUED_OUTPUT};
pub use decoder::{DecodeError, Decoded, Decoder, MAX_NESTING, MAX_REQUEST_BYTES};
pub use dispatch::{Dispatcher, Handler, Mode, RegisterError, Session, BUILT_IN_COMMANDS};
pub use request::{parse_request, Rejected, Request};
pub use wire::{ErrorClass, Event, Greeting, QmpError, Reply, Timestamp, VersionInfo, VersionTriple};
