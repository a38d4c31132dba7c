//! The `threads` engine (QEMU's `aio=threads`): reads, writes and flushes handed to a
//! small pool of worker threads, so that a queue can have many requests in flight
//! while the device thread goes on taking chains. A worker does preadv/pwritev (resuming
//! short transfers, as the sync engine) or fdatasync on the image's descriptor, straight
//! between the file and guest memory, then puts the result on the pool's done list and
//! writes its eventfd, which wakes the device thread to complete it into the used ring.
//!
//! The device makes the pool with its drive; the workers are not started here but handed
//! to the VMM ([`super::Block::take_pool_workers`]), which starts each under its own
//! seccomp filter (`aio-worker`: the three calls above and the wake-ups). Discard,
//! write-zeroes and GET_ID stay on the device thread, as with io_uring.

use super::disk::{transfer, Progress};
use super::engine::{drain_within, Completion, InFlight, Op, Queued, Slots, MAX_IN_FLIGHT};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Worker threads per drive: enough to keep a fast disk busy from one queue (QEMU's
/// pool grows to 64 for the whole process, but its threads mostly wait too), few
/// enough that a VM with several drives stays a handful of threads.
pub const POOL_WORKERS: usize = 4;

/// The iovecs of one request, on their way to a worker and back.
struct IoVecs(Vec<libc::iovec>);

// SAFETY: the iovecs point into guest memory, which stays mapped while any request is in
// flight (the device drains the pool before a reset, a snapshot or its own drop); only
// one thread at a time holds the vector.
unsafe impl Send for IoVecs {}

/// One request for a worker.
struct Job {
    index: u16,
    fd: RawFd,
    offset: u64,
    op: Op,
    iovs: IoVecs,
}

/// What a worker did with a job.
struct Done {
    index: u16,
    iovs: IoVecs,
    result: io::Result<u32>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    done: Vec<Done>,
    /// Set when the pool is dropped: the workers end once the queue is empty.
    stop: bool,
    /// Workers started: without any, a drop has nothing to wait for.
    running: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Workers wait here for jobs.
    work: Condvar,
    /// Written by a worker after each job it finished.
    event: EventFd,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked ended the VM already; what it left is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The device's side of the pool.
pub(super) struct Pool {
    shared: Arc<Shared>,
    /// The request of each job in flight, by its index.
    requests: Vec<Option<Queued>>,
    indexes: Slots,
    /// Spare iovec vectors, so nothing is allocated per request once they have grown.
    spare: Vec<IoVecs>,
    /// Queued since the last `submit`.
    pending: Vec<Job>,
    /// Reused by `take_finished`.
    finished: Vec<Done>,
    /// Not yet handed to the VMM.
    workers: Vec<PoolWorker>,
    /// Batches handed to the workers, for the tests that count them.
    #[cfg(test)]
    batches: usize,
}

/// One worker thread's body: [`PoolWorker::run`] until the pool is dropped.
pub struct PoolWorker {
    shared: Arc<Shared>,
}

impl PoolWorker {
    /// Serves jobs until the pool ends. The thread's filter need allow only
    /// preadv/pwritev/fdatasync and the futex and eventfd write of the wake-ups.
    pub fn run(self) {
        self.shared.lock().running += 1;
        loop {
            let job = {
                let mut state = self.shared.lock();
                loop {
                    if let Some(job) = state.jobs.pop_front() {
                        break job;
                    }
                    if state.stop {
                        return;
                    }
                    state = self.shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            let done = execute(job);
            self.shared.lock().done.push(done);
            if let Err(e) = self.shared.event.write(1) {
                log::error!("virtio-blk: a pool worker cannot signal its completion: {e}");
            }
        }
    }
}

fn execute(mut job: Job) -> Done {
    let len: usize = job.iovs.0.iter().map(|iov| iov.iov_len).sum();
    let result = match job.op {
        Op::Flush => sync_data(job.fd).map(|()| 0),
        Op::Read | Op::Write => {
            let mut pos = Progress { start: 0, offset: job.offset };
            // The iovecs are trimmed as the transfer goes: the device only clears them.
            transfer(job.fd, &mut job.iovs.0, &mut pos, job.op == Op::Write).map(|()| len as u32)
        }
    };
    Done { index: job.index, iovs: job.iovs, result }
}

fn sync_data(fd: RawFd) -> io::Result<()> {
    // SAFETY: fdatasync on the image's descriptor, which the device keeps open while any
    // request is in flight; no memory is touched.
    if unsafe { libc::fdatasync(fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Pool {
    pub(super) fn new() -> io::Result<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            event: EventFd::new(EFD_NONBLOCK)?,
        });
        let workers = (0..POOL_WORKERS).map(|_| PoolWorker { shared: shared.clone() }).collect();
        Ok(Pool {
            shared,
            requests: (0..MAX_IN_FLIGHT).map(|_| None).collect(),
            indexes: Slots::new(),
            spare: Vec::new(),
            pending: Vec::new(),
            finished: Vec::new(),
            workers,
            #[cfg(test)]
            batches: 0,
        })
    }

    /// The workers, for the VMM to start (once: later calls get none).
    pub(super) fn take_workers(&mut self) -> Vec<PoolWorker> {
        std::mem::take(&mut self.workers)
    }

    /// Completes what the workers finished. Reads only memory: it runs on any thread.
    fn take_finished(&mut self, done: &mut dyn FnMut(Completion)) {
        std::mem::swap(&mut self.finished, &mut self.shared.lock().done);
        let mut finished = std::mem::take(&mut self.finished);
        for Done { index, iovs, result } in finished.drain(..) {
            let Some(request) = self.requests.get_mut(usize::from(index)).and_then(Option::take) else { continue };
            self.indexes.give_back(index);
            let mut iovs = iovs;
            iovs.0.clear();
            self.spare.push(iovs);
            done(request.completed(result));
        }
        self.finished = finished;
    }
}

impl InFlight for Pool {
    fn event(&self) -> &EventFd {
        &self.shared.event
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
        self.batches
    }

    fn push(&mut self, fd: RawFd, offset: u64, iovs: &mut Vec<libc::iovec>, request: Queued) -> io::Result<()> {
        let index = self.indexes.take()?;
        let mut mine = self.spare.pop().unwrap_or(IoVecs(Vec::new()));
        std::mem::swap(&mut mine.0, iovs);
        iovs.clear();
        self.requests[usize::from(index)] = Some(request);
        self.pending.push(Job { index, fd, offset, op: request.op, iovs: mine });
        Ok(())
    }

    /// One lock and one wake-up per batch (a worker finding more jobs takes them too).
    fn submit(&mut self) -> io::Result<()> {
        let n = self.pending.len();
        if n == 0 {
            return Ok(());
        }
        #[cfg(test)]
        {
            self.batches += 1;
        }
        self.shared.lock().jobs.extend(self.pending.drain(..));
        if n == 1 {
            self.shared.work.notify_one();
        } else {
            self.shared.work.notify_all();
        }
        Ok(())
    }

    fn reap(&mut self, done: &mut dyn FnMut(Completion)) {
        let _ = self.shared.event.read();
        self.take_finished(done);
    }

    /// Jobs not yet submitted are handed over first: a drain means every request ends.
    fn drain(&mut self, done: &mut dyn FnMut(Completion)) -> io::Result<()> {
        self.submit()?;
        drain_within(self, done, Pool::take_finished)
    }
}

impl Drop for Pool {
    /// The device drained the pool already (`Block`'s drop); the workers end now. Jobs
    /// left only when no worker ever started: they are dropped under the same lock a
    /// starting worker takes, so none runs after the drive is gone.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.stop = true;
        if state.running == 0 {
            state.jobs.clear();
        }
        drop(state);
        self.shared.work.notify_all();
    }
}
