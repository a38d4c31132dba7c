//! One clone: forked from the server, it parses the machine's options with the request's
//! appended, builds the VM from the snapshot the server decoded (`Vm::new_restored`),
//! tells the server through a pipe that it is ready (or why not), and runs until its VM
//! ends. The server waits for that word, so its answer means "restored, and running or
//! paused as the options say".

use super::{CloneServerError, Template};
use cli::args::{Command, Launch};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use vmm::Vm;

/// The first byte a clone sends when its VM is built.
const READY: u8 = b'0';
/// The first byte a clone sends before its error line.
const FAILED: u8 = b'1';

/// What `start` returned in which process.
pub(super) enum Started {
    /// In the clone, once its VM has ended: the exit status.
    Clone(ExitCode),
    /// In the server: the clone's pid, and fork → ready.
    Ready { pid: i32, took: Duration },
    /// In the server: the clone's one-line error (it has exited).
    Failed(String),
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

/// Forks a clone with `extra` options; `close` are the server's descriptors the clone
/// must not keep (the listening socket and the client's connection).
pub(super) fn start(template: &mut Template, extra: &[String], close: &[i32]) -> Started {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Started::Failed(format!("cannot create a pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let forked = Instant::now();
    // SAFETY: the server has one thread (checked before it listens, and it starts none),
    // so the child is a complete copy and no lock can be held by a thread that is gone.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Started::Failed(format!("cannot fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(read_end);
        for &fd in close {
            // SAFETY: these are the server's descriptors, which this process never uses;
            // the Rust objects owning them in this copy are never used either.
            unsafe { libc::close(fd) };
        }
        return Started::Clone(run_clone(template, extra, File::from(write_end), forked));
    }
    // Closed here at once, so that the clone's exit is the pipe's end of file, and no
    // later clone inherits it.
    drop(write_end);
    let mut report = Vec::new();
    let _ = File::from(read_end).read_to_end(&mut report);
    let took = forked.elapsed();
    match report.split_first() {
        Some((&READY, _)) => Started::Ready { pid, took },
        Some((&FAILED, line)) => Started::Failed(String::from_utf8_lossy(line).trim_end().to_string()),
        _ => Started::Failed("the clone ended before it was ready".into()),
    }
}

/// The clone's life: builds its VM, reports, runs it.
fn run_clone(template: &mut Template, extra: &[String], mut server: File, forked: Instant) -> ExitCode {
    // Its own session: a signal meant for the server's terminal or process group does
    // not reach the clones, and the clone's SIGCHLD is its own again.
    // SAFETY: setsid and signal have no memory-safety preconditions; this child of the
    // server is not a process group leader.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    let failed = |mut server: File, e: &dyn std::fmt::Display| {
        let _ = server.write_all(&[FAILED]);
        let _ = writeln!(server, "{e}");
        ExitCode::FAILURE
    };
    let argv = template.argv.iter().chain(extra).cloned();
    let launch = match cli::args::parse(argv) {
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
    if std::env::var_os(crate::REPORT_START_TIME_ENV).is_some_and(|v| v == "1") {
        config.report_start_time = true;
    }
    if config.report_start_time {
        vmm::startup::record_steps();
        vmm::startup::step("fork to command line parsed");
    }
    let Some(snapshot) = template.snapshot.take() else {
        return failed(server, &"the server's snapshot is gone");
    };
    let vm = match Vm::new_restored(&config, forked, snapshot) {
        Ok(vm) => vm,
        Err(e) => return failed(server, &e),
    };
    let _ = server.write_all(&[READY]);
    drop(server);
    let outcome = vm.run();
    vmm::startup::step("VM dropped");
    if let Some(line) = vmm::startup::steps_line() {
        eprintln!("{line}");
    }
    crate::exit_status(outcome)
}
