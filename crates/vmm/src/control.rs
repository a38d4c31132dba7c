//! The running VM as its controller sees it: the run state, the handles of every thread
//! that runs guest work, and the events state changes produce. Every state change goes
//! through [`Machine::change_state`], which checks it against `RunState::transition` and
//! queues the event that announces it; the monitors send the queued events to their
//! clients after each turn of the main loop.

use crate::device_thread::{DeviceThread, DeviceThreadError};
use crate::exit::{ExitNotifier, VmExit};
use crate::snapshot::{LoadedSnapshot, SaveReport, SnapshotError, SnapshotTarget, Snapshotter};
use crate::state::{IllegalTransition, RunState, StateEvent};
use crate::vcpu::{VcpuAck, VcpuCommand, VcpuError, VcpuHandle};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a thread may take to acknowledge a pause or resume. A vCPU answers as soon
/// as it leaves KVM_RUN (microseconds); only a thread stuck in a device would take long.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long teardown waits for each thread to end before leaving it to process exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What QMP announces; `at` is the wall-clock time of the change (QMP's timestamp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmEvent {
    pub kind: VmEventKind,
    pub at: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmEventKind {
    Stop,
    Resume,
    /// `guest`: the guest asked for it; `reason`: QEMU's `ShutdownCause` name.
    Shutdown {
        guest: bool,
        reason: &'static str,
    },
    /// `system_powerdown` was asked for (sent before the button is pressed, as QEMU).
    Powerdown,
    /// A migration (snapshot) changed status: QEMU's MigrationStatus name.
    Migration {
        status: &'static str,
    },
    /// The balloon driver reported a new size: `actual` bytes of RAM left to the guest.
    BalloonChange {
        actual: u64,
    },
    /// The guest opened or closed the virtio-serial port with device id `id`.
    VserportChange {
        id: String,
        open: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    #[error(transparent)]
    Devices(#[from] DeviceThreadError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("this VM cannot be saved")]
    NoSnapshotter,
    /// QEMU's words for `migrate-incoming` without `-incoming defer`.
    #[error("'-incoming' was not specified on the command line")]
    NotIncoming,
    /// `cont` after a guest power-off with `-no-shutdown` (QEMU's words).
    #[error("Resetting the Virtual Machine is required")]
    NeedsReset,
}

/// QEMU's shutdown cause for each way a microVM ends: (guest-initiated, reason).
pub fn shutdown_cause(exit: &VmExit) -> (bool, &'static str) {
    match exit {
        VmExit::Reset => (true, "guest-reset"),
        VmExit::Shutdown => (true, "guest-shutdown"),
        // QEMU exits at once without an event; a monitor still learns why.
        VmExit::DebugExit { .. } => (true, "guest-shutdown"),
        VmExit::Signal(_) => (false, "host-signal"),
        VmExit::Quit => (false, "host-qmp-quit"),
        VmExit::SystemReset => (false, "host-qmp-system-reset"),
        VmExit::VcpuError { .. } | VmExit::DeviceError(_) => (false, "host-error"),
    }
}

pub struct Machine {
    state: RunState,
    vcpus: Vec<VcpuHandle>,
    device_thread: Option<DeviceThread>,
    /// The `-object iothread`s' threads, parked and run with the `virtio` thread.
    iothreads: Vec<DeviceThread>,
    exit: Arc<ExitNotifier>,
    events: Vec<VmEvent>,
    /// What saves the VM (`migrate`, `/snapshot/create`); `None` only in unit tests of
    /// the state machine, which have no KVM.
    snapshotter: Option<Snapshotter>,
    /// In `inmigrate`: whether the VM runs once the incoming state is loaded (no `-S`, or
    /// a `cont` meanwhile, as QEMU's autostart).
    autostart: bool,
}

impl Machine {
    pub fn new(
        state: RunState,
        vcpus: Vec<VcpuHandle>,
        device_thread: Option<DeviceThread>,
        exit: Arc<ExitNotifier>,
    ) -> Self {
        let iothreads = Vec::new();
        Machine {
            state,
            vcpus,
            device_thread,
            iothreads,
            exit,
            events: Vec::new(),
            snapshotter: None,
            autostart: false,
        }
    }

    /// The iothreads' threads, which serve their drives as the `virtio` thread serves the
    /// other devices.
    pub fn with_iothreads(mut self, iothreads: Vec<DeviceThread>) -> Self {
        self.iothreads = iothreads;
        self
    }

    /// Every device thread: the `virtio` thread, then the iothreads.
    fn device_threads(&self) -> impl Iterator<Item = &DeviceThread> {
        self.device_thread.iter().chain(&self.iothreads)
    }

    /// `-incoming defer`: whether the VM runs after `migrate-incoming` (no `-S`).
    pub fn with_autostart(mut self, autostart: bool) -> Self {
        self.autostart = autostart;
        self
    }

    /// The machine can be saved with `snapshotter`.
    pub fn with_snapshotter(mut self, snapshotter: Snapshotter) -> Self {
        self.snapshotter = Some(snapshotter);
        self
    }

    /// Whether guest RAM is a shared file another process can map (x-ignore-shared).
    pub fn memory_is_shared(&self) -> bool {
        self.snapshotter.as_ref().is_some_and(Snapshotter::memory_is_shared)
    }

    pub fn state(&self) -> RunState {
        self.state
    }

    pub fn vcpus(&self) -> &[VcpuHandle] {
        &self.vcpus
    }

    /// The one place the state changes. Returns whether anything is to be done.
    fn check(&self, to: RunState) -> Result<bool, IllegalTransition> {
        self.state.transition(to).map(|event| event.is_some())
    }

    fn change_state(&mut self, to: RunState, shutdown: Option<&VmExit>) {
        let Ok(event) = self.state.transition(to) else { return };
        let Some(event) = event else {
            // The one silent change: a paused (or not yet started) VM saved by `migrate`
            // is already stopped, so no event announces `postmigrate` (as in QEMU).
            // The other: the incoming state loaded into a VM that waits paused.
            if to == RunState::Postmigrate || (self.state == RunState::Inmigrate && to == RunState::Paused) {
                self.state = to;
            }
            return;
        };
        let was_running = self.state == RunState::Running;
        self.state = to;
        let kind = match (event, shutdown) {
            (StateEvent::Stop, _) => VmEventKind::Stop,
            (StateEvent::Resume, _) => VmEventKind::Resume,
            (StateEvent::Shutdown, exit) => {
                let (guest, reason) = exit.map_or((false, "host-error"), shutdown_cause);
                VmEventKind::Shutdown { guest, reason }
            }
            (StateEvent::GuestShutdown, _) => {
                let (guest, reason) = shutdown_cause(&VmExit::Shutdown);
                self.announce(VmEventKind::Shutdown { guest, reason });
                if !was_running {
                    return;
                }
                VmEventKind::Stop
            }
        };
        self.announce(kind);
    }

    /// Queues an event for the monitors.
    pub fn announce(&mut self, kind: VmEventKind) {
        self.events.push(VmEvent { kind, at: SystemTime::now() });
    }

    /// `stop`: every vCPU out of KVM_RUN and parked, then the device thread parked, so
    /// no device completes a request the guest cannot see until it resumes.
    pub fn pause(&mut self) -> Result<(), ControlError> {
        if !self.check(RunState::Paused)? {
            return Ok(());
        }
        self.park()?;
        self.change_state(RunState::Paused, None);
        Ok(())
    }

    /// The guest powered off under `-no-shutdown`: park everything as `stop` does and
    /// stay, in QEMU's `shutdown` state (SHUTDOWN, then STOP).
    pub fn guest_shutdown(&mut self) -> Result<(), ControlError> {
        if !self.check(RunState::GuestShutdown)? {
            return Ok(());
        }
        if self.state == RunState::Running {
            self.park()?;
        }
        self.change_state(RunState::GuestShutdown, None);
        Ok(())
    }

    /// Every vCPU out of KVM_RUN and parked, then the device threads (no request is taken
    /// from any queue while parked); on failure everything runs again.
    fn park(&mut self) -> Result<(), ControlError> {
        for vcpu in &self.vcpus {
            vcpu.send(VcpuCommand::Pause);
        }
        let acked = self.vcpus.iter().try_for_each(|vcpu| vcpu.wait_ack(VcpuAck::Paused, ACK_TIMEOUT));
        let parked = acked
            .map_err(ControlError::from)
            .and_then(|()| self.device_threads().try_for_each(|t| t.pause(ACK_TIMEOUT)).map_err(ControlError::from));
        if let Err(e) = parked {
            // Half paused is no state at all: let everything run again.
            self.wake_all();
            return Err(e);
        }
        Ok(())
    }

    /// `cont`: the device thread first (so a vCPU's first notification is served), then
    /// the vCPUs, from where they stopped or, in prelaunch, from the boot entry.
    pub fn resume(&mut self) -> Result<(), ControlError> {
        if self.state == RunState::GuestShutdown {
            return Err(ControlError::NeedsReset);
        }
        // QEMU's `cont` while waiting for the incoming state: run once it is loaded.
        if self.state == RunState::Inmigrate {
            self.autostart = true;
            return Ok(());
        }
        if !self.check(RunState::Running)? {
            return Ok(());
        }
        self.run_threads()
    }

    /// The device thread first (so a vCPU's first notification is served), then the
    /// vCPUs; the state becomes `running` (RESUME).
    fn run_threads(&mut self) -> Result<(), ControlError> {
        for devices in self.device_threads() {
            devices.resume(ACK_TIMEOUT)?;
        }
        for vcpu in &self.vcpus {
            vcpu.send(VcpuCommand::Resume);
        }
        for vcpu in &self.vcpus {
            vcpu.wait_ack(VcpuAck::Resumed, ACK_TIMEOUT)?;
        }
        self.change_state(RunState::Running, None);
        Ok(())
    }

    fn wake_all(&self) {
        for devices in self.device_threads() {
            let _ = devices.resume(ACK_TIMEOUT);
        }
        for vcpu in &self.vcpus {
            vcpu.send(VcpuCommand::Resume);
        }
    }

    /// Asks for the VM to end (`quit`, `system_reset`); the main loop then ends it.
    pub fn request_exit(&self, exit: VmExit) {
        self.exit.notify(exit);
    }

    /// Saves the VM as `target` says. A running VM is stopped first (STOP); whatever it
    /// was, it is in QEMU's `postmigrate` afterwards, paused, until `cont`. On failure
    /// the state is unchanged but a running VM stays paused (QEMU's failed migration
    /// leaves the source paused too, and the error says why).
    pub fn save(&mut self, target: &SnapshotTarget) -> Result<SaveReport, ControlError> {
        self.check(RunState::Postmigrate)?;
        let Some(snapshotter) = self.snapshotter.take() else {
            return Err(ControlError::NoSnapshotter);
        };
        let saved = self.save_with(&snapshotter, target);
        self.snapshotter = Some(snapshotter);
        saved
    }

    fn save_with(&mut self, snapshotter: &Snapshotter, target: &SnapshotTarget) -> Result<SaveReport, ControlError> {
        if self.state == RunState::Running {
            self.park()?;
            self.change_state(RunState::Paused, None);
        }
        let report = snapshotter.save(&self.vcpus, target)?;
        self.change_state(RunState::Postmigrate, None);
        Ok(report)
    }

    /// `migrate-incoming`: loads `loaded` into this VM waiting in `inmigrate`, then runs
    /// it (RESUME) or leaves it paused, as autostart says. A failure leaves it in
    /// `inmigrate` with the error; what was loaded before it is overwritten by the next try.
    pub fn restore_incoming(&mut self, loaded: LoadedSnapshot) -> Result<(), ControlError> {
        if self.state != RunState::Inmigrate {
            return Err(ControlError::NotIncoming);
        }
        let Some(snapshotter) = &self.snapshotter else {
            return Err(ControlError::NoSnapshotter);
        };
        snapshotter.restore_live(&self.vcpus, loaded)?;
        if self.autostart {
            self.run_threads()
        } else {
            self.change_state(RunState::Paused, None);
            Ok(())
        }
    }

    /// Whether RAM is a named backend file (which holds an x-ignore-shared snapshot's RAM).
    pub fn file_backend(&self) -> bool {
        self.snapshotter.as_ref().is_some_and(Snapshotter::file_backend)
    }

    /// The shape of the machine a snapshot must have to be loaded here.
    pub fn shape(&self) -> Option<&crate::snapshot::MachineShape> {
        self.snapshotter.as_ref().map(Snapshotter::shape)
    }

    /// The VM has ended for `exit`: record it (SHUTDOWN). Threads stop at teardown.
    pub fn end(&mut self, exit: &VmExit) {
        self.change_state(RunState::Shutdown, Some(exit));
    }

    /// The events queued since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<VmEvent> {
        std::mem::take(&mut self.events)
    }

    /// Stops and joins every thread: vCPUs first (guest memory is unmapped after this,
    /// so no vCPU may still be in KVM_RUN), then the device thread.
    pub fn teardown(&mut self) {
        for vcpu in self.vcpus.drain(..) {
            let id = vcpu.id();
            if !vcpu.stop(STOP_TIMEOUT) {
                log::warn!("vCPU {id} did not stop in time");
            }
        }
        for devices in self.device_thread.take().into_iter().chain(self.iothreads.drain(..)) {
            let name = devices.name().to_owned();
            if !devices.stop(STOP_TIMEOUT) {
                log::warn!("the {name} device thread did not stop in time");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(state: RunState) -> Machine {
        Machine::new(state, Vec::new(), None, Arc::new(ExitNotifier::new().unwrap()))
    }

    fn kinds(m: &mut Machine) -> Vec<VmEventKind> {
        m.take_events().into_iter().map(|e| e.kind).collect()
    }

    #[test]
    fn pause_and_resume_announce_each_change_once() {
        let mut m = machine(RunState::Prelaunch);
        m.pause().unwrap();
        assert_eq!(m.state(), RunState::Prelaunch, "stop before launch changes nothing, as in QEMU");
        m.resume().unwrap();
        m.resume().unwrap();
        m.pause().unwrap();
        m.pause().unwrap();
        assert_eq!(m.state(), RunState::Paused);
        assert_eq!(kinds(&mut m), [VmEventKind::Resume, VmEventKind::Stop]);
    }

    #[test]
    fn shutdown_is_final_and_names_its_cause() {
        let mut m = machine(RunState::Running);
        m.end(&VmExit::Quit);
        m.end(&VmExit::Reset);
        assert!(matches!(m.resume(), Err(ControlError::Illegal(_))));
        assert!(matches!(m.pause(), Err(ControlError::Illegal(_))));
        assert_eq!(kinds(&mut m), [VmEventKind::Shutdown { guest: false, reason: "host-qmp-quit" }]);
    }

    /// QEMU with -no-shutdown: SHUTDOWN then STOP, status shutdown, cont refused, quit ends it.
    #[test]
    fn guest_shutdown_parks_and_only_quit_ends_it() {
        let mut m = machine(RunState::Running);
        m.guest_shutdown().unwrap();
        assert_eq!(m.state(), RunState::GuestShutdown);
        assert_eq!(m.state().name(), "shutdown");
        assert_eq!(kinds(&mut m), [VmEventKind::Shutdown { guest: true, reason: "guest-shutdown" }, VmEventKind::Stop]);
        let e = m.resume().unwrap_err();
        assert_eq!(e.to_string(), "Resetting the Virtual Machine is required");
        m.pause().unwrap();
        m.guest_shutdown().unwrap();
        assert_eq!(kinds(&mut m), [], "stop and a second power-off change nothing");
        m.end(&VmExit::Quit);
        assert_eq!(kinds(&mut m), [VmEventKind::Shutdown { guest: false, reason: "host-qmp-quit" }]);
    }

    #[test]
    fn guest_shutdown_while_paused_sends_no_second_stop() {
        let mut m = machine(RunState::Paused);
        m.guest_shutdown().unwrap();
        assert_eq!(kinds(&mut m), [VmEventKind::Shutdown { guest: true, reason: "guest-shutdown" }]);
    }

    #[test]
    fn every_exit_has_a_qemu_shutdown_cause() {
        let panicked = sandbox::ThreadFailure::Panicked { thread: "virtio", message: "x".into() };
        let causes = [
            (VmExit::Reset, (true, "guest-reset")),
            (VmExit::Shutdown, (true, "guest-shutdown")),
            (VmExit::Signal(15), (false, "host-signal")),
            (VmExit::Quit, (false, "host-qmp-quit")),
            (VmExit::SystemReset, (false, "host-qmp-system-reset")),
            (VmExit::DeviceError(panicked.into()), (false, "host-error")),
            (VmExit::VcpuError { vcpu: 0, error: crate::exit::VcpuFailure::Internal }, (false, "host-error")),
        ];
        for (exit, cause) in causes {
            assert_eq!(shutdown_cause(&exit), cause, "{exit:?}");
        }
    }
}
