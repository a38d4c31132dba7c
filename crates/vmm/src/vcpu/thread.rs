//! The thread of one vCPU. It loops on KVM_RUN, handing port and MMIO exits to the
//! buses, and takes commands (pause, resume, stop) from the thread that owns its
//! [`VcpuHandle`], acknowledging each.
//!
//! A command is a message plus a kick: the owner sends the message, then signals the
//! thread. The signal handler sets `kvm_run.immediate_exit`, so the kick is never lost:
//! if the signal lands while the thread is in KVM_RUN, KVM_RUN returns EINTR; if it
//! lands just before the thread enters KVM_RUN, KVM sees `immediate_exit` and returns
//! EINTR at once. Either way the thread then reads its messages. No kick is repeated.

use super::guest_errors::{Access, GuestErrorLog};
use super::{Vcpu, VcpuError, VcpuState, XsaveFits, UNCLAIMED_READ};
use crate::exit::{ExitNotifier, VcpuFailure, VmExit};
use crate::signals::StopSignals;
use crate::startup::StartupClock;
use devices::bus::Bus;
use kvm_bindings::kvm_run;
use kvm_ioctls::VcpuExit;
use sandbox::{Sandbox, ThreadFailure, ThreadKind, ThreadStart};
use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::Killable;

/// Shared by all vCPU threads.
pub struct VcpuContext {
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub exit: Arc<ExitNotifier>,
    pub clock: Arc<StartupClock>,
    /// Every vCPU thread and the main thread meet here once each is under its seccomp
    /// filter, so no guest instruction runs before the whole process is confined.
    pub start_gate: Arc<Barrier>,
    pub sandbox: Arc<Sandbox>,
    /// `-d guest_errors`; `None`: unclaimed accesses are not logged.
    pub guest_errors: Option<GuestErrorLog>,
}

/// What the owner of a vCPU thread asks of it.
#[derive(Clone, Debug)]
pub enum VcpuCommand {
    /// Leave KVM_RUN and park until `Resume` or `Stop`; acknowledged with `Paused`.
    Pause,
    /// Continue (also: start, for a thread spawned parked); acknowledged with `Resumed`.
    Resume,
    /// End the thread; the acknowledgement is the thread's end (join it).
    Stop,
    /// Read the whole vCPU state, with these MSRs (only while parked); answered on the
    /// handle's state channel ([`VcpuHandle::save`]).
    Save(Arc<[u32]>),
    /// Load this state (only while parked, before the vCPU ever ran: `migrate-incoming`);
    /// answered on the state channel ([`VcpuHandle::restore`]).
    Restore(Arc<VcpuState>, XsaveFits),
}

/// A vCPU's answer to `Save` (its state) or `Restore` (`None`).
type Saved = Result<Option<Box<VcpuState>>, VcpuError>;

/// A vCPU thread's answer to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuAck {
    Paused,
    Resumed,
}

/// How a vCPU thread starts.
pub struct VcpuThreadOptions {
    /// Thread name (`vcpu0`, or QEMU's `CPU 0/KVM` with `-name debug-threads=on`).
    pub name: String,
    /// Start parked, before the first KVM_RUN, until `Resume` (`-S`).
    pub parked: bool,
}

/// The owner's side of a vCPU thread.
pub struct VcpuHandle {
    id: u8,
    commands: Sender<VcpuCommand>,
    acks: Receiver<VcpuAck>,
    saved: Receiver<Saved>,
    tid: Arc<OnceLock<i32>>,
    thread: JoinHandle<()>,
}

/// How long `thread_id` waits for a just-started thread to record its id.
const TID_TIMEOUT: Duration = Duration::from_millis(100);

/// The signal that kicks a vCPU thread out of KVM_RUN.
fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN()
}

thread_local! {
    /// This thread's `kvm_run` area, for the kick handler; null on other threads.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: `run` points to this thread's mapped kvm_run area: it is set by the
        // thread itself while its VcpuFd (which owns the mapping) is alive and cleared
        // before the VcpuFd is dropped. The handler runs on that same thread, so nothing
        // else writes the field concurrently; the write is volatile so it is not elided.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
    fence(Ordering::SeqCst);
}

/// Installs the kick handler (once per process, before any vCPU thread starts).
pub fn install_kick_handler() -> std::io::Result<()> {
    vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
        .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
}

impl Vcpu {
    /// Starts this vCPU's thread.
    pub fn spawn(self, ctx: Arc<VcpuContext>, options: VcpuThreadOptions) -> Result<VcpuHandle, VcpuError> {
        let id = self.id;
        let (commands, command_rx) = mpsc::channel();
        let (ack_tx, acks) = mpsc::channel();
        let (saved_tx, saved) = mpsc::channel();
        let tid = Arc::new(OnceLock::new());
        let thread_tid = tid.clone();
        let exit = ctx.exit.clone();
        let on_failure =
            move |failure: ThreadFailure| exit.notify(VmExit::VcpuError { vcpu: id, error: failure.into() });
        let start = ThreadStart {
            name: options.name,
            kind: ThreadKind::Vcpu,
            sandbox: ctx.sandbox.clone(),
            gate: Some(ctx.start_gate.clone()),
        };
        let thread = sandbox::spawn(start, on_failure, move || {
            // SAFETY: the gettid system call has no preconditions. The raw syscall, not
            // libc's wrapper: the static musl build resolves that one to a null weak symbol.
            let _ = thread_tid.set(unsafe { libc::syscall(libc::SYS_gettid) } as i32);
            let channels = Channels { commands: command_rx, acks: ack_tx, saved: saved_tx };
            self.thread_main(&ctx, &channels, options.parked);
        })
        .map_err(|source| VcpuError::Spawn { id, source })?;
        Ok(VcpuHandle { id, commands, acks, saved, tid, thread })
    }

    fn thread_main(mut self, ctx: &VcpuContext, channels: &Channels, parked: bool) {
        KVM_RUN.with(|cell| cell.set(self.fd.get_kvm_run()));
        if !parked || self.wait_for_resume(channels) {
            if self.id == 0 {
                ctx.clock.mark_first_run();
            }
            self.run_loop(ctx, channels);
        }
        // The mapping goes with the VcpuFd when `self` drops: the handler must not use it.
        KVM_RUN.with(|cell| cell.set(std::ptr::null_mut()));
    }

    /// Runs the guest on the calling (main) thread until it ends the VM, a device does
    /// (`ctx.exit`), the guest resets through the i8042 (`reset`) or a stop signal arrives
    /// (`signals`): the solo mode of `crate::solo`, with no thread to kick and no
    /// commands. The caller has set the guest signal mask, so a stop signal makes KVM_RUN
    /// return EINTR and then waits, blocked, in the signalfd.
    pub(crate) fn run_solo(mut self, ctx: &VcpuContext, reset: &EventFd, signals: &StopSignals) -> VmExit {
        ctx.clock.mark_first_run();
        loop {
            if let Some(outcome) = self.run_once(ctx) {
                return outcome;
            }
            // One call each, none blocking: exits to the VMM are rare here, as
            // no device but the i8042's reset port and isa-debug-exit lives on this VM.
            if let Some(sig) = signals.read() {
                return VmExit::Signal(sig);
            }
            if reset.read().is_ok() {
                return VmExit::Reset;
            }
            if let Some(outcome) = ctx.exit.reason() {
                return outcome;
            }
        }
    }

    /// Runs the guest until a `Stop`, or until the guest or KVM ends the VM.
    fn run_loop(&mut self, ctx: &VcpuContext, channels: &Channels) {
        loop {
            // Messages first: a kick only says "look at your messages".
            match channels.commands.try_recv() {
                Ok(VcpuCommand::Pause) => {
                    // Tells the guest's kvmclock it was stopped: its watchdogs do not take
                    // the pause (or a snapshot's age) for a soft lockup. EINVAL for a
                    // guest without kvmclock, which has nothing to be told.
                    if self.fd.kvmclock_ctrl().is_err() {
                        metrics::VCPU.kvmclock_ctrl_fails.inc();
                    }
                    let _ = channels.acks.send(VcpuAck::Paused);
                    if !self.wait_for_resume(channels) {
                        return;
                    }
                }
                Ok(VcpuCommand::Resume) => {
                    let _ = channels.acks.send(VcpuAck::Resumed);
                }
                // Only a parked vCPU has a state to save or load; the owner pauses first.
                Ok(VcpuCommand::Save(_) | VcpuCommand::Restore(..)) => {
                    let _ = channels.saved.send(Err(VcpuError::NotPaused { id: self.id }));
                }
                Ok(VcpuCommand::Stop) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            if let Some(outcome) = self.run_once(ctx) {
                ctx.exit.notify(outcome);
                // Park: the owner stops every thread at teardown, and a Pause sent in the
                // meantime must still be answered.
                self.park_until_stopped(channels);
                return;
            }
        }
    }

    /// One KVM_RUN and the exit it returns; `Some` when the VM must end.
    fn run_once(&mut self, ctx: &VcpuContext) -> Option<VmExit> {
        let id = self.id;
        let outcome = match self.fd.run() {
            Ok(VcpuExit::IoIn(port, data)) => {
                metrics::VCPU.exit_io_in.inc();
                if !ctx.pio.read(u64::from(port), data) {
                    data.fill(UNCLAIMED_READ);
                    unclaimed(ctx, id, Access::PortRead, u64::from(port), data);
                }
                return None;
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                metrics::VCPU.exit_io_out.inc();
                if !ctx.pio.write(u64::from(port), data) {
                    unclaimed(ctx, id, Access::PortWrite, u64::from(port), data);
                }
                return None;
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                metrics::VCPU.exit_mmio_read.inc();
                if !ctx.mmio.read(addr, data) {
                    data.fill(UNCLAIMED_READ);
                    unclaimed(ctx, id, Access::MmioRead, addr, data);
                }
                return None;
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                metrics::VCPU.exit_mmio_write.inc();
                if !ctx.mmio.write(addr, data) {
                    unclaimed(ctx, id, Access::MmioWrite, addr, data);
                }
                return None;
            }
            Ok(VcpuExit::Intr) => return None,
            // QEMU treats a triple fault as a guest reset.
            Ok(VcpuExit::Shutdown) => VmExit::Reset,
            Ok(VcpuExit::SystemEvent(kind, _)) => match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_RESET => VmExit::Reset,
                kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => VmExit::Shutdown,
                other => self.failure(VcpuFailure::SystemEvent(other)),
            },
            Ok(VcpuExit::InternalError) => self.failure(VcpuFailure::Internal),
            Ok(VcpuExit::FailEntry(reason, cpu)) => self.failure(VcpuFailure::FailEntry { reason, cpu }),
            Ok(other) => {
                let exit = format!("{other:?}");
                self.failure(VcpuFailure::UnexpectedExit(exit))
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                // A kick: clear the flag its handler set, then read the messages.
                self.fd.set_kvm_immediate_exit(0);
                return None;
            }
            Err(e) => self.failure(VcpuFailure::Run(e)),
        };
        Some(outcome)
    }
}

/// An access no device claimed: logged with `-d guest_errors`.
#[cold]
fn unclaimed(ctx: &VcpuContext, vcpu: u8, access: Access, addr: u64, data: &[u8]) {
    if let Some(log) = &ctx.guest_errors {
        log.report(vcpu, access, addr, data);
    }
}

/// The thread's ends of its channels.
struct Channels {
    commands: Receiver<VcpuCommand>,
    acks: Sender<VcpuAck>,
    saved: Sender<Saved>,
}

impl Vcpu {
    /// Parked: waits for `Resume` (true) or `Stop` (false). A `Pause` while parked is
    /// answered at once: the thread is already out of KVM_RUN. `Save` is served here.
    fn wait_for_resume(&mut self, channels: &Channels) -> bool {
        loop {
            match channels.commands.recv() {
                Ok(VcpuCommand::Resume) => {
                    let _ = channels.acks.send(VcpuAck::Resumed);
                    return true;
                }
                Ok(VcpuCommand::Pause) => {
                    let _ = channels.acks.send(VcpuAck::Paused);
                }
                Ok(VcpuCommand::Save(msrs)) => {
                    let _ = channels.saved.send(self.save_state(&msrs).map(|s| Some(Box::new(s))));
                }
                Ok(VcpuCommand::Restore(state, fits)) => {
                    let _ = channels.saved.send(self.restore_state(&state, fits).map(|()| None));
                }
                Ok(VcpuCommand::Stop) | Err(_) => return false,
            }
        }
    }

    /// After the guest ended the VM: answers pauses, ignores resumes, ends on `Stop`.
    fn park_until_stopped(&mut self, channels: &Channels) {
        loop {
            match channels.commands.recv() {
                Ok(VcpuCommand::Pause) => {
                    let _ = channels.acks.send(VcpuAck::Paused);
                }
                Ok(VcpuCommand::Resume) => {
                    let _ = channels.acks.send(VcpuAck::Resumed);
                }
                Ok(VcpuCommand::Save(msrs)) => {
                    let _ = channels.saved.send(self.save_state(&msrs).map(|s| Some(Box::new(s))));
                }
                // The guest ended the VM: nothing is loaded into it any more.
                Ok(VcpuCommand::Restore(..)) => {
                    let _ = channels.saved.send(Err(VcpuError::NotPaused { id: self.id }));
                }
                Ok(VcpuCommand::Stop) | Err(_) => return,
            }
        }
    }
}

impl VcpuHandle {
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The thread's kernel thread id (QMP `query-cpus-fast`'s `thread-id`). A thread
    /// records it first thing; asked right after start, this waits for that (briefly).
    pub fn thread_id(&self) -> Option<i32> {
        let deadline = Instant::now() + TID_TIMEOUT;
        loop {
            match self.tid.get() {
                Some(&tid) => return Some(tid),
                None if Instant::now() < deadline && !self.thread.is_finished() => std::thread::yield_now(),
                None => return None,
            }
        }
    }

    /// Sends `command` and kicks the thread out of KVM_RUN to read it.
    pub fn send(&self, command: VcpuCommand) {
        // A thread that already ended has nothing to be told.
        if self.commands.send(command).is_ok() && !self.thread.is_finished() {
            let _ = self.thread.kill(kick_signal());
        }
    }

    /// Waits for the acknowledgement of a command sent with [`VcpuHandle::send`].
    pub fn wait_ack(&self, expected: VcpuAck, timeout: Duration) -> Result<(), VcpuError> {
        let what = match expected {
            VcpuAck::Paused => "pause",
            VcpuAck::Resumed => "resume",
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.acks.recv_timeout(left) {
                Ok(ack) if ack == expected => return Ok(()),
                // A stale answer to an earlier command: keep waiting for ours.
                Ok(_) => continue,
                // The thread has ended: it is as paused as it will ever be.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(VcpuError::NoAck { id: self.id, what, timeout_ms: timeout.as_millis() })
                }
            }
        }
    }

    /// Reads the state of this (parked) vCPU on its own thread.
    pub fn save(&self, msrs: Arc<[u32]>, timeout: Duration) -> Result<Box<VcpuState>, VcpuError> {
        // A parked thread waits on its channel: no kick is needed (nor wanted: the
        // kick handler would set immediate_exit under the save's own KVM_RUN).
        if self.commands.send(VcpuCommand::Save(msrs)).is_err() {
            return Err(VcpuError::NotPaused { id: self.id });
        }
        match self.saved.recv_timeout(timeout) {
            Ok(Ok(Some(saved))) => Ok(saved),
            Ok(Ok(None)) => Err(VcpuError::NotPaused { id: self.id }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(VcpuError::NoAck { id: self.id, what: "save its state", timeout_ms: timeout.as_millis() }),
        }
    }

    /// Loads `state` into this parked, never run vCPU, on its own thread.
    pub fn restore(&self, state: Arc<VcpuState>, fits: XsaveFits, timeout: Duration) -> Result<(), VcpuError> {
        if self.commands.send(VcpuCommand::Restore(state, fits)).is_err() {
            return Err(VcpuError::NotPaused { id: self.id });
        }
        match self.saved.recv_timeout(timeout) {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(_))) => Err(VcpuError::NotPaused { id: self.id }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(VcpuError::NoAck { id: self.id, what: "load its state", timeout_ms: timeout.as_millis() }),
        }
    }

    /// Stops the thread and waits up to `timeout` for it to end. Returns false if it
    /// did not (the process is about to exit, which ends it).
    pub fn stop(self, timeout: Duration) -> bool {
        self.send(VcpuCommand::Stop);
        crate::threads::join_within(self.thread, timeout)
    }
}
