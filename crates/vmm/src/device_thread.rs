//! The `virtio` thread: one `event-manager` loop that owns every virtio device's data
//! path (queue ioeventfds, tap fds, chardev fds), and a control channel through which
//! the VM pauses, resumes and stops it. Each `-object iothread` a drive names is another
//! such thread (kind `iothread`), serving only the drives that name it.
//!
//! Pausing parks the thread inside the control handler, so no queue is served. Guest
//! notifications that arrive meanwhile stay pending on their ioeventfds (epoll is
//! level-triggered), and are served as soon as the thread resumes.

use crate::exit::{DeviceFailure, ExitNotifier, VmExit};
use event_manager::{EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberOps};
use sandbox::{Sandbox, ThreadFailure, ThreadKind, ThreadStart};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub type DeviceEventLoop = EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Pause,
    Resume,
    Stop,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceThreadError {
    #[error("cannot create the device thread's control eventfd: {0}")]
    EventFd(#[source] std::io::Error),
    #[error("cannot start the {name} device thread: {source}")]
    Spawn { name: String, source: std::io::Error },
    #[error("the {name} device thread did not {what} within {timeout_ms} ms")]
    NoAck { name: String, what: &'static str, timeout_ms: u128 },
}

/// The VM's side of the device thread.
pub struct DeviceThread {
    commands: Sender<Command>,
    wake: EventFd,
    acks: Receiver<Command>,
    thread: JoinHandle<()>,
    /// The thread's name (`virtio`, or the iothread's id), for messages.
    name: String,
}

/// Runs on the device thread, inside its event loop.
struct Control {
    wake: EventFd,
    commands: Receiver<Command>,
    acks: Sender<Command>,
    stop: Arc<AtomicBool>,
}

impl Control {
    /// Serves one command; a `Pause` parks here until `Resume` or `Stop`.
    fn serve(&self, command: Command) {
        match command {
            Command::Resume => {
                let _ = self.acks.send(Command::Resume);
            }
            Command::Stop => self.stop.store(true, Ordering::Release),
            Command::Pause => {
                let _ = self.acks.send(Command::Pause);
                loop {
                    match self.commands.recv() {
                        Ok(Command::Pause) => {
                            let _ = self.acks.send(Command::Pause);
                        }
                        Ok(Command::Resume) => {
                            let _ = self.acks.send(Command::Resume);
                            return;
                        }
                        Ok(Command::Stop) | Err(_) => {
                            self.stop.store(true, Ordering::Release);
                            return;
                        }
                    }
                }
            }
        }
    }
}

impl MutEventSubscriber for Control {
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.wake, EventSet::IN)) {
            log::error!("virtio thread: cannot watch its control eventfd: {e:?}");
        }
    }

    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.wake.read();
        while let Ok(command) = self.commands.try_recv() {
            self.serve(command);
            if self.stop.load(Ordering::Acquire) {
                return;
            }
        }
    }
}

impl DeviceThread {
    /// Starts the `virtio` thread serving `event_loop` under the virtio filter, once every
    /// thread has met at `start_gate`. A failing loop (or a panic) ends the VM through `exit`.
    pub fn spawn(
        event_loop: DeviceEventLoop,
        exit: Arc<ExitNotifier>,
        sandbox: Arc<Sandbox>,
        start_gate: Arc<Barrier>,
    ) -> Result<Self, DeviceThreadError> {
        let start = ThreadStart { name: "virtio".into(), kind: ThreadKind::Virtio, sandbox, gate: Some(start_gate) };
        Self::spawn_as(event_loop, start, exit)
    }

    /// Starts a thread serving `event_loop` as `start` says (an iothread's name and kind).
    pub fn spawn_as(
        mut event_loop: DeviceEventLoop,
        start: ThreadStart,
        exit: Arc<ExitNotifier>,
    ) -> Result<Self, DeviceThreadError> {
        let wake = EventFd::new(EFD_NONBLOCK).map_err(DeviceThreadError::EventFd)?;
        let (commands, command_rx) = mpsc::channel();
        let (ack_tx, acks) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let control = Control {
            wake: wake.try_clone().map_err(DeviceThreadError::EventFd)?,
            commands: command_rx,
            acks: ack_tx,
            stop: stop.clone(),
        };
        event_loop.add_subscriber(Arc::new(Mutex::new(control)));
        let failed = exit.clone();
        let on_failure = move |failure: ThreadFailure| failed.notify(VmExit::DeviceError(failure.into()));
        let name = start.name.clone();
        let thread_name = name.clone();
        let thread = sandbox::spawn(start, on_failure, move || {
            while !stop.load(Ordering::Acquire) {
                if let Err(e) = event_loop.run() {
                    let failure = DeviceFailure::EventLoop { thread: thread_name, source: Arc::new(e) };
                    exit.notify(VmExit::DeviceError(failure));
                    return;
                }
            }
        })
        .map_err(|source| DeviceThreadError::Spawn { name: name.clone(), source })?;
        Ok(DeviceThread { commands, wake, acks, thread, name })
    }

    fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            if let Err(e) = self.wake.write(1) {
                log::error!("cannot wake the {} thread (fd {}): {e}", self.name, self.wake.as_raw_fd());
            }
        }
    }

    fn command(&self, command: Command, what: &'static str, timeout: Duration) -> Result<(), DeviceThreadError> {
        self.send(command);
        let deadline = Instant::now() + timeout;
        loop {
            match self.acks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(ack) if ack == command => return Ok(()),
                Ok(_) => continue,
                // The thread has ended (its loop failed): nothing is served any more.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {
                    let name = self.name.clone();
                    return Err(DeviceThreadError::NoAck { name, what, timeout_ms: timeout.as_millis() });
                }
            }
        }
    }

    /// `virtio`, or the iothread's id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parks the thread: no queue is served until [`DeviceThread::resume`].
    pub fn pause(&self, timeout: Duration) -> Result<(), DeviceThreadError> {
        self.command(Command::Pause, "pause", timeout)
    }

    pub fn resume(&self, timeout: Duration) -> Result<(), DeviceThreadError> {
        self.command(Command::Resume, "resume", timeout)
    }

    /// Stops the thread and joins it; false if it did not end within `timeout`.
    pub fn stop(self, timeout: Duration) -> bool {
        self.send(Command::Stop);
        crate::threads::join_within(self.thread, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the events of one eventfd: stands for a device's queue handler.
    struct Counter {
        evt: EventFd,
        served: Arc<Mutex<u64>>,
    }

    impl MutEventSubscriber for Counter {
        fn init(&mut self, ops: &mut EventOps) {
            ops.add(Events::new(&self.evt, EventSet::IN)).unwrap();
        }
        fn process(&mut self, _: Events, _: &mut EventOps) {
            *self.served.lock().unwrap() += self.evt.read().unwrap();
        }
    }

    fn served_within(served: &Mutex<u64>, want: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if *served.lock().unwrap() == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn paused_thread_serves_nothing_then_serves_what_was_pending() {
        let mut event_loop = DeviceEventLoop::new().unwrap();
        let evt = EventFd::new(EFD_NONBLOCK).unwrap();
        let served = Arc::new(Mutex::new(0));
        event_loop
            .add_subscriber(Arc::new(Mutex::new(Counter { evt: evt.try_clone().unwrap(), served: served.clone() })));
        let exit = Arc::new(ExitNotifier::new().unwrap());
        let thread = DeviceThread::spawn(
            event_loop,
            exit.clone(),
            Arc::new(Sandbox::new(false).unwrap()),
            Arc::new(Barrier::new(1)),
        )
        .unwrap();
        let second = Duration::from_secs(1);

        evt.write(1).unwrap();
        assert!(served_within(&served, 1, second), "a running thread serves its events");

        thread.pause(second).unwrap();
        evt.write(2).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(*served.lock().unwrap(), 1, "a paused thread serves nothing");

        thread.resume(second).unwrap();
        assert!(served_within(&served, 3, second), "what arrived while paused is served on resume");

        thread.pause(second).unwrap();
        assert!(thread.stop(second), "a paused thread stops and is joined");
        assert!(exit.reason().is_none());
    }
}
