//! The main thread's event loop subscribers: the controller (VM end, monitors) and the
//! serial console's stdin.

use crate::exit::{ExitNotifier, VmExit};
use crate::monitor::{MonitorServer, Mux, VmControl};
use crate::signals::StopSignals;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

/// The main thread's control centre: watches everything that ends the VM (the exit
/// eventfd vCPUs and devices write, the i8042 reset, stop signals) and every monitor
/// socket, runs monitor commands on the VM, and sends the events they cause.
pub struct Controller {
    pub vm: VmControl,
    pub monitors: MonitorServer,
    /// Mux chardevs and human monitors (their commands run on `vm`).
    pub muxes: Vec<Mux>,
    pub exit: Arc<ExitNotifier>,
    pub reset: EventFd,
    pub signals: StopSignals,
    /// Set once the VM has ended; the main loop then stops.
    pub ended: Option<VmExit>,
}

impl MutEventSubscriber for Controller {
    fn init(&mut self, ops: &mut EventOps) {
        for fd in [self.exit.eventfd().as_raw_fd(), self.reset.as_raw_fd(), self.signals.as_raw_fd()] {
            if let Err(e) = ops.add(Events::new_raw(fd, EventSet::IN)) {
                log::error!("event loop: cannot watch fd {fd}: {e:?}");
            }
        }
        self.monitors.init(ops);
        for mux in &mut self.muxes {
            mux.init(ops, &mut self.vm);
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let fd = events.fd();
        if fd == self.reset.as_raw_fd() {
            let _ = self.reset.read();
            self.exit.notify(VmExit::Reset);
        } else if fd == self.signals.as_raw_fd() {
            if let Some(sig) = self.signals.read() {
                self.exit.notify(VmExit::Signal(sig));
            }
        } else if fd == self.exit.eventfd().as_raw_fd() {
            // Its reason is already stored; read it so epoll stops reporting it.
            let _ = self.exit.eventfd().read();
        } else if self.muxes.iter_mut().fold(false, |ours, mux| mux.process(&events, ops, &mut self.vm) | ours) {
            // A mux chardev's event (each mux serves only its own fds).
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
        let events = self.vm.machine.take_events();
        self.monitors.broadcast(&events, ops);
    }
}
