//! How block requests reach the image: the `sync` engine serves each one with
//! preadv/pwritev on the device thread (see `disk.rs`); the `io_uring` engine
//! queues reads, writes and flushes on an io_uring and completes them when the
//! ring's eventfd (watched by the device thread's epoll) says so; the `threads`
//! engine (`pool.rs`) hands them to a pool of worker threads, completed through
//! the pool's eventfd the same way. Both engines with requests in flight are an
//! [`InFlight`] to the device.
//!
//! The ring is set up when the device is created, disabled until it is restricted
//! to the three operations the device uses (READV, WRITEV, FSYNC): what is
//! submitted through a ring does not pass the thread's seccomp filter, so the
//! kernel's own restriction list stands in for it.
//!
//! The io_uring path per batch, as QEMU's linux-io-uring.c and Firecracker's engine:
//! every chain of a kick is pushed, then one io_uring_enter submits them all. The
//! kernel carries out a page-cache read or write within that call, so its completion
//! is on the ring when the call returns: the device takes it at once, in the same
//! interrupt as the rest of the batch ([`InFlight::take_ready`]), rather than going
//! back to epoll to be woken by the eventfd. While the device thread is in a turn the
//! kernel does not write the eventfd at all ([`InFlight::hold_wakeups`]); before it
//! sleeps, wake-ups are on again and the ring is looked at once more.
//!
//! The image is not a registered file (IORING_REGISTER_FILES): the ring would then hold
//! the image's open file, and with it the drive's flock, until the kernel's teardown of
//! the ring, which runs after close() returns, so a drive opened again at once (the next
//! VM on the same image) would find it locked. That saves one file lookup per request,
//! nothing beside a system call.

use io_uring::{opcode, register::Restriction, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// The engine a drive's requests go through (`-drive aio=`, Firecracker's
/// `io_engine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// preadv/pwritev on the device thread, one request at a time.
    #[default]
    Sync,
    /// Reads, writes and flushes queued on an io_uring, many in flight.
    IoUring,
    /// Reads, writes and flushes handed to a pool of worker threads, many in flight
    /// (QEMU's `aio=threads`).
    Threads,
}

/// What the device does with an engine that carries requests out while its thread
/// goes on (io_uring, the thread pool): queue them, hand a batch over, take the
/// finished ones when the engine's eventfd fires, and wait for all (snapshot, reset).
pub(super) trait InFlight: Send {
    /// Written when requests finish; watched by the device thread's epoll.
    fn event(&self) -> &EventFd;
    /// Which request indexes are in flight.
    fn slots(&self) -> &Slots;
    fn in_flight(&self) -> usize {
        MAX_IN_FLIGHT - self.slots().free.len()
    }
    /// No room for one more request: the rest wait in the avail ring.
    fn full(&self) -> bool {
        self.in_flight() >= self.slots().limit
    }
    /// Queues one request; `iovs` is taken (and replaced with an empty vector) for
    /// the read or write buffers. Carried out from the next `submit`.
    fn push(&mut self, fd: RawFd, offset: u64, iovs: &mut Vec<libc::iovec>, request: Queued) -> io::Result<()>;
    /// Hands what was queued over (one system call or one wake-up per batch).
    fn submit(&mut self) -> io::Result<()>;
    /// Takes every finished request, on the device thread (which the eventfd woke: it
    /// is read so that epoll stops reporting it).
    fn reap(&mut self, done: &mut dyn FnMut(Completion));
    /// Takes the requests that finished already, without reading the eventfd: only
    /// memory, right after `submit` (io_uring completes page-cache hits within
    /// io_uring_enter). Engines that finish nothing on the device thread take nothing.
    fn take_ready(&mut self, _done: &mut dyn FnMut(Completion)) {}
    /// The device thread's turn begins: completions need not write the eventfd (the
    /// thread takes them itself), saving a wake-up and a `read` per turn.
    fn hold_wakeups(&mut self) {}
    /// The turn ends: completions write the eventfd again. `true` when some finished
    /// while wake-ups were held and are still to be taken (with wake-ups held again).
    fn release_wakeups(&mut self) -> bool {
        false
    }
    /// Waits until nothing is in flight, completing each request through `done`. Runs
    /// on threads whose filters allow neither `read` nor the engine's own calls (the
    /// VMM's for a snapshot, a vCPU's for a reset): it only reads memory and sleeps.
    fn drain(&mut self, done: &mut dyn FnMut(Completion)) -> io::Result<()>;
    /// Fewer in flight than the engine's own bound (a test queue holds few chains).
    #[cfg(test)]
    fn set_limit(&mut self, limit: usize);
    /// Batches handed over so far (io_uring_enter calls, pool wake-ups).
    #[cfg(test)]
    fn submits(&self) -> usize;
}

/// The indexes an engine gives its requests in flight (the ring's user data, the pool's
/// job number), at most [`MAX_IN_FLIGHT`] of them.
pub(super) struct Slots {
    free: Vec<u16>,
    /// In flight at most: MAX_IN_FLIGHT, less in tests (a test queue cannot hold
    /// that many chains).
    limit: usize,
}

impl Slots {
    pub(super) fn new() -> Slots {
        Slots { free: (0..MAX_IN_FLIGHT as u16).rev().collect(), limit: MAX_IN_FLIGHT }
    }

    /// A free index; `WouldBlock` when every one is in flight.
    pub(super) fn take(&mut self) -> io::Result<u16> {
        self.free.pop().ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
    }

    /// `index`'s request is done (or was never handed over).
    pub(super) fn give_back(&mut self, index: u16) {
        self.free.push(index);
    }

    #[cfg(test)]
    pub(super) fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(MAX_IN_FLIGHT);
    }
}

/// Requests in flight at most on one drive, as QEMU's io_uring ring: more
/// gains nothing on one queue, and the rest wait in the avail ring (served
/// as completions free slots).
pub(super) const MAX_IN_FLIGHT: usize = 128;
/// How long a drain (snapshot, reset) waits for the kernel or the workers before
/// giving up.
pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Read,
    Write,
    Flush,
}

/// What the device needs to finish a request the ring carries out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Queued {
    /// The queue the chain came from, whose used ring it goes back to.
    pub(super) queue: u16,
    /// The chain's head, for the used ring.
    pub(super) head: u16,
    /// The chain's status byte.
    pub(super) status: GuestAddress,
    pub(super) op: Op,
    /// Bytes the request moves; anything else is an error.
    pub(super) len: u32,
}

/// One request in flight. The iovecs stay here (pointing into guest memory)
/// until the kernel is done with them.
struct Slot {
    request: Queued,
    iovs: Vec<libc::iovec>,
}

/// A request the kernel finished.
pub(super) struct Completion {
    pub(super) queue: u16,
    pub(super) head: u16,
    pub(super) status: GuestAddress,
    pub(super) op: Op,
    pub(super) len: u32,
    /// The bytes moved, or the error.
    pub(super) result: io::Result<u32>,
}

impl Completion {
    /// Whether the request did all it was asked: a short transfer is an error
    /// (the range was checked against the disk, so it means the image shrank
    /// or the host failed).
    pub(super) fn outcome(&self) -> io::Result<()> {
        match &self.result {
            Ok(n) if *n == self.len || self.op == Op::Flush => Ok(()),
            Ok(n) => {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("short transfer: {n} of {} bytes", self.len)))
            }
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

pub(super) struct Uring {
    ring: IoUring,
    /// Written by the kernel on each completion; watched by the device's epoll.
    event: EventFd,
    slots: Vec<Option<Slot>>,
    indexes: Slots,
    /// Spare iovec vectors, swapped with the worker's so nothing is allocated
    /// per request once they have grown.
    spare: Vec<Vec<libc::iovec>>,
    /// Entries pushed since the last io_uring_enter.
    pending: bool,
    /// io_uring_enter calls made, for the tests that count them per batch.
    #[cfg(test)]
    enters: usize,
}

// SAFETY: the raw iovec pointers point into the guest memory mapping, which the
// device holds for as long as any request is in flight (reset and snapshot drain
// first); the ring itself is only ever used under the device's mutex.
unsafe impl Send for Uring {}

impl Uring {
    pub(super) fn new() -> io::Result<Uring> {
        let ring = IoUring::builder().setup_r_disabled().build(MAX_IN_FLIGHT as u32)?;
        let submitter = ring.submitter();
        // Before the restrictions, which forbid every later io_uring_register.
        let event = EventFd::new(EFD_NONBLOCK)?;
        submitter.register_eventfd(event.as_raw_fd())?;
        let mut allowed = [
            Restriction::sqe_op(opcode::Readv::CODE),
            Restriction::sqe_op(opcode::Writev::CODE),
            Restriction::sqe_op(opcode::Fsync::CODE),
        ];
        submitter.register_restrictions(&mut allowed)?;
        submitter.register_enable_rings()?;
        Ok(Uring {
            ring,
            event,
            slots: (0..MAX_IN_FLIGHT).map(|_| None).collect(),
            indexes: Slots::new(),
            spare: Vec::new(),
            pending: false,
            #[cfg(test)]
            enters: 0,
        })
    }

    /// One io_uring_enter: hands the queued entries to the kernel.
    fn enter(&mut self) -> io::Result<()> {
        #[cfg(test)]
        {
            self.enters += 1;
        }
        self.ring.submit().map(drop)
    }

    /// Takes every finished request off the completion ring. Reads only memory: it
    /// runs on any thread (a vCPU's, for a reset), whose filter may not allow `read`.
    fn take_finished(&mut self, done: &mut dyn FnMut(Completion)) {
        let mut finished = Vec::new();
        for cqe in self.ring.completion() {
            finished.push((cqe.user_data(), cqe.result()));
        }
        for (index, res) in finished {
            let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::take) else { continue };
            self.indexes.give_back(index as u16);
            let mut iovs = slot.iovs;
            iovs.clear();
            self.spare.push(iovs);
            let result = if res < 0 { Err(io::Error::from_raw_os_error(-res)) } else { Ok(res as u32) };
            done(slot.request.completed(result));
        }
    }
}

impl Queued {
    pub(super) fn completed(self, result: io::Result<u32>) -> Completion {
        let Queued { queue, head, status, op, len } = self;
        Completion { queue, head, status, op, len, result }
    }
}

/// Waits until `engine` has nothing in flight, `take` completing what finished.
pub(super) fn drain_within<E: InFlight + ?Sized>(
    engine: &mut E,
    done: &mut dyn FnMut(Completion),
    take: impl Fn(&mut E, &mut dyn FnMut(Completion)),
) -> io::Result<()> {
    let start = Instant::now();
    loop {
        take(engine, &mut *done);
        if engine.in_flight() == 0 {
            return Ok(());
        }
        if start.elapsed() > DRAIN_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} requests still in flight", engine.in_flight()),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl InFlight for Uring {
    fn event(&self) -> &EventFd {
        &self.event
    }

    fn slots(&self) -> &Slots {
        &self.indexes
    }

    #[cfg(test)]
    fn set_limit(&mut self, limit: usize) {
        self.indexes.set_limit(limit);
    }

    #[cfg(test)]
    fn submits(&self) -> usize {
        self.enters
    }

    fn push(&mut self, fd: RawFd, offset: u64, iovs: &mut Vec<libc::iovec>, request: Queued) -> io::Result<()> {
        if self.ring.submission().is_full() {
            // Entries leave the ring only at io_uring_enter: make room.
            self.enter()?;
        }
        let index = self.indexes.take()?;
        let mut mine = self.spare.pop().unwrap_or_default();
        std::mem::swap(&mut mine, iovs);
        iovs.clear();
        let fd = types::Fd(fd);
        let entry = match request.op {
            Op::Read => opcode::Readv::new(fd, mine.as_ptr(), mine.len() as u32).offset(offset).build(),
            Op::Write => opcode::Writev::new(fd, mine.as_ptr(), mine.len() as u32).offset(offset).build(),
            Op::Flush => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
        }
        .user_data(u64::from(index));
        self.slots[usize::from(index)] = Some(Slot { request, iovs: mine });
        // SAFETY: the iovecs the entry points to live in the slot until its
        // completion is reaped, and their buffers in guest memory as long.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            // Not reached: the ring had room a moment ago.
            if let Some(slot) = self.slots[usize::from(index)].take() {
                *iovs = slot.iovs;
            }
            self.indexes.give_back(index);
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        self.pending = true;
        Ok(())
    }

    /// One io_uring_enter per batch.
    fn submit(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending) {
            self.enter()?;
        }
        Ok(())
    }

    fn reap(&mut self, done: &mut dyn FnMut(Completion)) {
        let _ = self.event.read();
        self.take_finished(done);
    }

    fn take_ready(&mut self, done: &mut dyn FnMut(Completion)) {
        self.take_finished(done);
    }

    /// IORING_CQ_EVENTFD_DISABLED (Linux 5.8), a flag in the shared completion ring.
    fn hold_wakeups(&mut self) {
        self.ring.completion().disable_eventfd();
    }

    fn release_wakeups(&mut self) -> bool {
        self.ring.completion().enable_eventfd();
        // The kernel stores the completion ring's tail, then (after a full barrier: the
        // smp_mb of io_cqring_wake) reads the flag; here the flag is stored, then the
        // tail read. With a full barrier on both sides, a completion posted while the
        // flag said "held" is either seen here or wakes the eventfd.
        fence(Ordering::SeqCst);
        let finished = !self.ring.completion().is_empty();
        if finished {
            self.ring.completion().disable_eventfd();
        }
        finished
    }

    /// Everything was submitted at the end of the device's last turn, and the kernel
    /// posts completions without the device thread's help. The eventfd is left as it
    /// is: the device thread's next turn reads it and finds nothing more to complete.
    fn drain(&mut self, done: &mut dyn FnMut(Completion)) -> io::Result<()> {
        drain_within(self, done, Uring::take_finished)
    }
}
