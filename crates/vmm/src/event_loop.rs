//! The main thread's event loop subscribers: the controller (VM end, monitors) and the
//! serial console's stdin.

use crate::exit::{DeviceFailure, ExitNotifier, VmExit};
use crate::guest_changes::GuestChanges;
use crate::monitor::{MonitorServer, Mux, VmControl};
use crate::signals::StopSignals;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

/// The main thread's control centre: watches everything that ends the VM (the exit
/// eventfd vCPUs and devices write, the i8042 reset, the ACPI power-off, stop signals)
/// and every monitor socket, runs monitor commands on the VM, and sends the events they
/// cause.
pub struct Controller {
    pub vm: VmControl,
    pub monitors: MonitorServer,
    /// Firecracker's API socket, when started as `firecracker`.
    pub api: Option<crate::api::ApiServer>,
    /// Mux chardevs and human monitors (their commands run on `vm`).
    pub muxes: Vec<Mux>,
    pub exit: Arc<ExitNotifier>,
    pub reset: EventFd,
    /// The guest entered S5 (`acpi=on`): the VM ends, or with `no_shutdown` parks.
    pub poweroff: Option<EventFd>,
    pub no_shutdown: bool,
    pub signals: StopSignals,
    /// The guest's changes to announce (with a balloon or a virtio-serial port with an id).
    pub guest_changes: Option<GuestChanges>,
    /// Set once the VM has ended; the main loop then stops.
    pub ended: Option<VmExit>,
}

impl MutEventSubscriber for Controller {
    fn init(&mut self, ops: &mut EventOps) {
        let exit = self.exit.eventfd().map(AsRawFd::as_raw_fd);
        for fd in [exit, Some(self.reset.as_raw_fd()), self.signals.fd()].into_iter().flatten() {
            if let Err(e) = ops.add(Events::new_raw(fd, EventSet::IN)) {
                log::error!("event loop: cannot watch fd {fd}: {e:?}");
            }
        }
        if let Some(poweroff) = &self.poweroff {
            if let Err(e) = ops.add(Events::new(poweroff, EventSet::IN)) {
                log::error!("event loop: cannot watch the power-off event: {e:?}");
            }
        }
        if let Some(changes) = &self.guest_changes {
            changes.init(ops);
        }
        self.monitors.init(ops);
        if let Some(api) = &mut self.api {
            api.init(ops, &mut self.vm);
        }
        for mux in &mut self.muxes {
            mux.init(ops, &mut self.vm);
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let fd = events.fd();
        if fd == self.reset.as_raw_fd() {
            let _ = self.reset.read();
            self.exit.notify(VmExit::Reset);
        } else if let Some(poweroff) = self.poweroff.as_ref().filter(|p| p.as_raw_fd() == fd) {
            let _ = poweroff.read();
            if !self.no_shutdown {
                self.exit.notify(VmExit::Shutdown);
            } else if let Err(e) = self.vm.machine.guest_shutdown() {
                self.exit.notify(VmExit::DeviceError(DeviceFailure::GuestShutdown(Arc::new(e))));
            }
        } else if Some(fd) == self.signals.fd() {
            if let Some(sig) = self.signals.read() {
                self.exit.notify(VmExit::Signal(sig));
            }
        } else if let Some(evt) = self.exit.eventfd().filter(|evt| evt.as_raw_fd() == fd) {
            // Its reason is already stored; read it so epoll stops reporting it.
            let _ = evt.read();
        } else if let Some(kinds) = self.guest_changes.as_mut().and_then(|c| c.process(fd, self.vm.facts.mem_size)) {
            kinds.into_iter().for_each(|kind| self.vm.machine.announce(kind));
        } else if self.muxes.iter_mut().fold(false, |ours, mux| mux.process(&events, ops, &mut self.vm) | ours) {
            // A mux chardev's event (each mux serves only its own fds).
        } else if self.api.as_mut().is_some_and(|api| api.process(&events, ops, &mut self.vm)) {
            // Firecracker's API socket or one of its clients.
        } else if !self.monitors.process(&events, ops, &mut self.vm) {
            log::warn!("event loop: event on unknown fd {fd}");
            let _ = ops.remove(events);
        }
        if self.ended.is_none() {
            if let Some(reason) = self.exit.reason() {
                self.vm.machine.end(&reason);
                self.ended = Some(reason);
            }
        }
        let mut events = self.vm.machine.take_events();
        if let Some(changes) = &mut self.guest_changes {
            events = changes.limit(events, self.ended.is_some());
        }
        self.monitors.broadcast(&events, ops);
    }
}
