//! Command table, per-connection session state, and the built-in commands.
//!
//! A connection starts in capabilities negotiation mode, where only `qmp_capabilities` runs and
//! every other command gets QEMU's `CommandNotFound` "Expecting capabilities negotiation with
//! 'qmp_capabilities'". A successful `qmp_capabilities` switches it to command mode, where the
//! registered commands and `query-commands` run, and events are delivered.
//!
//! # Side effects after the reply
//!
//! Handlers only return a value; a command whose effect must wait until its reply is on the
//! wire (`quit`: reply, then end the VM) records the request in the target (e.g. sets
//! `vm.quit_requested`), and the VMM acts on it after [`crate::Connection::on_readable`] has
//! returned and the replies are flushed. The crate never needs to know about such effects.

use serde_json::{json, Value};

use crate::arguments::Arguments;
use crate::request::{parse_request, Rejected};
use crate::wire::{QmpError, Reply};

/// A command implementation: runs against the VMM's `target` and returns the `return` value
/// (`json!({})` for commands that return nothing, as the QMP spec asks).
pub type Handler<T> = fn(&mut T, Arguments) -> Result<Value, QmpError>;

const QMP_CAPABILITIES: &str = "qmp_capabilities";
const QUERY_COMMANDS: &str = "query-commands";

/// Commands every dispatcher has; they cannot be registered.
pub const BUILT_IN_COMMANDS: [&str; 2] = [QMP_CAPABILITIES, QUERY_COMMANDS];

/// `QMPCapability` values a client may ask `qmp_capabilities` to enable (QEMU's enum).
const KNOWN_CAPABILITIES: [&str; 1] = ["oob"];

/// Registering a command failed: the table is the VMM's code, so this is a programming error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("QMP command '{0}' is registered twice")]
    Duplicate(&'static str),
    #[error("QMP command '{0}' is built in and cannot be registered")]
    BuiltIn(&'static str),
}

/// Where a connection is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    CapabilitiesNegotiation,
    Command,
}

/// Protocol state of one connection.
#[derive(Debug, Clone, Default)]
pub struct Session {
    mode: Mode,
}

impl Session {
    pub fn new() -> Self {
        Session::default()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Events go only to sessions in command mode, as in QEMU.
    pub fn accepts_events(&self) -> bool {
        self.mode == Mode::Command
    }
}

/// The command table, built once by the VMM and shared by all connections.
pub struct Dispatcher<T> {
    commands: Vec<(&'static str, Handler<T>)>,
}

impl<T> Default for Dispatcher<T> {
    fn default() -> Self {
        Dispatcher { commands: Vec::new() }
    }
}

impl<T> Dispatcher<T> {
    pub fn new() -> Self {
        Dispatcher::default()
    }

    pub fn register(&mut self, name: &'static str, handler: Handler<T>) -> Result<(), RegisterError> {
        if BUILT_IN_COMMANDS.contains(&name) {
            return Err(RegisterError::BuiltIn(name));
        }
        if self.find(name).is_some() {
            return Err(RegisterError::Duplicate(name));
        }
        self.commands.push((name, handler));
        Ok(())
    }

    /// Every command a client in command mode can run: built-ins, then in registration order.
    pub fn command_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        BUILT_IN_COMMANDS.into_iter().chain(self.commands.iter().map(|(name, _)| *name))
    }

    fn find(&self, name: &str) -> Option<Handler<T>> {
        self.commands.iter().find(|(registered, _)| *registered == name).map(|(_, handler)| *handler)
    }

    /// Validates and runs one decoded request; the reply echoes its `id`.
    pub fn dispatch(&self, session: &mut Session, target: &mut T, request: Value) -> Reply {
        let request = match parse_request(request) {
            Ok(request) => request,
            Err(Rejected { error, id }) => return Reply { outcome: Err(error), id },
        };
        let outcome = match (session.mode, request.command.as_str()) {
            (_, QMP_CAPABILITIES) => qmp_capabilities(session, request.arguments),
            (Mode::CapabilitiesNegotiation, _) => {
                Err(QmpError::command_not_found("Expecting capabilities negotiation with 'qmp_capabilities'"))
            }
            (Mode::Command, QUERY_COMMANDS) => self.query_commands(request.arguments),
            (Mode::Command, name) => match self.find(name) {
                Some(handler) => handler(target, request.arguments),
                None => Err(QmpError::command_not_found(format!("The command {name} has not been found"))),
            },
        };
        Reply { outcome, id: request.id }
    }

    fn query_commands(&self, arguments: Arguments) -> Result<Value, QmpError> {
        arguments.finish()?;
        Ok(Value::Array(self.command_names().map(|name| json!({ "name": name })).collect()))
    }
}

/// `qmp_capabilities`: arguments are checked first, then the mode, as QEMU's generated
/// marshaller and `qmp_qmp_capabilities` do. No capability is offered, so enabling any fails.
fn qmp_capabilities(session: &mut Session, mut arguments: Arguments) -> Result<Value, QmpError> {
    let enable = arguments.optional_enum_list("enable", &KNOWN_CAPABILITIES)?.unwrap_or_default();
    arguments.finish()?;
    if session.mode == Mode::Command {
        return Err(QmpError::command_not_found("Capabilities negotiation is already complete, command ignored"));
    }
    if !enable.is_empty() {
        return Err(QmpError::generic(format!("Capability {} not available", enable.join(", "))));
    }
    session.mode = Mode::Command;
    Ok(json!({}))
}

#[cfg(test)]
mod tests;
