//! The VM's run state, as QMP's `query-status` names it, and the one place that decides
//! which changes are legal. Every change goes through [`RunState::transition`], which also
//! says which QMP event (if any) announces it, so no caller can change state silently.

/// QEMU's `RunState` values that a microVM can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Built, vCPU threads parked before their first KVM_RUN (`-S`).
    Prelaunch,
    /// vCPUs in KVM_RUN, the device thread serving queues.
    Running,
    /// Every vCPU out of KVM_RUN and parked; the device thread parked.
    Paused,
    /// The VM has ended; only teardown follows.
    Shutdown,
    /// `-no-shutdown`: the guest powered off and its vCPUs and devices are parked; only
    /// `quit` (or `system_reset`, a signal) ends it. QEMU's `shutdown` state, which
    /// `cont` cannot leave.
    GuestShutdown,
    /// Paused after its state was saved (`migrate`), as QEMU's source after a migration:
    /// `cont` resumes it.
    Postmigrate,
    /// `-incoming defer`: built, vCPUs parked, waiting for `migrate-incoming`; then
    /// running or paused as `-S` and `cont` said (QEMU's `inmigrate`).
    Inmigrate,
}

/// The QMP event that announces a state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateEvent {
    Stop,
    Resume,
    Shutdown,
    /// SHUTDOWN (guest-shutdown), then STOP if the vCPUs were running.
    GuestShutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the VM cannot go from {} to {}", .from.name(), .to.name())]
pub struct IllegalTransition {
    pub from: RunState,
    pub to: RunState,
}

impl RunState {
    /// The name `query-status` reports.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Prelaunch => "prelaunch",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Shutdown | RunState::GuestShutdown => "shutdown",
            RunState::Postmigrate => "postmigrate",
            RunState::Inmigrate => "inmigrate",
        }
    }

    /// Checks a change to `to`. `Ok(None)`: nothing to do (already there, or a stop
    /// before launch, which QEMU also accepts silently); `Ok(Some(event))`: the change
    /// is legal and announced by `event`.
    pub fn transition(self, to: RunState) -> Result<Option<StateEvent>, IllegalTransition> {
        use RunState::*;
        match (self, to) {
            (Shutdown, _) => Err(IllegalTransition { from: self, to }),
            (_, Shutdown) => Ok(Some(StateEvent::Shutdown)),
            (Prelaunch, Prelaunch) | (Running, Running) | (Paused, Paused) | (GuestShutdown, GuestShutdown) => Ok(None),
            (Postmigrate, Postmigrate) => Ok(None),
            // Saving a running VM stops it first (STOP); a paused one is already stopped.
            (Running, Postmigrate) => Ok(Some(StateEvent::Stop)),
            (Prelaunch | Paused, Postmigrate) => Ok(None),
            (Postmigrate, Running) => Ok(Some(StateEvent::Resume)),
            (Postmigrate, Paused) => Ok(None),
            (Postmigrate, Prelaunch | GuestShutdown) => Err(IllegalTransition { from: self, to }),
            (GuestShutdown, Postmigrate) => Err(IllegalTransition { from: self, to }),
            (Inmigrate, Inmigrate) => Ok(None),
            // The incoming state is loaded: the VM runs (RESUME) or waits paused, silently.
            (Inmigrate, Running) => Ok(Some(StateEvent::Resume)),
            (Inmigrate, Paused) => Ok(None),
            (Inmigrate, _) | (_, Inmigrate) => Err(IllegalTransition { from: self, to }),
            // QEMU's `stop` before the first `cont` leaves the VM in prelaunch.
            (Prelaunch, Paused) => Ok(None),
            (Prelaunch | Paused, Running) => Ok(Some(StateEvent::Resume)),
            (Running, Paused) => Ok(Some(StateEvent::Stop)),
            (Running | Paused, GuestShutdown) => Ok(Some(StateEvent::GuestShutdown)),
            // As QEMU's `stop` in the shutdown state: nothing changes.
            (GuestShutdown, Paused) => Ok(None),
            (Running | Paused, Prelaunch) | (GuestShutdown | Prelaunch, _) => Err(IllegalTransition { from: self, to }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunState::*;
    use super::*;

    const ALL: [RunState; 7] = [Prelaunch, Running, Paused, Shutdown, GuestShutdown, Postmigrate, Inmigrate];

    #[test]
    fn every_transition() {
        let ok = |e| Ok::<_, IllegalTransition>(e);
        let bad = |from, to| Err(IllegalTransition { from, to });
        let expected = |from: RunState, to: RunState| match (from, to) {
            (Prelaunch, Prelaunch) => ok(None),
            (Prelaunch, Running) => ok(Some(StateEvent::Resume)),
            (Prelaunch, Paused) => ok(None),
            (Prelaunch, Shutdown) => ok(Some(StateEvent::Shutdown)),
            (Running, Prelaunch) => bad(from, to),
            (Running, Running) => ok(None),
            (Running, Paused) => ok(Some(StateEvent::Stop)),
            (Running, Shutdown) => ok(Some(StateEvent::Shutdown)),
            (Paused, Prelaunch) => bad(from, to),
            (Paused, Running) => ok(Some(StateEvent::Resume)),
            (Paused, Paused) => ok(None),
            (Paused, Shutdown) => ok(Some(StateEvent::Shutdown)),
            (Shutdown, _) => bad(from, to),
            (Prelaunch, GuestShutdown) => bad(from, to),
            (Running | Paused, GuestShutdown) => ok(Some(StateEvent::GuestShutdown)),
            (GuestShutdown, Shutdown) => ok(Some(StateEvent::Shutdown)),
            (GuestShutdown, GuestShutdown | Paused) => ok(None),
            (GuestShutdown, Prelaunch | Running) => bad(from, to),
            (Running, Postmigrate) => ok(Some(StateEvent::Stop)),
            (Prelaunch | Paused | Postmigrate, Postmigrate) => ok(None),
            (Postmigrate, Running) => ok(Some(StateEvent::Resume)),
            (Postmigrate, Paused) => ok(None),
            (Postmigrate, Shutdown) => ok(Some(StateEvent::Shutdown)),
            (Postmigrate, Prelaunch | GuestShutdown) | (GuestShutdown, Postmigrate) => bad(from, to),
            (Inmigrate, Inmigrate | Paused) => ok(None),
            (Inmigrate, Running) => ok(Some(StateEvent::Resume)),
            (Inmigrate, Shutdown) => ok(Some(StateEvent::Shutdown)),
            (Inmigrate, _) | (_, Inmigrate) => bad(from, to),
        };
        for from in ALL {
            for to in ALL {
                assert_eq!(from.transition(to), expected(from, to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn names_are_qemus() {
        let names: Vec<_> = ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["prelaunch", "running", "paused", "shutdown", "shutdown", "postmigrate", "inmigrate"]);
        let e = Shutdown.transition(Running).unwrap_err();
        assert_eq!(e.to_string(), "the VM cannot go from shutdown to running");
    }
}
