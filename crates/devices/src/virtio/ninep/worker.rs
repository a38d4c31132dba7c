//! The 9p server's own thread. The device (on the shared virtio thread) copies each request
//! out of guest memory and hands it here; this thread alone touches the shared folder, so
//! it alone is put under Landlock (per thread in Linux) and a seccomp list of file calls.
//! The device waits for each answer, so a paused virtio thread leaves this one idle too.

use super::confine::{self, Refusal};
use super::creds::{self, AsOwner, Creds};
use super::mapped::Mapped;
use super::nodes::{self, How};
use super::paths::FidPaths;
use std::io::Cursor;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

/// The largest 9P message the server takes or makes (the `p9` crate's msize: 64 KiB of
/// data plus headers). Larger requests are cut here, as the server would cut them.
pub const MAX_MESSAGE: usize = 64 * 1024 + 24;

#[derive(Debug, thiserror::Error)]
pub enum NinepError {
    #[error("9p share {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("9p share {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("9p share {path}: cannot start the 9p server: {source}")]
    Server {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("9p share {path}: security_model=passthrough: cannot give the 9p thread a umask of its own: {source}")]
    Umask {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("9p share {path}: landlock: {source}")]
    Landlock {
        path: PathBuf,
        #[source]
        source: landlock::RulesetError,
    },
}

/// QEMU's `security_model=`: whose files the guest creates are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityModel {
    /// microvm's user's (QEMU's `none`).
    #[default]
    None,
    /// The creating guest user's (`creds.rs`).
    Passthrough,
    /// microvm's user's, the guest's owners and modes kept in xattrs (`mapped.rs`).
    MappedXattr,
}

/// Answers requests: the confinement checks, then the `p9` server, or `nodes.rs` for what
/// the server refuses.
pub struct Responder {
    server: p9::Server,
    read_only: bool,
    /// Each fid's path, for what microvm does on a fid's file itself.
    paths: FidPaths,
    /// With passthrough: the guest user of each fid.
    creds: Option<Creds>,
    /// With mapped-xattr: the fids' users.
    mapped: Option<Mapped>,
}

impl Responder {
    /// A server rooted at `path`, which must be a directory.
    pub fn new(path: &Path, read_only: bool) -> Result<Responder, NinepError> {
        Responder::with_model(path, read_only, SecurityModel::None)
    }

    /// The same, creating files as `model` says.
    pub fn with_model(path: &Path, read_only: bool, model: SecurityModel) -> Result<Responder, NinepError> {
        let meta = std::fs::metadata(path).map_err(|source| NinepError::Open { path: path.into(), source })?;
        if !meta.is_dir() {
            return Err(NinepError::NotADirectory { path: path.into() });
        }
        // No id maps: the guest sees the host's numbers (security_model=none/passthrough).
        let server = p9::Server::new(path, Default::default(), Default::default())
            .map_err(|source| NinepError::Server { path: path.into(), source })?;
        let creds = (model == SecurityModel::Passthrough).then(Creds::default);
        let mapped = (model == SecurityModel::MappedXattr).then(Mapped::default);
        Ok(Responder { server, read_only, paths: FidPaths::new(open_path(path)?), creds, mapped })
    }

    /// The answer to one request (never empty: what the server cannot frame is an Rlerror).
    pub fn answer(&mut self, request: &[u8]) -> Vec<u8> {
        let tag = confine::tag_of(request);
        if let Err(refusal) = confine::check(request, self.read_only) {
            return confine::rlerror(tag, refusal.errno());
        }
        let answer = match self.answer_here(request) {
            Some(answer) => answer,
            None if self.mapped.is_some() => self.answer_mapped(request, tag),
            None => self.answer_server(request, tag),
        };
        self.paths.follow(request, &answer);
        answer
    }

    /// What microvm answers in the server's place (`nodes.rs`), if `request` is one.
    fn answer_here(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        let tag = confine::tag_of(request);
        if let Some(errno) = nodes::refuse_special(&self.paths, request) {
            return Some(confine::rlerror(tag, errno));
        }
        if let Some(mapped) = &self.mapped {
            if nodes::is_creation(request) {
                let uid = mapped.creds.creator(request).map(|o| o.uid);
                return Some(nodes::create(&self.paths, How::Mapped { uid }, request));
            }
            return nodes::readlink_mapped(&self.paths, request);
        }
        if !nodes::is_creation(request) {
            return None;
        }
        let owner = self.creds.as_ref().and_then(|c| c.creator(request));
        Some(match owner.map(AsOwner::take).transpose() {
            Ok(_as_owner) => nodes::create(&self.paths, How::Real, request),
            Err(errno) => confine::rlerror(tag, errno),
        })
    }

    /// none and passthrough: the server's answer, made as the creating guest user.
    fn answer_server(&mut self, request: &[u8], tag: u16) -> Vec<u8> {
        let owner = self.creds.as_ref().and_then(|c| c.creator(request));
        let as_owner = match owner.map(AsOwner::take).transpose() {
            Ok(guard) => guard,
            Err(errno) => return confine::rlerror(tag, errno),
        };
        let mut out = Vec::new();
        let answered = self.server.handle_message(&mut Cursor::new(request), &mut out);
        drop(as_owner);
        match answered {
            Ok(()) if !out.is_empty() => {
                if let Some(creds) = &mut self.creds {
                    creds.observe(request, &out);
                }
                out
            }
            _ => confine::rlerror(tag, Refusal::Malformed.errno()),
        }
    }
}

impl Responder {
    /// mapped-xattr: the request as `mapped.rs` rewrites it, then its credential part.
    fn answer_mapped(&mut self, request: &[u8], tag: u16) -> Vec<u8> {
        let mut rewritten = request.to_vec();
        let Some(mapped) = self.mapped.as_mut() else { return confine::rlerror(tag, Refusal::Malformed.errno()) };
        let pending = match mapped.before(&self.paths, &mut rewritten) {
            Ok(p) => p,
            Err(errno) => return confine::rlerror(tag, errno),
        };
        let mut out = Vec::new();
        match self.server.handle_message(&mut Cursor::new(&rewritten), &mut out) {
            Ok(()) if !out.is_empty() => mapped.after(&self.paths, &rewritten, pending, out),
            _ => confine::rlerror(tag, Refusal::Malformed.errno()),
        }
    }
}

/// The device's end: one request out, its answer back.
pub struct Link {
    requests: SyncSender<Vec<u8>>,
    replies: Receiver<Vec<u8>>,
}

impl Link {
    /// The answer to `request`; `None` once the worker has ended.
    pub fn ask(&self, request: Vec<u8>) -> Option<Vec<u8>> {
        self.requests.send(request).ok()?;
        self.replies.recv().ok()
    }
}

/// The worker thread's body: serves requests until the device (its `Link`) is dropped.
pub struct Worker {
    responder: Responder,
    share: OwnedFd,
    path: PathBuf,
    read_only: bool,
    requests: Receiver<Vec<u8>>,
    replies: SyncSender<Vec<u8>>,
    model: SecurityModel,
}

/// Opens the share and its server; the worker is started by the caller (the VMM under its
/// seccomp filter, tests on a plain thread).
pub fn pair(path: &Path, read_only: bool) -> Result<(Link, Worker), NinepError> {
    pair_with(path, read_only, SecurityModel::None)
}

/// [`pair`] with a security model.
pub fn pair_with(path: &Path, read_only: bool, model: SecurityModel) -> Result<(Link, Worker), NinepError> {
    let responder = Responder::with_model(path, read_only, model)?;
    let share = open_path(path)?;
    let (requests, request_rx) = mpsc::sync_channel(1);
    let (reply_tx, replies) = mpsc::sync_channel(1);
    let worker =
        Worker { responder, share, path: path.into(), read_only, requests: request_rx, replies: reply_tx, model };
    Ok((Link { requests, replies }, worker))
}

/// An O_PATH fd of the share: Landlock's rule names the directory by it, so the rule holds
/// whatever the path resolves to later.
fn open_path(path: &Path) -> Result<OwnedFd, NinepError> {
    let open_error = |source| NinepError::Open { path: path.into(), source };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| open_error(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    // SAFETY: a NUL-terminated path; the result is checked and owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(open_error(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Worker {
    /// Confines the calling thread to the share (Landlock), then serves until the device
    /// is gone. A kernel without Landlock is no error: the name checks and the O_NOFOLLOW
    /// lookups still stand (one line says so).
    pub fn run(mut self) -> Result<(), NinepError> {
        if self.model == SecurityModel::Passthrough {
            creds::own_umask().map_err(|source| NinepError::Umask { path: self.path.clone(), source })?;
        }
        self.confine()?;
        while let Ok(request) = self.requests.recv() {
            if self.replies.send(self.responder.answer(&request)).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Restricts this thread's file access to beneath the share, reads only when read-only.
    pub(crate) fn confine(&self) -> Result<(), NinepError> {
        use landlock::{Access, AccessFs, PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI};
        let abi = ABI::V5;
        let allowed = if self.read_only { AccessFs::from_read(abi) } else { AccessFs::from_all(abi) };
        let error = |source| NinepError::Landlock { path: self.path.clone(), source };
        let status = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))
            .map_err(error)?
            .create()
            .map_err(error)?
            .add_rule(PathBeneath::new(&self.share, allowed))
            .map_err(error)?
            .restrict_self()
            .map_err(error)?;
        if status.ruleset == RulesetStatus::NotEnforced {
            log::warn!(
                "9p share {}: this kernel has no Landlock; the 9p thread is confined by its checks only",
                self.path.display()
            );
        }
        Ok(())
    }
}
