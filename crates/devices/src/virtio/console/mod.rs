//! virtio-console (virtio 1.x §5.3) with a single port and no
//! VIRTIO_CONSOLE_F_MULTIPORT, which Linux makes its `hvc0`. Queue 0 is the
//! receiveq (host to guest), queue 1 the transmitq (guest to host); both
//! carry bytes to and from a `Chardev`. No feature beyond VERSION_1 is
//! offered, so the configuration space (cols, rows, max_nr_ports,
//! emerg_wr) reads as zeros.
//!
//! Flow control loses no byte either way while the chardev has a peer
//! (what it does with output nobody receives is up to the chardev: dropped):
//! * Transmit: a chain is completed once all its bytes were taken by the
//!   chardev. When the chardev's output buffer is full (its peer is slow),
//!   the chain is kept half-sent and resumed when the chardev drains; the
//!   guest waits, as it would for a slow UART.
//! * Receive: input is read from the chardev only while the guest has
//!   receive buffers. Input read when there turned out to be none is kept
//!   (`pending`) and the chardev's input is not watched until the guest
//!   adds buffers; meanwhile further input waits in the kernel's buffers.
//!
//! One turn of the event loop moves at most `BUDGET` bytes each way; when
//! there is more, the device re-kicks its own queue event so that other
//! devices get their turn in between.

mod multiport;
mod state;
#[cfg(test)]
mod tests;

pub use multiport::{MultiportConsole, MultiportState, PortBackend, PortState};
pub use state::{ConsoleState, TxChainState};

use super::{read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::chardev::Chardev;
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::{QueueError, Virtqueue};
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::collections::VecDeque;
use virtio_bindings::virtio_ids::VIRTIO_ID_CONSOLE;

use vm_memory::{Address, Bytes, GuestAddress};

pub(super) const QUEUE_SIZE: u16 = 128;
const VRING_AVAIL_F_NO_INTERRUPT: u16 = virtio_bindings::virtio_ring::VRING_AVAIL_F_NO_INTERRUPT as u16;
pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
/// Bytes moved per read or write: a page, the size of Linux's buffers.
pub(super) const CHUNK: usize = 4096;
/// Most bytes moved in each direction per turn of the event loop.
const BUDGET: usize = 256 << 10;
/// cols, rows (le16), max_nr_ports, emerg_wr (le32): all unused here.
const CONFIG_SIZE: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("virtio-console: cannot create its activation eventfd: {0}")]
    Activation(#[source] std::io::Error),
}

/// Why a console stops serving its queues until the driver resets it: a ring is not what
/// the guest promised. Only ever made once per device (it is then broken), so the data
/// path's success returns carry no more than before.
#[derive(Debug, thiserror::Error)]
pub(super) enum QueueFault {
    #[error("bad avail ring ({0})")]
    Avail(#[source] QueueError),
    #[error("cannot complete transmit chain {head} ({source})")]
    Transmit { head: u16, source: QueueError },
    #[error("cannot complete receive chain {head} ({source})")]
    Receive { head: u16, source: QueueError },
    #[error("control transmit chain {head} ({source})")]
    ControlTransmit { head: u16, source: QueueError },
    #[error("control receive chain {head} ({source})")]
    ControlReceive { head: u16, source: QueueError },
}

/// A transmit chain the chardev has not taken all of yet.
pub(super) struct TxChain {
    head: u16,
    /// The chain's device-readable buffers.
    segments: Vec<(GuestAddress, u32)>,
    /// Next byte to send: segment index and offset in it.
    index: usize,
    offset: u32,
}

/// What one pass over a queue did.
#[derive(Default)]
pub(super) struct Progress {
    /// Buffers were put in the used ring.
    pub(super) used: bool,
    /// The budget ran out with work left.
    pub(super) more: bool,
}

pub struct Console {
    chardev: Chardev,
    activation: Activation,
    /// Set once the device stopped serving its queues (needs a reset).
    broken: bool,
    /// Host input read from the chardev but not yet in a guest buffer.
    pending: VecDeque<u8>,
    /// The guest had no receive buffer when input was there: input is not
    /// watched until the guest notifies the receiveq.
    rx_starved: bool,
    tx: Option<TxChain>,
}

impl Console {
    pub fn new(chardev: Chardev) -> Result<Console, ConsoleError> {
        Ok(Console {
            chardev,
            activation: Activation::new().map_err(ConsoleError::Activation)?,
            broken: false,
            pending: VecDeque::new(),
            rx_starved: false,
            tx: None,
        })
    }

    pub fn chardev(&self) -> &Chardev {
        &self.chardev
    }

    fn wants_input(&self) -> bool {
        self.activation.active.is_some() && !self.broken && !self.rx_starved && self.pending.is_empty()
    }

    /// Moves bytes both ways as far as the guest's buffers, the chardev and
    /// the budget allow; then interrupts the guest once if it wants it.
    fn serve(&mut self) {
        if self.broken {
            return;
        }
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let [rxq, txq] = ctx.queues.as_mut_slice() else { return };
        let tx = transmit(&mem, txq, &mut self.tx, &mut self.chardev);
        let rx = receive(&mem, rxq, &mut self.pending, &mut self.rx_starved, &mut self.chardev);
        let mut interrupt = false;
        let mut failure = None;
        for (result, queue, index) in [(tx, &mut *txq, TX_QUEUE), (rx, &mut *rxq, RX_QUEUE)] {
            match result {
                Ok(progress) => {
                    if progress.used {
                        interrupt |= wants_interrupt(&mem, queue);
                    }
                    if progress.more {
                        // Come back after the other devices had their turn.
                        if let Some(evt) = ctx.queue_events.get(index) {
                            let _ = evt.write(1);
                        }
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        if interrupt {
            ctx.interrupt.signal_used_queue();
        }
        if let Some(e) = failure {
            // The rings are not what the guest promised: stop rather than guess.
            log::warn!("virtio-console: {e}; device needs reset");
            self.broken = true;
            ctx.interrupt.signal_needs_reset();
        }
    }
}

/// Whether the driver wants an interrupt for the buffers just used: its
/// used_event (EVENT_IDX) or, without it, VRING_AVAIL_F_NO_INTERRUPT, which
/// virtio-queue does not look at (a driver that polls a queue sets it to
/// spare itself an interrupt per completed buffer).
pub(super) fn wants_interrupt(mem: &GuestMemoryMmap, queue: &mut Virtqueue) -> bool {
    // Called in any case: it also resets virtio-queue's EVENT_IDX accounting.
    if !queue.needs_notification(mem).unwrap_or(true) {
        return false;
    }
    if queue.event_idx_enabled() {
        return true;
    }
    let flags = mem.read_obj::<u16>(GuestAddress(queue.avail_ring())).map_or(0, u16::from_le);
    flags & VRING_AVAIL_F_NO_INTERRUPT == 0
}

/// Next chain of `queue`, or an error if its avail ring is corrupt.
pub(super) fn next_chain<'m>(
    mem: &'m GuestMemoryMmap,
    queue: &mut Virtqueue,
) -> Result<Option<crate::virtio::queue::Chain<&'m GuestMemoryMmap>>, QueueFault> {
    match queue.iter(mem) {
        Ok(mut iter) => Ok(iter.next()),
        Err(e) => Err(QueueFault::Avail(e)),
    }
}

/// Sends the transmitq's buffers to the chardev, resuming a half-sent chain.
pub(super) fn transmit(
    mem: &GuestMemoryMmap,
    queue: &mut Virtqueue,
    current: &mut Option<TxChain>,
    chardev: &mut Chardev,
) -> Result<Progress, QueueFault> {
    let mut progress = Progress::default();
    let mut budget = BUDGET;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if current.is_none() {
            let Some(chain) = next_chain(mem, queue)? else { break };
            let head = chain.head_index();
            // Device-writable buffers in a transmit chain are ignored.
            let segments = chain.readable().map(|d| (d.addr(), d.len())).collect();
            *current = Some(TxChain { head, segments, index: 0, offset: 0 });
        }
        let Some(tx) = current.as_mut() else { break };
        while let Some(&(addr, len)) = tx.segments.get(tx.index) {
            if tx.offset >= len {
                tx.index += 1;
                tx.offset = 0;
                continue;
            }
            if budget == 0 {
                progress.more = true;
                return Ok(progress);
            }
            let n = ((len - tx.offset) as usize).min(CHUNK).min(budget);
            let read = addr.checked_add(u64::from(tx.offset)).map(|at| mem.read_slice(&mut buf[..n], at));
            if !matches!(read, Some(Ok(()))) {
                // Outside guest memory: the rest of the chain is not sent.
                break;
            }
            let taken = chardev.write_output(&buf[..n]);
            tx.offset += taken as u32;
            budget -= taken;
            if taken < n {
                // The chardev is full; it reports when it drained.
                return Ok(progress);
            }
        }
        let head = tx.head;
        *current = None;
        queue.add_used(mem, head, 0).map_err(|source| QueueFault::Transmit { head, source })?;
        progress.used = true;
    }
    Ok(progress)
}

/// Fills the receiveq's buffers with pending input, then with what the
/// chardev has. Input read when the guest turns out to have no buffer stays
/// in `pending`, and `starved` is set.
pub(super) fn receive(
    mem: &GuestMemoryMmap,
    queue: &mut Virtqueue,
    pending: &mut VecDeque<u8>,
    starved: &mut bool,
    chardev: &mut Chardev,
) -> Result<Progress, QueueFault> {
    let mut progress = Progress::default();
    let mut delivered = 0;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if pending.is_empty() {
            if delivered >= BUDGET {
                progress.more = true;
                break;
            }
            match chardev.read_input(&mut buf) {
                Ok(0) => break,
                Ok(n) => pending.extend(&buf[..n]),
                Err(e) => {
                    log::warn!("virtio-console: input from chardev '{}' failed: {e}", chardev.label());
                    break;
                }
            }
        }
        let Some(chain) = next_chain(mem, queue)? else {
            *starved = true;
            break;
        };
        let head = chain.head_index();
        let data = pending.make_contiguous();
        let mut written = 0;
        for desc in chain.writable() {
            let n = (desc.len() as usize).min(data.len() - written);
            if n == 0 {
                break;
            }
            if mem.write_slice(&data[written..written + n], desc.addr()).is_err() {
                // Outside guest memory: what is not written stays pending.
                break;
            }
            written += n;
        }
        pending.drain(..written);
        delivered += written;
        queue.add_used(mem, head, written as u32).map_err(|source| QueueFault::Receive { head, source })?;
        progress.used = true;
    }
    Ok(progress)
}

impl VirtioDevice for Console {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&[0; CONFIG_SIZE], offset, data);
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.rx_starved = false;
        self.tx = None;
        self.activation.activate(ctx)
    }

    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        // A half-sent chain belongs to the old rings; input already read
        // from the host stays pending for the next driver.
        self.tx = None;
        self.rx_starved = false;
        true
    }

    fn active_queues_now(&self) -> Option<&[Virtqueue]> {
        self.activation.queues()
    }

    fn save(&mut self) -> Result<super::VirtioState, crate::state::StateError> {
        Ok(self.save_state())
    }

    fn restore(&mut self, state: super::VirtioState) -> Result<(), crate::state::StateError> {
        self.restore_state(state)
    }
}

impl MutEventSubscriber for Console {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.chardev.sync_watches(ops, false);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            self.activation.on_wake(ops);
        } else if !self.chardev.handle_event(&events) {
            let queue = events.data() as usize;
            if let Some(evt) = self.activation.active.as_ref().and_then(|ctx| ctx.queue_events.get(queue)) {
                let _ = evt.read();
            }
            if queue == RX_QUEUE {
                // The guest added receive buffers (or says it did).
                self.rx_starved = false;
            }
        }
        self.serve();
        let want_input = self.wants_input();
        self.chardev.sync_watches(ops, want_input);
    }
}
