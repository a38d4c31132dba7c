//! What a chardev is asked to be, and why opening one fails.

use std::io;
use std::path::PathBuf;

/// A backend, as `-chardev` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChardevBackend {
    /// Output discarded, no input.
    Null,
    /// Output to stdout, input from stdin (put in raw mode if a terminal).
    Stdio,
    /// A new pseudo-terminal; its path is printed on stderr.
    Pty,
    /// Output to a file, truncated first unless `append` (QEMU's `append=on`);
    /// no input.
    File { path: PathBuf, append: bool },
    /// A Unix socket. As `server`, listen and serve one client at a time;
    /// with `wait`, `open` blocks until the first client connects. Otherwise
    /// connect to `path` at start-up (no reconnection).
    Socket { path: PathBuf, server: bool, wait: bool },
    /// A TCP socket, `host:port`; otherwise as `Socket`.
    Tcp { host: String, port: u16, server: bool, wait: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum ChardevError {
    #[error("chardev '{id}': cannot open {}: {source}", path.display())]
    File { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': cannot create a pseudo-terminal: {source}")]
    Pty { id: String, source: io::Error },
    #[error("chardev '{id}': cannot listen on unix socket {}: {source}", path.display())]
    Listen { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': {} exists and is not a socket", path.display())]
    NotASocket { id: String, path: PathBuf },
    #[error("chardev '{id}': waiting for a client on {} failed: {source}", path.display())]
    Accept { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': cannot connect to unix socket {}: {source}", path.display())]
    Connect { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': cannot listen on tcp {addr}: {source}")]
    TcpListen { id: String, addr: String, source: io::Error },
    #[error("chardev '{id}': cannot connect to tcp {addr}: {source}")]
    TcpConnect { id: String, addr: String, source: io::Error },
    #[error("chardev '{id}': cannot open log file {}: {source}", path.display())]
    LogFile { id: String, path: PathBuf, source: io::Error },
    #[error("chardev '{id}': {what}: {source}")]
    Io { id: String, what: &'static str, source: io::Error },
}

pub(super) fn io_error<'a>(id: &'a str, what: &'static str) -> impl Fn(io::Error) -> ChardevError + 'a {
    move |source| ChardevError::Io { id: id.into(), what, source }
}
