//! A server chardev's listening socket: Unix (`path=`) or TCP (`host=,port=`).

use super::ChardevError;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

pub(super) enum Listener {
    Unix { path: PathBuf, listener: UnixListener },
    Tcp { addr: String, listener: TcpListener },
}

impl Listener {
    /// Binds a Unix socket at `path`, replacing a stale socket left there (as
    /// QEMU does) but nothing else.
    pub(super) fn unix(id: &str, path: &Path) -> Result<Listener, ChardevError> {
        let listen_err = |source| ChardevError::Listen { id: id.into(), path: path.to_path_buf(), source };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(ChardevError::NotASocket { id: id.into(), path: path.to_path_buf() });
            }
            std::fs::remove_file(path).map_err(listen_err)?;
        }
        let listener = UnixListener::bind(path).map_err(listen_err)?;
        Ok(Listener::Unix { path: path.to_path_buf(), listener })
    }

    /// Listens on TCP `host:port` (std sets SO_REUSEADDR, as QEMU does).
    pub(super) fn tcp(id: &str, host: &str, port: u16) -> Result<Listener, ChardevError> {
        let addr = tcp_addr(host, port);
        let listener = TcpListener::bind(&addr).map_err(|source| ChardevError::TcpListen {
            id: id.into(),
            addr: addr.clone(),
            source,
        })?;
        Ok(Listener::Tcp { addr, listener })
    }

    /// QEMU's way of naming it: `unix:PATH`, `tcp:HOST:PORT`.
    pub(super) fn describe(&self) -> String {
        match self {
            Listener::Unix { path, .. } => format!("unix:{}", path.display()),
            Listener::Tcp { addr, .. } => format!("tcp:{addr}"),
        }
    }

    pub(super) fn accept(&self) -> io::Result<OwnedFd> {
        Ok(match self {
            Listener::Unix { listener, .. } => listener.accept()?.0.into(),
            Listener::Tcp { listener, .. } => {
                let (stream, _) = listener.accept()?;
                // Console bytes should leave at once, not wait for Nagle.
                let _ = stream.set_nodelay(true);
                stream.into()
            }
        })
    }

    pub(super) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Unix { listener, .. } => listener.set_nonblocking(true),
            Listener::Tcp { listener, .. } => listener.set_nonblocking(true),
        }
    }

    pub(super) fn raw(&self) -> RawFd {
        match self {
            Listener::Unix { listener, .. } => listener.as_raw_fd(),
            Listener::Tcp { listener, .. } => listener.as_raw_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `host:port` for std's resolver; an IPv6 literal gets its brackets.
pub(super) fn tcp_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl super::Chardev {
    /// A server takes its next client, if it has none (one at a time, as QEMU).
    pub(super) fn accept(&mut self) {
        let super::Kind::Server { listener } = &self.kind else { return };
        if self.input.is_some() || self.output.is_some() {
            return;
        }
        match listener.accept().and_then(super::socket_endpoints) {
            Ok((input, output)) => {
                log::info!("chardev '{}': client connected to {}", self.label, listener.describe());
                self.input = Some(input);
                self.output = Some(output);
                self.input_ended = false;
                self.output_ended = false;
                self.clients += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => log::warn!("chardev '{}': cannot accept a client on {}: {e}", self.label, listener.describe()),
        }
    }
}
