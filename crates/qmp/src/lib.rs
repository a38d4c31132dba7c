mod arguments;
mod decoder;
mod dispatch;
mod json_text;
mod request;
mod wire;

pub use arguments::{ArgumentType, Arguments};
pub use decoder::{DecodeError, Decoded, Decoder, MAX_NESTING, MAX_REQUEST_BYTES};
pub use dispatch::{Dispatcher, Handler, Mode, RegisterError, Session, BUILT_IN_COMMANDS};
pub use request::{parse_request, Rejected, Request};
pub use wire::{ErrorClass, Event, Greeting, QmpError, Reply, Timestamp, VersionInfo, VersionTriple};
