//! The API socket before boot: a poll(2) loop over the listener and its clients (no
//! threads, nothing else runs yet) that answers each request from the pre-boot
//! configuration until `InstanceStart` builds the VM. Then the listener and every open
//! connection, with whatever they still hold, go to the running VM's event loop.

use super::preboot::{LoggerHook, Outcome, Preboot};
use fc_api::{Connection, Response};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use vmm::api::RequestCount;

/// Clients served at once before boot; more are closed on accept.
const MAX_CLIENTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("Failed to open the API socket at {path}: {source}")]
    Bind { path: String, source: io::Error },
    #[error("{0} exists and is not a socket; not replacing it")]
    NotASocket(String),
    #[error("API socket: {what}: {source}")]
    Io { what: &'static str, source: io::Error },
}

/// Listens on `path` (non-blocking). A socket left by an earlier run is replaced; any
/// other file there is not.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => return Err(ServerError::NotASocket(shown)),
        Err(_) => {}
    }
    // Bound under a temporary name and renamed into place once it listens: the path
    // appears only when a connect to it can succeed. Clients (Firecracker's SDKs, its
    // getting-started guide's scripts) wait for the file and then connect at once; bound
    // in place, a client that came between bind(2) and listen(2) was refused.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|source| ServerError::Bind { path: shown.clone(), source })?;
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ServerError::Bind { path: shown, source });
    }
    listener.set_nonblocking(true).map_err(|source| ServerError::Io { what: "non-blocking listener", source })?;
    Ok(listener)
}

/// Serves until `InstanceStart` succeeds: `start` builds the VM from the configuration
/// (its `Err`'s text is the 400's fault message, and serving goes on). Returns the VM and the
/// open connections (the starter's 204 queued on its own).
pub fn serve_preboot<T, E: std::fmt::Display>(
    listener: &UnixListener,
    max_payload: usize,
    preboot: &mut Preboot,
    logger: LoggerHook,
    mut start: impl FnMut(&mut Preboot) -> Result<T, E>,
) -> Result<(T, Vec<Connection<UnixStream>>), ServerError> {
    let mut clients: Vec<Connection<UnixStream>> = Vec::new();
    loop {
        let mut fds = Vec::with_capacity(clients.len() + 1);
        fds.push(libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        for conn in &clients {
            let events = if conn.wants_write() { libc::POLLIN | libc::POLLOUT } else { libc::POLLIN };
            fds.push(libc::pollfd { fd: conn.stream().as_raw_fd(), events, revents: 0 });
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that outlives the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ServerError::Io { what: "poll", source: e });
        }
        // Client events first: accepting shifts no index of `fds` we still read.
        let mut index = 0;
        let mut slot = 1;
        while index < clients.len() {
            let revents = fds[slot].revents;
            slot += 1;
            let conn = &mut clients[index];
            let mut alive = true;
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && conn.on_readable().is_err() {
                alive = false;
            }
            while alive {
                let Some(request) = conn.next_request() else { break };
                let counted = request.as_ref().ok().and_then(RequestCount::of);
                let answer = match request.map(|r| preboot.handle(r, logger)) {
                    Err(answer) | Ok(Outcome::Answer(answer)) => answer,
                    Ok(Outcome::Start) => match start(preboot) {
                        Ok(vm) => {
                            counted.inspect(|c| c.answered(204));
                            if conn.respond(&Response::no_content()).is_err() {
                                clients.swap_remove(index);
                            }
                            clients.retain(|c| !c.is_done());
                            return Ok((vm, clients));
                        }
                        Err(message) => {
                            unblock_stop_signals();
                            Response::bad_request(message)
                        }
                    },
                };
                counted.inspect(|c| c.answered(answer.status));
                alive = conn.respond(&answer).is_ok();
            }
            alive = alive && conn.flush().is_ok() && !conn.is_done();
            if alive {
                index += 1;
            } else {
                clients.remove(index);
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            accept_all(listener, &mut clients, max_payload);
        }
    }
}

fn accept_all(listener: &UnixListener, clients: &mut Vec<Connection<UnixStream>>, max_payload: usize) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if clients.len() >= MAX_CLIENTS {
                    // Client libraries keep idle keep-alive connections (Python's pools
                    // up to 20): the oldest idle one goes, else the new one is refused.
                    match clients.iter().position(Connection::is_idle) {
                        Some(oldest) => drop(clients.remove(oldest)),
                        None => continue,
                    }
                }
                if stream.set_nonblocking(true).is_ok() {
                    clients.push(Connection::new(stream, max_payload));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    log::warn!("API: cannot accept a client: {e}");
                }
                return;
            }
        }
    }
}

/// A failed start may have blocked SIGINT/SIGTERM/SIGHUP for the VM's signalfd (the vmm
/// does that first): unblock them, or the waiting process could no longer be stopped.
fn unblock_stop_signals() {
    // SAFETY: sigemptyset/sigaddset write only the local set; pthread_sigmask reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}
