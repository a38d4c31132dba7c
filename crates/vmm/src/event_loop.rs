//! The main thread's event loop: waits for the VM to end (vCPU exit, guest
//! reset through the i8042, stop signal) and feeds host stdin to the serial
//! console.

use crate::exit::{ExitNotifier, VmExit};
use crate::signals::StopSignals;
use devices::legacy::SerialPort;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::EventFd;

/// Watches everything that ends the VM and records the first reason in
/// the shared `ExitNotifier`.
pub struct ExitWatcher {
    pub exit: Arc<ExitNotifier>,
    pub reset: EventFd,
    pub signals: StopSignals,
}

impl MutEventSubscriber for ExitWatcher {
    fn init(&mut self, ops: &mut EventOps) {
        for fd in [self.exit.eventfd().as_raw_fd(), self.reset.as_raw_fd(), self.signals.as_raw_fd()] {
            if let Err(e) = ops.add(Events::new_raw(fd, EventSet::IN)) {
                log::error!("event loop: cannot watch fd {fd}: {e:?}");
            }
        }
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        let fd = events.fd();
        if fd == self.reset.as_raw_fd() {
            let _ = self.reset.read();
            self.exit.notify(VmExit::Reset);
        } else if fd == self.signals.as_raw_fd() {
            if let Some(sig) = self.signals.read() {
                self.exit.notify(VmExit::Signal(sig));
            }
        }
        // The exit eventfd itself needs no handling: its reason is already stored.
    }
}

/// Copies host stdin to the guest's serial port.
pub struct StdinForwarder {
    pub serial: Arc<Mutex<SerialPort>>,
}

impl StdinForwarder {
    /// Stdin that epoll cannot watch (a regular file, /dev/null) is read
    /// whole, once: it can never block.
    pub fn read_all_now(&self) {
        let mut input = Vec::new();
        if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
            log::warn!("cannot read stdin: {e}");
        }
        if !input.is_empty() {
            self.serial.lock().unwrap_or_else(|p| p.into_inner()).queue_input(&input);
        }
    }
}

impl MutEventSubscriber for StdinForwarder {
    fn init(&mut self, ops: &mut EventOps) {
        let stdin = std::io::stdin().as_raw_fd();
        if ops.add(Events::new_raw(stdin, EventSet::IN)).is_err() {
            self.read_all_now();
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let mut buf = [0u8; 256];
        let fd = events.fd();
        // SAFETY: reads into our buffer from the stdin descriptor epoll reported readable.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            // EOF or error: stop watching, or epoll would report it forever.
            if n < 0 {
                log::warn!("cannot read stdin: {}", std::io::Error::last_os_error());
            }
            let _ = ops.remove(events);
            return;
        }
        self.serial.lock().unwrap_or_else(|p| p.into_inner()).queue_input(&buf[..n as usize]);
    }
}
