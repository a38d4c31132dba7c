//! `microvm clone-server`: one process reads and checks a snapshot once (header, CRC,
//! decoded state, the machine against the command line, the memory file open), then
//! starts clones of it on request over a Unix socket. Each clone is a process of its
//! own, forked from the server after that one-time work, so a clone only makes the KVM
//! calls, maps the memory file MAP_PRIVATE and starts its devices; it inherits the
//! decoded state copy-on-write instead of reading it again.
//!
//! The server never starts a thread: `fork` copies only the calling thread, and a
//! clone's threads (vCPUs, virtio) start in the clone, under their seccomp filters, after
//! the fork. `microvm clone SOCKET ARGS...` is the client (`client.rs`); the protocol
//! is in docs/snapshot.md ("Clones").

mod child;
mod client;
mod pages;

use crate::entry::ExitCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use vmm::snapshot::LoadedSnapshot;
use vmm::Vm;

pub const SERVER_USAGE: &str =
    "usage: microvm clone-server --snapshot FILE[,offset=N] --listen SOCKET [-- MICROVM-OPTIONS...]";

/// The longest request line the server reads: a request is a few options.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CloneServerError {
    #[error("{SERVER_USAGE}")]
    Usage,
    #[error("the machine's command line: {0}")]
    Args(#[from] cli::args::ArgsError),
    #[error("the machine's command line must describe a VM to run, not -help or -version")]
    NotARun,
    #[error("{0} is not for clones: the clone server starts each clone itself")]
    Refused(&'static str),
    #[error(transparent)]
    Vm(#[from] vmm::Error),
    #[error(transparent)]
    Snapshot(#[from] vmm::snapshot::SnapshotError),
    #[error("cannot listen on {}: {source}", .path.display())]
    Listen { path: PathBuf, source: std::io::Error },
    #[error("cannot start a clone: {0}")]
    Fork(#[source] child::ForkError),
    #[error("the server has {0} threads: it must fork with one")]
    Threads(usize),
    #[error("cannot {what}: {source}")]
    Sys { what: &'static str, source: std::io::Error },
}

/// `microvm clone-server ...`, `microvm clone ...` and `microvm snapshot-pages ...`: the exit status, or `None` when
/// `argv` is not one of them.
pub fn dispatch(argv: &[String]) -> Option<ExitCode> {
    match argv.first().map(String::as_str) {
        Some("clone-server") => Some(match serve(&argv[1..]) {
            Ok(code) => code,
            Err(e) => crate::fail(&format!("clone-server: {e}")),
        }),
        Some("clone") => Some(client::main(&argv[1..])),
        Some("snapshot-pages") => Some(pages::main(&argv[1..])),
        _ => None,
    }
}

/// The server's options: the snapshot, the socket, the machine's own options.
struct ServerArgs {
    snapshot: String,
    listen: PathBuf,
    machine: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<ServerArgs, CloneServerError> {
    let (mut snapshot, mut listen) = (None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--snapshot" => snapshot = Some(it.next().ok_or(CloneServerError::Usage)?.clone()),
            "--listen" => listen = Some(PathBuf::from(it.next().ok_or(CloneServerError::Usage)?)),
            "--" => break,
            _ => return Err(CloneServerError::Usage),
        }
    }
    let machine = it.cloned().collect();
    match (snapshot, listen) {
        (Some(snapshot), Some(listen)) => Ok(ServerArgs { snapshot, listen, machine }),
        _ => Err(CloneServerError::Usage),
    }
}

/// What every clone starts from: the machine's options and the snapshot, read once.
pub(crate) struct Template {
    /// The machine's options with `-incoming file:SNAPSHOT` appended, parsed once; each
    /// clone takes its copy and adds its request's options.
    pub(crate) options: Option<cli::args::Partial>,
    /// The machine those options describe, for a waiting clone to prepare its VM with.
    pub(crate) config: vmm::config::VmConfig,
    /// Taken by the clone after the fork (the server keeps its own copy).
    pub(crate) snapshot: Option<LoadedSnapshot>,
    /// `MICROVM_REPORT_START_TIME=1` (or `--report-start-time` among the machine's
    /// options): each clone prints its steps' CPU when it ends.
    pub(crate) report_start_time: bool,
}

fn serve(args: &[String]) -> Result<ExitCode, CloneServerError> {
    let ServerArgs { snapshot, listen, machine } = parse_args(args)?;
    let mut argv = machine;
    argv.extend(["-incoming".to_string(), format!("file:{snapshot}")]);
    let launch = match cli::args::parse(argv.clone())? {
        cli::args::Command::Run(launch) => launch,
        _ => return Err(CloneServerError::NotARun),
    };
    child::refuse_process_options(&launch)?;
    let mut loaded = Vm::load_incoming(&launch.vm)?.ok_or(CloneServerError::NotARun)?;
    // Once for every clone: the CPU features and TSC rate the guest needs are this host's.
    vmm::snapshot::check_this_host(&loaded.snapshot)?;
    loaded.host_checked = true;
    let mut options = cli::args::Partial::default();
    if options.add(argv)?.is_some() {
        return Err(CloneServerError::NotARun);
    }
    let report_start_time =
        launch.vm.report_start_time || std::env::var_os(crate::REPORT_START_TIME_ENV).is_some_and(|v| v == "1");
    let mut template =
        Template { options: Some(options), config: launch.vm, snapshot: Some(loaded), report_start_time };
    let threads = thread_count();
    if threads != 1 {
        return Err(CloneServerError::Threads(threads));
    }
    // The clones are reaped by the kernel: the server never waits for them.
    // SAFETY: setting a signal's disposition to SIG_IGN has no other effect.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let _ = std::fs::remove_file(&listen);
    let listener =
        UnixListener::bind(&listen).map_err(|source| CloneServerError::Listen { path: listen.clone(), source })?;
    // The first clone waits, its machine made, before the server says it listens.
    let mut waiting = match child::fork_waiting(&mut template, &[listener_fd(&listener)], None) {
        child::Forked::Waiting(w) => Some(w),
        child::Forked::Clone(code) => return Ok(code),
        child::Forked::Failed(what) => return Err(CloneServerError::Fork(what)),
    };
    // For scripts: the snapshot is read and the socket accepts requests.
    println!("clone-server: listening on {}", listen.display());
    let _ = std::io::stdout().flush();
    loop {
        let (stream, _) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(CloneServerError::Sys { what: "accept a connection", source }),
        };
        // One connection at a time: a clone forked now inherits only this one, and closes it.
        if let Served::Clone(code) = serve_connection(stream, &listener, &mut template, &mut waiting) {
            return Ok(code);
        }
    }
}

/// Which process returns from serving a connection.
enum Served {
    /// The server: the client hung up, or asked to stop.
    Server,
    /// A clone, after its VM ended: the process's exit status.
    Clone(ExitCode),
}

fn serve_connection(
    stream: UnixStream,
    listener: &UnixListener,
    template: &mut Template,
    waiting: &mut Option<child::Waiting>,
) -> Served {
    let Ok(read_half) = stream.try_clone() else { return Served::Server };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let close = [listener_fd(listener), fd_of(reader.get_ref()), fd_of(&writer)];
    loop {
        let mut line = String::new();
        match std::io::Read::take(&mut reader, MAX_REQUEST).read_line(&mut line) {
            Ok(0) | Err(_) => return Served::Server,
            Ok(_) => {}
        }
        let (answer, running) = match parse_request(&line) {
            Ok(Request::Clone(extra)) => match start_clone(template, waiting, &extra, &close) {
                Ok(started) => started,
                Err(code) => return Served::Clone(code),
            },
            Err(error) => (json!({ "error": error.to_string() }), None),
        };
        let answered = writeln!(writer, "{answer}").is_ok();
        // The next clone, which makes its VM once this one's set-up is over.
        if waiting.is_none() {
            match child::fork_waiting(template, &close, running) {
                child::Forked::Waiting(w) => *waiting = Some(w),
                child::Forked::Clone(code) => return Served::Clone(code),
                // The next request forks again, and answers this error if it persists.
                child::Forked::Failed(what) => log::warn!("clone-server: {what}"),
            }
        }
        if !answered {
            return Served::Server;
        }
    }
}

/// Starts a clone with `extra` options: the waiting one, or a new one when there is none
/// or it has ended. The answer and the started clone's running pipe, or in a clone its
/// exit status.
fn start_clone(
    template: &mut Template,
    waiting: &mut Option<child::Waiting>,
    extra: &[String],
    close: &[i32],
) -> Result<(Value, Option<std::fs::File>), ExitCode> {
    for _ in 0..2 {
        let next = match waiting.take() {
            Some(w) => w,
            None => match child::fork_waiting(template, close, None) {
                child::Forked::Waiting(w) => w,
                child::Forked::Clone(code) => return Err(code),
                child::Forked::Failed(error) => return Ok((json!({ "error": error.to_string() }), None)),
            },
        };
        match child::start(next, extra) {
            child::Started::Ready { pid, took, running } => {
                return Ok((json!({ "pid": pid, "took-us": took.as_micros() as u64 }), Some(running)))
            }
            child::Started::Failed(error) => return Ok((json!({ "error": error.to_string() }), None)),
            // Killed while it waited: once more with a new one.
            child::Started::Gone => continue,
        }
    }
    Ok((json!({ "error": "the clone ended before it was asked for" }), None))
}

/// A request: today only "start a clone with these extra options".
enum Request {
    Clone(Vec<String>),
}

/// Why a request line is refused: its text is the answer's `"error"`.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("not a JSON request: {0}")]
    Json(#[source] serde_json::Error),
    #[error("a request is a JSON object")]
    NotAnObject,
    /// The member's name, as the client sent it.
    #[error("unknown member \"{0}\"")]
    UnknownMember(String),
    #[error("\"args\" must be an array of strings")]
    Args,
}

fn parse_request(line: &str) -> Result<Request, RequestError> {
    let value: Value = serde_json::from_str(line.trim()).map_err(RequestError::Json)?;
    let Some(object) = value.as_object() else { return Err(RequestError::NotAnObject) };
    if let Some(key) = object.keys().find(|k| *k != "args") {
        return Err(RequestError::UnknownMember(key.clone()));
    }
    let args = match object.get("args") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            items.iter().map(|a| a.as_str().map(str::to_string).ok_or(RequestError::Args)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(RequestError::Args),
    };
    Ok(Request::Clone(args))
}

fn fd_of(f: &impl std::os::fd::AsRawFd) -> i32 {
    f.as_raw_fd()
}

fn listener_fd(l: &UnixListener) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(l)
}

/// How many threads this process has (`/proc/self/task`).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[cfg(test)]
mod tests {
    use super::{parse_request, Request, RequestError};
    use std::error::Error;

    #[test]
    fn a_request_is_an_object_with_args_strings_and_each_refusal_says_why() {
        let Ok(Request::Clone(args)) = parse_request("{\"args\": [\"-S\", \"-m\"]}\n") else { panic!() };
        assert_eq!(args, ["-S", "-m"]);
        let Ok(Request::Clone(args)) = parse_request("{}") else { panic!() };
        assert!(args.is_empty());
        // The answers' texts, as before they were typed; JSON's own error stays its source.
        let e = parse_request("not json").err().unwrap();
        assert!(matches!(e, RequestError::Json(_)) && e.source().is_some(), "{e:?}");
        assert!(e.to_string().starts_with("not a JSON request: expected"), "{e}");
        let refused = |line: &str| parse_request(line).err().unwrap().to_string();
        assert_eq!(refused("[1]"), "a request is a JSON object");
        assert_eq!(refused("{\"argv\": []}"), "unknown member \"argv\"");
        assert_eq!(refused("{\"args\": [1]}"), "\"args\" must be an array of strings");
        assert_eq!(refused("{\"args\": \"-S\"}"), "\"args\" must be an array of strings");
    }
}
