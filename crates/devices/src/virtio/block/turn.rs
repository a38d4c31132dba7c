//! One turn of the device thread for a drive: the event that woke it (a queue's kick,
//! the engine's eventfd, a rate limit's timer, the activation's wake-up), then what
//! the engine finished, completed into the used rings with one interrupt.
//!
//! With an engine (io_uring, the thread pool) a turn holds the engine's wake-ups
//! while it runs: what finishes meanwhile is taken by the turn itself (right after
//! each submit, and once more at its end, after wake-ups are back on), so a batch the
//! kernel carried out within io_uring_enter costs neither an eventfd write nor a
//! return to epoll and a `read`, and reaches the guest in the interrupt of the chains
//! that asked for it.

use super::error::QueueFault;
use super::{engine, Block};
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::io;
use std::os::fd::AsRawFd;

/// Which of the engine's finished requests [`Block::complete`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reap {
    /// The engine's eventfd fired: read it, take what finished.
    Woken,
    /// What finished already, by memory alone (right after a submit, before sleeping).
    Ready,
    /// Everything in flight, waiting for it (reset, snapshot, drop).
    All,
}

impl Block {
    /// Completes what the engine finished, as `how` says: status bytes and used rings.
    /// Returns the queues given used entries (bit q: queue q), and for `Reap::All`
    /// whether everything ended in time. The caller signals them ([`Self::notify`]).
    pub(super) fn complete(&mut self, how: Reap) -> (u32, io::Result<()>) {
        let Some(mut engine) = self.worker.engine.take() else { return (0, Ok(())) };
        let mut used = 0u32;
        let mut broken = None;
        let worker = &mut self.worker;
        let mut finish = |done: engine::Completion| {
            let Some(ctx) = self.activation.active.as_mut() else { return };
            let (head, len) = worker.complete(&ctx.mem, &done);
            let Some(queue) = ctx.queues.get_mut(usize::from(done.queue)) else { return };
            match queue.add_used(&ctx.mem, head, len) {
                Ok(()) => used |= 1 << done.queue,
                Err(e) => broken = Some(e),
            }
        };
        let drained = match how {
            Reap::Woken => {
                engine.reap(&mut finish);
                Ok(())
            }
            Reap::Ready => {
                engine.take_ready(&mut finish);
                Ok(())
            }
            Reap::All => engine.drain(&mut finish),
        };
        self.worker.engine = Some(engine);
        if let Some(e) = broken {
            self.needs_reset(QueueFault::Used(e));
        }
        (used, drained)
    }

    /// Completes everything in flight (reset, snapshot, drop) and signals it.
    pub(super) fn complete_all(&mut self) -> io::Result<()> {
        let (used, drained) = self.complete(Reap::All);
        self.notify(used);
        drained
    }

    /// One interrupt for the used entries just added to the queues of `used`, unless
    /// the driver suppressed it on every one of them (EVENT_IDX's used_event or the
    /// used ring's flag).
    pub(super) fn notify(&mut self, used: u32) {
        if used == 0 {
            return;
        }
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let notify = ctx.queues.iter_mut().enumerate().filter(|(q, _)| used & (1 << q) != 0);
        // Every such queue's used_event is checked (EVENT_IDX must see each update).
        let wanted = notify.fold(false, |any, (_, q)| q.needs_notification(&ctx.mem).unwrap_or(true) || any);
        if wanted {
            ctx.interrupt.signal_used_queue();
        }
    }

    /// The device stops serving its queues until the driver resets it.
    pub(super) fn needs_reset(&mut self, why: QueueFault) {
        log::warn!("virtio-blk {}: {why}; device needs reset", self.worker.name);
        self.broken = true;
        if let Some(ctx) = &self.activation.active {
            ctx.interrupt.signal_needs_reset();
        }
    }

    /// Before the thread sleeps: the engine's wake-ups back on, and what finished while
    /// they were held completed now (it wrote no eventfd).
    fn end_turn(&mut self) {
        while self.worker.engine.as_mut().is_some_and(|e| e.release_wakeups()) {
            let (used, _) = self.complete(Reap::Ready);
            self.notify(used);
        }
        if self.starved && self.worker.engine.as_ref().is_some_and(|e| !e.full()) {
            // The engine filled up and then finished requests within this turn, writing
            // no eventfd: the wake-up serves the queues left waiting on the next turn.
            self.starved = false;
            self.activation.wake();
        }
    }

    /// The event that woke the thread.
    fn dispatch(&mut self, events: Events, ops: &mut EventOps) {
        if self.worker.engine.as_ref().is_some_and(|e| e.event().as_raw_fd() == events.fd()) {
            // Reaping cannot fail; only a drain waits.
            let (used, _) = self.complete(Reap::Woken);
            self.notify(used);
            if std::mem::take(&mut self.starved) {
                self.process_all();
            }
            return;
        }
        if self.waker.is_expiry(&events) {
            self.process_all();
        } else if self.activation.is_wake_event(&events) {
            // Activated (a reset clears `broken`), the limits changed, or a starved
            // engine has room again: every queue.
            if self.activation.on_wake(ops) {
                self.process_all();
            }
        } else if let Some(ctx) = &self.activation.active {
            // A queue's notification, registered with its index as the event data.
            let q = events.data() as usize;
            if let Some(evt) = ctx.queue_events.get(q) {
                let _ = evt.read();
                self.worker.metrics.queue_event_count.inc();
                if !self.broken {
                    self.process_queue(q);
                }
            }
        }
    }
}

impl MutEventSubscriber for Block {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.waker.watch(ops);
        if let Some(engine) = &self.worker.engine {
            if let Err(e) = ops.add(Events::new(engine.event(), EventSet::IN)) {
                log::error!("virtio-blk {}: cannot watch the engine's eventfd: {e:?}", self.worker.name);
            }
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if let Some(engine) = self.worker.engine.as_mut() {
            engine.hold_wakeups();
        }
        self.dispatch(events, ops);
        self.end_turn();
        // A limit that blocked for the first time made the refill timer.
        self.waker.watch(ops);
    }
}
