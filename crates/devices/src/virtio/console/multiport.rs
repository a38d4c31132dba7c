//! virtio-console with VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.x §5.3.6), as
//! QEMU's virtio-serial: up to `max_ports` ports on one device, each a
//! virtconsole (the guest's hvcN) or a named virtserialport
//! (/dev/virtio-ports/NAME), each on its own chardev.
//!
//! Queues: port 0's receiveq and transmitq (0, 1), the control receiveq and
//! transmitq (2, 3), then port N's pair at 2N+2, 2N+3. The control queues
//! carry 8-byte messages (`id: le32, event: le16, value: le16`):
//! the driver says DEVICE_READY, the device announces each port with
//! DEVICE_ADD; on PORT_READY the device says CONSOLE_PORT for a console,
//! PORT_NAME (name bytes after the header) for a named port and PORT_OPEN 1
//! if the host side is connected. Malformed control messages (short, unknown
//! port, unknown event) are dropped with a warning and the chain completed,
//! as QEMU does.
//!
//! Open and close, as QEMU's virtio-serial-bus.c and virtio-console.c:
//! * Host side ("host connected"): a virtconsole is always connected. A
//!   virtserialport is connected while its chardev is open
//!   (`Chardev::is_open`: a socket client, a pty user; never `null`); each
//!   change after the guest readied the port is sent as PORT_OPEN 1 or 0 (a
//!   client replaced within one turn: 0 then 1), as QEMU's CHR_EVENT_OPENED
//!   and CLOSED do. Output to a port nobody is connected to is dropped by
//!   the chardev, as QEMU discards it.
//! * Guest side: the driver's PORT_OPEN opens or closes the port (Linux
//!   opens a console itself). With MULTIPORT negotiated, host input for a
//!   port the guest has closed is not read at all (QEMU's
//!   `virtio_serial_guest_ready` returns 0): it waits in the backend (the
//!   socket, the pty) and is delivered once the guest opens the port; input
//!   already read stays with the device meanwhile. As QEMU, each PORT_OPEN of
//!   a port with a device id, and the close a device reset implies for an
//!   open one, is announced (QMP VSERPORT_CHANGE, through `GuestEvents`).
//!   QEMU also calls `qemu_chr_fe_set_open`, which only spice backends act
//!   on (microvm has none).
//!
//! Data moves per port exactly as in the one-port console (`transmit`,
//! `receive`).

mod state;

pub use state::{MultiportState, PortState};

use super::{next_chain, receive, transmit, wants_interrupt, QueueFault, TxChain, QUEUE_SIZE};
use crate::chardev::Chardev;
use crate::guest_events::{GuestEvent, GuestEvents};
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Virtqueue;
use crate::virtio::{
    read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VirtioState, VIRTIO_F_VERSION_1,
};
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::collections::VecDeque;
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_CONSOLE;

use vm_memory::Bytes;

/// VIRTIO_CONSOLE_F_MULTIPORT.
pub const F_MULTIPORT: u64 = 1 << 1;
const CONTROL_RX: usize = 2;
const CONTROL_TX: usize = 3;
/// Size of a control message header.
const CONTROL_LEN: usize = 8;
/// Most ports: QEMU's limit (the 32nd would need a 34th queue pair).
pub const MAX_PORTS: u32 = 31;

// Control events (§5.3.6.2).
pub const DEVICE_READY: u16 = 0;
pub const DEVICE_ADD: u16 = 1;
pub const PORT_READY: u16 = 3;
pub const CONSOLE_PORT: u16 = 4;
pub const PORT_OPEN: u16 = 6;
pub const PORT_NAME: u16 = 7;

/// One port as the VMM sets it up.
pub struct PortBackend {
    pub chardev: Chardev,
    /// The port's `-device ...,id=`: its open and close are announced under it.
    pub id: Option<String>,
    /// `virtserialport,name=`: the guest's /dev/virtio-ports/NAME.
    pub name: Option<String>,
    /// A virtconsole (hvcN) rather than a plain serial port.
    pub console: bool,
}

struct Port {
    backend: PortBackend,
    pending: VecDeque<u8>,
    rx_starved: bool,
    tx: Option<TxChain>,
    /// The guest has the port open (its last PORT_OPEN).
    guest_open: bool,
    /// The driver sent PORT_READY: host-side changes are reported from then on.
    ready: bool,
    /// What the guest was (or will be, at PORT_READY) told of the host side.
    host_open: bool,
    /// The chardev's `clients_accepted` when `host_open` was last looked at.
    host_clients: u64,
}

impl Port {
    fn new(backend: PortBackend) -> Port {
        let host_clients = backend.chardev.clients_accepted();
        let mut port = Port {
            backend,
            pending: VecDeque::new(),
            rx_starved: false,
            tx: None,
            guest_open: false,
            ready: false,
            host_open: false,
            host_clients,
        };
        port.host_open = port.host_connected();
        port
    }

    /// QEMU's `host_connected`: always for a console, else the chardev's state.
    fn host_connected(&self) -> bool {
        self.backend.console || self.backend.chardev.is_open()
    }

    /// The PORT_OPEN values to send the driver for changes of the host side
    /// since the last call (none before PORT_READY, which reports the state).
    fn host_changes(&mut self) -> Vec<u16> {
        let open = self.host_connected();
        let clients = self.backend.chardev.clients_accepted();
        let mut changes = Vec::new();
        // A new client replacing the last one is a close and an open (consoles see neither).
        let replaced = open && self.host_open && !self.backend.console && clients != self.host_clients;
        if open != self.host_open || replaced {
            if self.host_open {
                changes.push(0);
            }
            if open {
                changes.push(1);
            }
            log::info!(
                "virtio-serial: chardev '{}' {}",
                self.backend.chardev.label(),
                if open { "connected" } else { "disconnected" }
            );
        }
        self.host_open = open;
        self.host_clients = clients;
        if self.ready {
            changes
        } else {
            Vec::new()
        }
    }

    fn reset(&mut self) {
        self.tx = None;
        self.rx_starved = false;
        self.guest_open = false;
        self.ready = false;
    }
}

pub struct MultiportConsole {
    ports: Vec<Port>,
    max_ports: u32,
    queue_sizes: Vec<u16>,
    activation: Activation,
    broken: bool,
    /// The driver negotiated MULTIPORT, so a port's input waits for the guest
    /// to open it.
    multiport: bool,
    /// Control messages for the driver, waiting for control receive buffers.
    control_out: VecDeque<Vec<u8>>,
    /// Where the guest's opening and closing of ports go; none in tests.
    events: Option<Arc<GuestEvents>>,
}

/// One control message, header then `extra` bytes.
pub fn control_message(id: u32, event: u16, value: u16, extra: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTROL_LEN + extra.len());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&event.to_le_bytes());
    m.extend_from_slice(&value.to_le_bytes());
    m.extend_from_slice(extra);
    m
}

/// Receive and transmit queue of port `port`.
fn port_queues(port: usize) -> (usize, usize) {
    if port == 0 {
        (0, 1)
    } else {
        (2 * port + 2, 2 * port + 3)
    }
}

impl MultiportConsole {
    /// `max_ports` (at least the number of ports, at most [`MAX_PORTS`]) is
    /// what the guest reads in the configuration space.
    pub fn new(ports: Vec<PortBackend>, max_ports: u32) -> Result<MultiportConsole, super::ConsoleError> {
        let max_ports = max_ports.clamp(ports.len().max(1) as u32, MAX_PORTS);
        let queue_count = 2 * (max_ports as usize + 1);
        Ok(MultiportConsole {
            ports: ports.into_iter().map(Port::new).collect(),
            max_ports,
            queue_sizes: vec![QUEUE_SIZE; queue_count],
            activation: Activation::new().map_err(super::ConsoleError::Activation)?,
            broken: false,
            multiport: false,
            control_out: VecDeque::new(),
            events: None,
        })
    }

    /// Announces the guest's opening and closing of ports with an id through `events`.
    pub fn report_to(&mut self, events: Arc<GuestEvents>) {
        self.events = Some(events);
    }

    fn announce(&self, port: usize) {
        let port = &self.ports[port];
        if let (Some(events), Some(id)) = (&self.events, &port.backend.id) {
            events.send(GuestEvent::PortOpen { id: id.clone(), open: port.guest_open });
        }
    }

    /// Every port back to its state before the driver: the guest has none open (QEMU's
    /// `guest_reset`, which announces each one that was).
    fn reset_ports(&mut self) {
        for id in 0..self.ports.len() {
            let was_open = self.ports[id].guest_open;
            self.ports[id].reset();
            if was_open {
                self.announce(id);
            }
        }
    }

    /// Whether the guest has port `id` open.
    pub fn guest_open(&self, id: usize) -> bool {
        self.ports.get(id).is_some_and(|p| p.guest_open)
    }

    /// Whether the host side of port `id` is connected (as the guest was told).
    pub fn host_open(&self, id: usize) -> bool {
        self.ports.get(id).is_some_and(|p| p.host_open)
    }

    /// Queues PORT_OPEN messages for host-side changes; true if there were any.
    fn report_host_changes(&mut self) -> bool {
        if self.activation.active.is_none() || !self.multiport {
            return false;
        }
        let mut any = false;
        for (id, port) in self.ports.iter_mut().enumerate() {
            for value in port.host_changes() {
                self.control_out.push_back(control_message(id as u32, PORT_OPEN, value, &[]));
                any = true;
            }
        }
        any
    }

    /// Whether `port` takes host input now: the guest has buffers, nothing
    /// read is still waiting, and (with MULTIPORT) the guest has it open.
    fn wants_input(&self, port: &Port) -> bool {
        !port.rx_starved && port.pending.is_empty() && (port.guest_open || !self.multiport)
    }

    /// Handles one control message from the driver.
    fn control(&mut self, msg: &[u8]) {
        if msg.len() < CONTROL_LEN {
            log::warn!("virtio-serial: control message of {} bytes dropped (8 needed)", msg.len());
            return;
        }
        let id = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let event = u16::from_le_bytes([msg[4], msg[5]]);
        let value = u16::from_le_bytes([msg[6], msg[7]]);
        match event {
            DEVICE_READY if value == 1 => {
                for port in 0..self.ports.len() {
                    self.control_out.push_back(control_message(port as u32, DEVICE_ADD, 1, &[]));
                }
            }
            DEVICE_READY => log::warn!("virtio-serial: the driver failed to set up the device"),
            PORT_READY | PORT_OPEN if id as usize >= self.ports.len() => {
                log::warn!("virtio-serial: control event {event} for port {id}, which does not exist; dropped");
            }
            PORT_READY if value == 1 => {
                let port = &mut self.ports[id as usize];
                port.ready = true;
                // Changes before now are in the state reported here.
                port.host_changes();
                let backend = &port.backend;
                if backend.console {
                    self.control_out.push_back(control_message(id, CONSOLE_PORT, 1, &[]));
                }
                if let Some(name) = &backend.name {
                    self.control_out.push_back(control_message(id, PORT_NAME, 1, name.as_bytes()));
                }
                if port.host_open {
                    self.control_out.push_back(control_message(id, PORT_OPEN, 1, &[]));
                }
            }
            PORT_READY => log::warn!("virtio-serial: the driver failed to set up port {id}"),
            PORT_OPEN => {
                let port = &mut self.ports[id as usize];
                port.guest_open = value != 0;
                log::info!(
                    "virtio-serial: the guest {} port {id} (chardev '{}')",
                    if port.guest_open { "opened" } else { "closed" },
                    port.backend.chardev.label()
                );
                self.announce(id as usize);
            }
            other => log::warn!("virtio-serial: unknown control event {other} for port {id}; dropped"),
        }
    }

    /// Reads the driver's control messages, then delivers ours.
    fn serve_control(&mut self, mem: &GuestMemoryMmap, queues: &mut [Virtqueue]) -> Result<bool, QueueFault> {
        let mut used = false;
        while let Some(chain) = next_chain(mem, &mut queues[CONTROL_TX])? {
            let head = chain.head_index();
            let mut msg = Vec::new();
            for d in chain.readable() {
                let len = (d.len() as usize).min(4096 - msg.len().min(4096));
                let mut buf = vec![0u8; len];
                if mem.read_slice(&mut buf, d.addr()).is_err() {
                    break;
                }
                msg.extend_from_slice(&buf);
            }
            queues[CONTROL_TX].add_used(mem, head, 0).map_err(|source| QueueFault::ControlTransmit { head, source })?;
            used = true;
            self.control(&msg);
        }
        let mut rx_used = false;
        while let Some(msg) = self.control_out.front() {
            let Some(chain) = next_chain(mem, &mut queues[CONTROL_RX])? else { break };
            let head = chain.head_index();
            let mut written = 0;
            for d in chain.writable() {
                let n = (d.len() as usize).min(msg.len() - written);
                if n == 0 || mem.write_slice(&msg[written..written + n], d.addr()).is_err() {
                    break;
                }
                written += n;
            }
            if written < msg.len() {
                log::warn!("virtio-serial: control receive buffer too small ({written} of {} bytes)", msg.len());
            }
            queues[CONTROL_RX]
                .add_used(mem, head, written as u32)
                .map_err(|source| QueueFault::ControlReceive { head, source })?;
            self.control_out.pop_front();
            rx_used = true;
        }
        let mut interrupt = false;
        if used {
            interrupt |= wants_interrupt(mem, &mut queues[CONTROL_TX]);
        }
        if rx_used {
            interrupt |= wants_interrupt(mem, &mut queues[CONTROL_RX]);
        }
        Ok(interrupt)
    }

    fn serve(&mut self) {
        if self.broken {
            return;
        }
        // Out of `activation` for the turn, so that the ports can be borrowed beside it.
        let Some(mut ctx) = self.activation.active.take() else { return };
        self.serve_with(&mut ctx);
        self.activation.active = Some(ctx);
    }

    fn serve_with(&mut self, ctx: &mut ActivateContext) {
        let mem = ctx.mem.clone();
        let mut interrupt = false;
        let mut failure = None;
        let mut again = Vec::new();
        let queues = &mut ctx.queues;
        match self.serve_control(&mem, queues) {
            Ok(i) => interrupt |= i,
            Err(e) => failure = Some(e),
        }
        let multiport = self.multiport;
        for (id, port) in self.ports.iter_mut().enumerate() {
            let (rxq, txq) = port_queues(id);
            if txq >= queues.len() {
                break;
            }
            let tx = transmit(&mem, &mut queues[txq], &mut port.tx, &mut port.backend.chardev);
            // A port the guest has closed is not read from: its input waits in the backend.
            let rx = if port.guest_open || !multiport {
                receive(&mem, &mut queues[rxq], &mut port.pending, &mut port.rx_starved, &mut port.backend.chardev)
            } else {
                Ok(Default::default())
            };
            for (result, q) in [(tx, txq), (rx, rxq)] {
                match result {
                    Ok(progress) => {
                        if progress.used {
                            interrupt |= wants_interrupt(&mem, &mut queues[q]);
                        }
                        if progress.more {
                            again.push(q);
                        }
                    }
                    Err(e) => failure = Some(e),
                }
            }
        }
        for q in again {
            if let Some(evt) = ctx.queue_events.get(q) {
                let _ = evt.write(1);
            }
        }
        if interrupt {
            ctx.interrupt.signal_used_queue();
        }
        if let Some(e) = failure {
            log::warn!("virtio-serial: {e}; device needs reset");
            self.broken = true;
            ctx.interrupt.signal_needs_reset();
        }
    }
}

impl VirtioDevice for MultiportConsole {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | F_MULTIPORT
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // cols, rows (le16), max_nr_ports (le32), emerg_wr (le32).
        let mut config = [0u8; 12];
        config[4..8].copy_from_slice(&self.max_ports.to_le_bytes());
        read_config_bytes(&config, offset, data);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.multiport = ctx.acked_features & F_MULTIPORT != 0;
        self.control_out.clear();
        self.reset_ports();
        self.activation.activate(ctx)
    }

    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.control_out.clear();
        self.reset_ports();
        true
    }

    fn active_queues_now(&self) -> Option<&[Virtqueue]> {
        self.activation.queues()
    }

    fn save(&mut self) -> Result<VirtioState, crate::state::StateError> {
        Ok(self.save_state())
    }

    fn restore(&mut self, state: VirtioState) -> Result<(), crate::state::StateError> {
        self.restore_state(state)
    }
}

impl MutEventSubscriber for MultiportConsole {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        for port in &mut self.ports {
            port.backend.chardev.sync_watches(ops, false);
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            self.activation.on_wake(ops);
        } else {
            let mut chardev_event = false;
            for port in &mut self.ports {
                chardev_event |= port.backend.chardev.handle_event(&events);
            }
            if !chardev_event {
                let queue = events.data() as usize;
                if let Some(evt) = self.activation.active.as_ref().and_then(|ctx| ctx.queue_events.get(queue)) {
                    let _ = evt.read();
                }
                // The guest added receive buffers (or says it did) to this port's receiveq.
                if let Some(port) = self.ports.iter_mut().enumerate().find(|(id, _)| port_queues(*id).0 == queue) {
                    port.1.rx_starved = false;
                }
            }
        }
        self.report_host_changes();
        self.serve();
        // Serving may have found a peer gone (end of input, a failed write).
        if self.report_host_changes() {
            self.serve();
        }
        let live = self.activation.active.is_some() && !self.broken;
        for id in 0..self.ports.len() {
            let want = live && self.wants_input(&self.ports[id]);
            self.ports[id].backend.chardev.sync_watches(ops, want);
        }
    }
}

#[cfg(test)]
#[path = "multiport_tests/mod.rs"]
mod tests;
