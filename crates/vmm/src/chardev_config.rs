//! The chardevs front ends talk on (`-chardev`, `-serial`'s shorthands): plain data, below
//! both the VM's config and the device kinds that take one.

use std::path::PathBuf;

/// `-chardev BACKEND,id=ID,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevConfig {
    pub id: String,
    pub backend: ChardevBackend,
    /// `logfile=PATH[,logappend=on]`: a copy of the output goes there.
    pub logfile: Option<LogFile>,
}

/// A chardev's output log; truncated first unless `append`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub append: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChardevBackend {
    /// Output discarded, no input.
    Null,
    Stdio,
    /// A new pseudo-terminal; its path is printed on stderr.
    Pty,
    /// Output written to a file; no input.
    File {
        path: PathBuf,
        /// `append=on`: keep what the file holds; off (QEMU's default) truncates it first.
        append: bool,
    },
    /// A Unix socket: listen (`server`) or connect. With `wait`, the VM
    /// does not start until a client connects.
    Socket {
        path: PathBuf,
        server: bool,
        wait: bool,
    },
    /// A front end of `VmConfig::muxes[N]`.
    MuxPort(usize),
    /// A TCP socket (`socket,host=H,port=P`), as `Socket` otherwise.
    Tcp {
        host: String,
        port: u16,
        server: bool,
        wait: bool,
    },
}
