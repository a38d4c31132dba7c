//! The legacy 16550A on the chardev layer: whatever `-serial` names (stdio,
//! a pty, a file, a socket, a `-chardev`) is a `Chardev`, the same backend
//! virtconsole uses, so every backend (and the raw terminal of stdio) has one
//! path.
//!
//! The guest's transmitter writes on a vCPU thread: [`ChardevWriter`] hands
//! the bytes to the chardev without blocking (a peer that does not keep up
//! holds up to the chardev's buffer; beyond that the bytes are dropped, as a
//! UART with no cable would) and, when some stay buffered, kicks the main
//! loop, where [`SerialChardev`] keeps the chardev's fds watched: it flushes
//! output, accepts socket clients, and moves input into the UART's receive
//! FIFO (held in the port's own queue while the FIFO is full).

use crate::config::{ChardevBackend, ChardevConfig, SerialConfig};
use crate::error::Error;

use crate::device_info::{chardev_filename, ChardevInfo};
use crate::monitor::mux::{open_chardev, Mux};
use devices::chardev::Chardev;
use devices::legacy::SerialPort;
use devices::EventFdTrigger;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Event data of the kick eventfd (the chardev's own start at `EVENT_DATA_BASE`).
const KICK: u32 = 1;
/// Bytes read from the chardev per turn.
const READ_CHUNK: usize = 1024;

/// The chardev `-serial` asks for, with QEMU's label `serial0`.
pub fn serial_chardev(config: &SerialConfig) -> ChardevConfig {
    let backend = |backend| ChardevConfig { id: "serial0".into(), backend, logfile: None };
    match config {
        SerialConfig::Stdio => backend(ChardevBackend::Stdio),
        SerialConfig::Null => backend(ChardevBackend::Null),
        SerialConfig::Chardev(cfg) => cfg.clone(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The UART's output: into the chardev, never blocking the vCPU.
pub struct ChardevWriter {
    chardev: Arc<Mutex<Chardev>>,
    kick: EventFd,
}

impl Write for ChardevWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut chardev = lock(&self.chardev);
        chardev.write_output(buf);
        if chardev.pending_output() > 0 {
            // The main loop must watch for the peer to become writable.
            let _ = self.kick.write(1);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The serial port's chardev, served by the main loop.
pub struct SerialChardev {
    pub port: Arc<Mutex<SerialPort>>,
    chardev: Arc<Mutex<Chardev>>,
    kick: EventFd,
    /// For `query-chardev` (`None` on a mux: the mux is listed).
    pub info: Option<ChardevInfo>,
}

impl SerialChardev {
    /// Opens the backend (a server socket with wait=on blocks here, as in
    /// QEMU) and builds the UART raising `irq`.
    pub fn open(config: &SerialConfig, irq: EventFdTrigger, muxes: &mut [Mux]) -> Result<SerialChardev, Error> {
        let cfg = serial_chardev(config);
        let chardev = open_chardev(&cfg, muxes)?;
        let info = (!matches!(cfg.backend, ChardevBackend::MuxPort(_))).then(|| ChardevInfo {
            label: cfg.id.clone(),
            filename: chardev_filename(&cfg.backend, chardev.pty_path()),
        });
        let chardev = Arc::new(Mutex::new(chardev));
        let kick = EventFd::new(EFD_NONBLOCK).map_err(|source| Error::Io { what: "serial eventfd", source })?;
        let writer = ChardevWriter {
            chardev: chardev.clone(),
            kick: kick.try_clone().map_err(|source| Error::Io { what: "serial eventfd", source })?,
        };
        let port = Arc::new(Mutex::new(SerialPort::new(irq, Box::new(writer))));
        Ok(SerialChardev { port, chardev, kick, info })
    }

    /// The chardev, for [`drain`] at teardown.
    pub fn chardev(&self) -> Arc<Mutex<Chardev>> {
        self.chardev.clone()
    }

    /// Moves what input there is into the UART, flushes output, and brings
    /// the watched fds up to date.
    fn serve(&mut self, ops: &mut EventOps) {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            // Never both locks at once this way round: a vCPU writing to the port holds
            // the port's lock and then takes the chardev's (`ChardevWriter`), so input
            // queued under the chardev's lock deadlocked the two threads whenever the
            // guest printed while input came (a restored guest answering its console:
            // the VMM hung, deaf to SIGTERM).
            let read = lock(&self.chardev).read_input(&mut buf);
            match read {
                Ok(0) => break,
                Ok(n) => lock(&self.port).queue_input(&buf[..n]),
                Err(e) => {
                    log::warn!("serial0: input lost: {e}");
                    break;
                }
            }
        }
        let mut chardev = lock(&self.chardev);
        chardev.flush_output();
        chardev.sync_watches(ops, true);
    }
}

impl MutEventSubscriber for SerialChardev {
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::with_data(&self.kick, KICK, EventSet::IN)) {
            log::error!("serial0: cannot watch its eventfd: {e:?}");
        }
        // Input epoll cannot watch (stdin from a file) is read here, at once.
        self.serve(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if events.data() == KICK {
            let _ = self.kick.read();
        } else {
            lock(&self.chardev).handle_event(&events);
        }
        self.serve(ops);
    }
}

/// Gives buffered guest output up to `timeout` to reach a peer that is slow
/// to read, at teardown (what the guest wrote just before it ended).
pub fn drain(chardev: &Mutex<Chardev>, timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    let mut chardev = lock(chardev);
    while chardev.pending_output() > 0 && std::time::Instant::now() < deadline {
        chardev.flush_output();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
