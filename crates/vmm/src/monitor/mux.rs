//! The mux chardevs on the main thread's event loop: a backend chardev shared
//! by guest front ends (serial port, virtconsoles) and a human monitor, with
//! QEMU's escape keys (`mux_core.rs`) and readline (`readline.rs`).
//!
//! Each guest front end is connected to its mux by a socketpair: the device
//! gets an ordinary `Chardev` on one end (so the serial port on the main
//! thread and a virtconsole on the `virtio` thread need nothing special), and
//! the mux forwards between the other end and the backend. The human monitor
//! runs here, on the main thread, with the same handlers as QMP.

use super::hmp;
use super::mux_core::{MuxAction, MuxCore};
use super::readline::{Edit, Readline, PROMPT};
use super::VmControl;
use crate::chardevs::open_backend;
use crate::config::MuxConfig;
use crate::config::{ChardevBackend, ChardevConfig};
use crate::device_info::{chardev_filename, ChardevInfo};
use crate::error::{io_err, ConfigError, Error};
use crate::exit::VmExit;
use devices::chardev::{Chardev, EVENT_DATA_BASE, OUTPUT_BUFFER};
use event_manager::{EventOps, Events};
use std::os::unix::net::UnixStream;

/// Bytes moved per read.
const CHUNK: usize = 4096;

pub struct Mux {
    backend: Chardev,
    /// The mux's end of each guest front end's socketpair, in attach order.
    guests: Vec<Chardev>,
    monitor: bool,
    escape: u8,
    core: MuxCore,
    readline: Readline,
    /// The backend had a peer at the last look (a socket client, a pty user),
    /// and which accepted client it was.
    connected: bool,
    client: u64,
    pub info: ChardevInfo,
}

impl Mux {
    /// Opens the backend (a server socket with wait=on blocks here, as in QEMU).
    pub fn open(cfg: &MuxConfig) -> Result<Mux, Error> {
        let backend = open_backend(&cfg.chardev)?;
        let info = ChardevInfo {
            label: cfg.chardev.id.clone(),
            filename: chardev_filename(&cfg.chardev.backend, backend.pty_path()),
        };
        Ok(Mux {
            backend,
            guests: Vec::new(),
            monitor: cfg.monitor,
            escape: cfg.escape,
            core: MuxCore::new(0, cfg.monitor, cfg.escape),
            readline: Readline::default(),
            connected: false,
            client: 0,
            info,
        })
    }

    /// A new guest front end: the chardev its device uses.
    pub fn attach(&mut self, label: &str) -> Result<Chardev, Error> {
        let (device_end, mux_end) = UnixStream::pair().map_err(io_err("cannot create a mux socketpair"))?;
        let dup = |s: &UnixStream| s.try_clone().map_err(io_err("cannot duplicate a mux socket"));
        let ours = Chardev::from_fds(&self.info.label, Some(dup(&mux_end)?.into()), Some(mux_end.into()))?;
        self.guests.push(ours);
        self.core = MuxCore::new(self.guests.len(), self.monitor, self.escape);
        Ok(Chardev::from_fds(label, Some(dup(&device_end)?.into()), Some(device_end.into()))?)
    }

    pub fn init(&mut self, ops: &mut EventOps, vm: &mut VmControl) {
        self.serve(ops, vm);
    }

    /// Serves an event if it is one of the mux chardevs'; false otherwise.
    pub fn process(&mut self, events: &Events, ops: &mut EventOps, vm: &mut VmControl) -> bool {
        if !(EVENT_DATA_BASE..EVENT_DATA_BASE + 4).contains(&events.data()) {
            return false;
        }
        let mut ours = self.backend.handle_event(events);
        for guest in &mut self.guests {
            ours |= guest.handle_event(events);
        }
        if ours {
            self.serve(ops, vm);
        }
        ours
    }

    fn serve(&mut self, ops: &mut EventOps, vm: &mut VmControl) {
        let connected = self.backend.is_connected();
        let client = self.backend.clients_accepted();
        if connected && (!self.connected || client != self.client) {
            // A new peer (at start, or a socket client): a monitor with the focus greets it,
            // with an empty line (nothing the last peer half-typed).
            self.readline = Readline::default();
            if let Some(action) = self.core.start() {
                self.act(action, vm);
            } else if self.core.monitor_focused() {
                self.act(MuxAction::MonitorFocused { first: true }, vm);
            }
        }
        self.connected = connected;
        self.client = client;
        let mut buf = [0u8; CHUNK];
        // Guest output, while the backend has room for it.
        for i in 0..self.guests.len() {
            while self.backend.pending_output() < OUTPUT_BUFFER / 2 {
                match self.guests[i].read_input(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.backend.write_output(&buf[..n]);
                    }
                }
            }
        }
        // Input, through the escape keys to the front end with the focus.
        loop {
            match self.backend.read_input(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for action in self.core.input(&buf[..n]) {
                        self.act(action, vm);
                    }
                }
                Err(e) => {
                    log::warn!("chardev '{}': input lost: {e}", self.info.label);
                    break;
                }
            }
        }
        self.backend.flush_output();
        let room = self.backend.pending_output() < OUTPUT_BUFFER / 2;
        self.backend.sync_watches(ops, true);
        for guest in &mut self.guests {
            guest.flush_output();
            guest.sync_watches(ops, room);
        }
    }

    fn act(&mut self, action: MuxAction, vm: &mut VmControl) {
        match action {
            MuxAction::ToGuest(i, bytes) => {
                self.guests[i].write_output(&bytes);
            }
            MuxAction::ToBackend(text) => self.say(&text),
            MuxAction::MonitorFocused { first } => {
                if first {
                    let v = super::vm_control::version();
                    let (major, minor, micro) = (v.qemu.major, v.qemu.minor, v.qemu.micro);
                    self.say(&format!("QEMU {major}.{minor}.{micro} monitor - type 'help' for more information\r\n"));
                } else {
                    self.say("\r\n");
                }
                self.say(PROMPT);
            }
            MuxAction::ToMonitor(byte) => match self.readline.feed(byte) {
                Edit::Echo(text, ch) => {
                    self.say(text);
                    if let Some(ch) = ch {
                        self.say(ch.encode_utf8(&mut [0; 4]));
                    }
                }
                Edit::Line(line) => {
                    self.say("\r\n");
                    let output = hmp::run_line(vm, &line);
                    self.say(&output);
                    // After quit QEMU is gone: no new prompt.
                    if !matches!(line.split_whitespace().next(), Some("quit" | "q")) {
                        self.say(PROMPT);
                    }
                }
            },
            MuxAction::Quit => vm.machine.request_exit(VmExit::Quit),
        }
    }

    /// At exit: forwards what the guests wrote last and gives the backend up
    /// to `timeout` to take it (and a monitor's last words).
    pub fn drain(&mut self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = [0u8; CHUNK];
        for guest in &mut self.guests {
            guest.flush_output();
            while let Ok(n @ 1..) = guest.read_input(&mut buf) {
                self.backend.write_output(&buf[..n]);
            }
        }
        while self.backend.pending_output() > 0 && std::time::Instant::now() < deadline {
            self.backend.flush_output();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn say(&mut self, text: &str) {
        self.backend.write_output(text.as_bytes());
    }
}

/// Opens a front end's chardev: its own backend, or, for a mux's front end (`MuxPort`),
/// a port of its mux in `muxes`.
pub(crate) fn open_chardev(cfg: &ChardevConfig, muxes: &mut [Mux]) -> Result<Chardev, Error> {
    match &cfg.backend {
        ChardevBackend::MuxPort(n) => {
            let mux = muxes.get_mut(*n).ok_or_else(|| ConfigError::NoMux { id: cfg.id.clone(), index: *n })?;
            mux.attach(&cfg.id)
        }
        _ => open_backend(cfg),
    }
}
