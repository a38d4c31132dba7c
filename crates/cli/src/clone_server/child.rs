//! One clone: forked from the server before its request (the waiting clone), it makes
//! the machine's half of its VM (`Vm::prepare_restore`: the KVM VM, guest memory mapped
//! from the snapshot, interrupt controllers, vCPUs) once the previous clone's set-up is
//! over (or at once when its request comes first), then waits for the request's options
//! on a pipe. With them it adds the request's options to the machine's (read
//! once by the server), builds the rest of its VM (`Vm::new_restored`: devices, the saved
//! state loaded), tells the server through a second pipe that it is ready (or why not),
//! and runs until its VM ends. The server waits for that word, so its answer means
//! "restored, and running or paused as the options say".

use super::{CloneServerError, Template};
use crate::entry::ExitCode;
use cli::args::{Command, Launch};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use vmm::startup::StartInstant;
use vmm::{PreparedVm, Vm};

/// The first byte a clone sends when its VM is built.
const READY: u8 = b'0';
/// The first byte a clone sends before its error line.
const FAILED: u8 = b'1';
/// The first byte of a request sent to a waiting clone (then the options as JSON); a
/// waiting clone that reads nothing (the server ended) exits.
const REQUEST: u8 = b'R';

/// A clone forked ahead of its request: the server's ends of its pipes.
pub(super) struct Waiting {
    pid: i32,
    request: File,
    report: File,
    /// Its end of file: the clone's set-up is over (`Vm::close_once_running`).
    running: File,
}

/// What `fork_waiting` returned in which process.
pub(super) enum Forked {
    /// In the server.
    Waiting(Waiting),
    /// In the clone, once its VM has ended (or it was never asked for): the exit status.
    Clone(ExitCode),
    /// In the server: no clone could be forked.
    Failed(ForkError),
}

/// Why the server could not fork a clone.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("cannot create a pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("cannot fork: {0}")]
    Fork(#[source] std::io::Error),
}

/// Why an asked-for clone is not running.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    /// The clone's own one-line error, as it wrote it on its report pipe before it
    /// exited: text from another process, so kept as text.
    #[error("{0}")]
    Reported(String),
    #[error("the clone ended before it was ready")]
    Ended,
}

/// What `start` returned.
pub(super) enum Started {
    /// The clone's pid, request → ready, and the pipe whose end of file says its set-up
    /// is over (for the next clone to wait on).
    Ready { pid: i32, took: Duration, running: File },
    /// Why not (it has exited).
    Failed(StartError),
    /// The waiting clone had ended before the request reached it.
    Gone,
}

/// Options that concern the process, not the VM: a clone is started by the server, so
/// they are refused in the machine's options and in requests alike.
pub(super) fn refuse_process_options(launch: &Launch) -> Result<(), CloneServerError> {
    if launch.daemonize {
        return Err(CloneServerError::Refused("-daemonize"));
    }
    if launch.pidfile.is_some() {
        return Err(CloneServerError::Refused("-pidfile (the server answers with the pid)"));
    }
    if launch.jail.is_some() {
        return Err(CloneServerError::Refused("-run-with chroot=/user="));
    }
    Ok(())
}

fn pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(read_end), File::from(write_end)))
}

/// Forks the next clone, which prepares its machine and waits for a request; `close` are
/// the server's descriptors the clone must not keep (the listening socket, the client's
/// connection). `after`: the previous clone's running pipe, whose end of file the new one
/// waits for (or for a request) before it makes its VM, so the two do not compete for the
/// CPU while the previous one starts.
pub(super) fn fork_waiting(template: &mut Template, close: &[i32], after: Option<File>) -> Forked {
    let pipes = pipe().and_then(|a| Ok((a, pipe()?, pipe()?)));
    let ((request_read, request_write), (report_read, report_write), (running_read, running_write)) = match pipes {
        Ok(pipes) => pipes,
        Err(e) => return Forked::Failed(ForkError::Pipe(e)),
    };
    // SAFETY: the server has one thread (checked before it listens, and it starts none),
    // so the child is a complete copy and no lock can be held by a thread that is gone.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Forked::Failed(ForkError::Fork(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop((request_write, report_read, running_read));
        for &fd in close {
            // SAFETY: these are the server's descriptors, which this process never uses;
            // the Rust objects owning them in this copy are never used either.
            unsafe { libc::close(fd) };
        }
        let pipes = ClonePipes { request: request_read, report: report_write, running: running_write };
        return Forked::Clone(wait_for_request(template, pipes, after));
    }
    // Closed here at once, so that the clone's exit is the report's end of file, and no
    // later clone inherits them.
    drop((request_read, report_write, running_write, after));
    Forked::Waiting(Waiting { pid, request: request_write, report: report_read, running: running_read })
}

/// The clone's ends of its pipes.
struct ClonePipes {
    request: File,
    report: File,
    running: File,
}

/// Hands `extra` to the waiting clone and waits until it is running (or failed).
pub(super) fn start(waiting: Waiting, extra: &[String]) -> Started {
    let Waiting { pid, mut request, report, running } = waiting;
    let sent = Instant::now();
    let mut message = vec![REQUEST];
    message.extend(serde_json::to_vec(extra).unwrap_or_default());
    if request.write_all(&message).is_err() {
        return Started::Gone;
    }
    // The end of file tells the clone the request is whole.
    drop(request);
    let mut report_bytes = Vec::new();
    let _ = { report }.read_to_end(&mut report_bytes);
    let took = sent.elapsed();
    match report_bytes.split_first() {
        Some((&READY, _)) => Started::Ready { pid, took, running },
        Some((&FAILED, line)) => {
            Started::Failed(StartError::Reported(String::from_utf8_lossy(line).trim_end().to_owned()))
        }
        _ => Started::Failed(StartError::Ended),
    }
}

/// The waiting clone's life: waits for the previous clone's set-up (or a request),
/// prepares its machine, waits for the request, builds the rest, runs.
fn wait_for_request(template: &mut Template, pipes: ClonePipes, after: Option<File>) -> ExitCode {
    let ClonePipes { mut request, report: server, running } = pipes;
    // Its own session: a signal meant for the server's terminal or process group does
    // not reach the clones, and the clone's SIGCHLD is its own again.
    // SAFETY: setsid and signal have no memory-safety preconditions; this child of the
    // server is not a process group leader.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    if template.report_start_time {
        vmm::startup::record_steps();
        vmm::startup::step("fork");
    }
    if let Some(after) = after {
        if server_gone(&after, &request) {
            return ExitCode::SUCCESS;
        }
    }
    // A failure here is not reported yet: the request's build makes the machine again
    // and reports what fails then.
    let prepared = template.snapshot.as_ref().and_then(|s| Vm::prepare_restore(&template.config, s).ok());
    let mut message = Vec::new();
    let _ = request.read_to_end(&mut message);
    let extra: Vec<String> = match message.split_first() {
        Some((&REQUEST, json)) => serde_json::from_slice(json).unwrap_or_default(),
        // The server ended without a request: nothing to do.
        _ => return ExitCode::SUCCESS,
    };
    drop(request);
    vmm::startup::step("waiting for the request");
    vmm::startup::count_cpu_from_now();
    run_clone(template, &extra, (server, running), StartInstant::now(), prepared)
}

/// Blocks until the previous clone's running pipe (`after`) is at its end of file or the
/// request pipe is readable; true when the server ended instead (the request pipe hung up
/// with nothing in it), so the clone need not make a VM only to exit.
fn server_gone(after: &File, request: &File) -> bool {
    use std::os::fd::AsRawFd;
    let mut fds = [after, request].map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    loop {
        // SAFETY: two valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            let asked = fds[1].revents;
            return asked & libc::POLLHUP != 0 && asked & libc::POLLIN == 0;
        }
    }
}

/// The clone's life once asked for: builds its VM, reports, runs it.
fn run_clone(
    template: &mut Template,
    extra: &[String],
    (mut server, running): (File, File),
    asked: StartInstant,
    prepared: Option<PreparedVm>,
) -> ExitCode {
    let failed = |mut server: File, e: &dyn std::fmt::Display| {
        let _ = server.write_all(&[FAILED]);
        let _ = writeln!(server, "{e}");
        ExitCode::FAILURE
    };
    let Some(mut options) = template.options.take() else {
        return failed(server, &"the server's options are gone");
    };
    let command = match options.add(extra.iter().cloned()) {
        Ok(Some(done)) => Ok(done),
        Ok(None) => options.finish(),
        Err(e) => Err(e),
    };
    let launch = match command {
        Ok(Command::Run(launch)) => launch,
        Ok(_) => return failed(server, &CloneServerError::NotARun),
        Err(e) => return failed(server, &e),
    };
    if let Err(e) = refuse_process_options(&launch) {
        return failed(server, &e);
    }
    let Launch { vm: mut config, log_file, warnings, .. } = launch;
    if let Some(path) = &log_file {
        if let Err(e) = cli::logger::log_to_file(path) {
            return failed(server, &format!("-D: cannot open {}: {e}", path.display()));
        }
    }
    warnings.iter().for_each(|w| log::warn!("{w}"));
    if template.report_start_time {
        config.report_start_time = true;
    }
    if config.report_start_time {
        vmm::startup::record_steps();
        vmm::startup::step("request to command line parsed");
    }
    let Some(snapshot) = template.snapshot.take() else {
        return failed(server, &"the server's snapshot is gone");
    };
    let mut vm = match Vm::new_restored(&config, asked, snapshot, prepared) {
        Ok(vm) => vm,
        Err(e) => return failed(server, &e),
    };
    vm.close_once_running(running.into());
    let _ = server.write_all(&[READY]);
    drop(server);
    let outcome = vm.run();
    vmm::startup::step("VM dropped");
    if let Some(line) = vmm::startup::steps_line() {
        eprintln!("{line}");
    }
    crate::exit_status(outcome)
}
