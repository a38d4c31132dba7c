//! One queue pair's state: its tap queue (or socket), how that is watched in the event
//! loop, and what its receive side holds back. The device (`device.rs`) owns the pairs;
//! their data path (`datapath.rs`) moves the frames.

use super::backend::{Backend, RX_BUFFER_LEN};
use event_manager::EventSet;

/// A tap fd in the event loop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum TapWatch {
    /// Not registered: before `init`, or a detached queue of a multiqueue tap.
    Unregistered,
    /// Registered, asking for these events (readable while frames can go
    /// to the guest; writable while a stream socket holds part of a frame).
    Watching(EventSet),
    /// The tap failed or disappeared: unregistered for good.
    Gone,
}

/// One receive/transmit queue pair and the tap queue (or socket) behind it.
pub(super) struct Pair {
    pub(super) tap: Backend,
    pub(super) watch: TapWatch,
    /// Set when the tap cannot be read any more; the event handler then
    /// unregisters it.
    pub(super) failed: bool,
    /// Whether the tap queue is attached to its interface (a multiqueue tap's queues
    /// beyond those the guest enabled are detached).
    pub(super) attached: bool,
    pub(super) rx_buf: Vec<u8>,
    /// Length of a frame read from the tap and not yet delivered: the guest
    /// had no buffers. While it is there, the tap is not read.
    pub(super) rx_pending: Option<usize>,
    /// The pending frame has been charged to the RX rate limit (it may still wait for
    /// buffers: it is not charged twice).
    pub(super) rx_paid: bool,
    pub(super) rx_broken: bool,
    pub(super) tx_broken: bool,
}

impl Pair {
    pub(super) fn new(tap: Backend) -> Pair {
        Pair {
            tap,
            watch: TapWatch::Unregistered,
            failed: false,
            attached: true,
            rx_buf: vec![0; RX_BUFFER_LEN],
            rx_pending: None,
            rx_paid: false,
            rx_broken: false,
            tx_broken: false,
        }
    }

    /// A new activation (or a reset): nothing pending, nothing broken.
    pub(super) fn clear(&mut self) {
        self.rx_pending = None;
        self.rx_paid = false;
        self.rx_broken = false;
        self.tx_broken = false;
    }
}
