//! The kinds of thread microvm runs. Shared with `build.rs`, which compiles one seccomp
//! program per kind, so it uses nothing but `core`.

/// The kinds of thread microvm runs, each with its own allowlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThreadKind {
    /// The main thread: event loop, monitors, exit path.
    Main,
    /// A vCPU thread.
    Vcpu,
    /// The virtio device thread.
    Virtio,
    /// A virtio-9p device's server thread: the only one that touches the shared folder.
    Ninep,
    /// The main thread running the only vCPU itself: a command line with one vCPU and
    /// nothing for an event loop to serve (no devices, monitors, serial port or timers)
    /// needs no second thread.
    Solo,
    /// An `-object iothread`: an event loop of its own serving the queues of the drives
    /// that name it (`virtio-blk-device,iothread=`), instead of the `virtio` thread.
    Iothread,
    /// A worker of a drive's `aio=threads` pool: reads, writes and flushes, nothing else.
    AioWorker,
}

impl ThreadKind {
    pub const ALL: [ThreadKind; 7] = [
        ThreadKind::Main,
        ThreadKind::Vcpu,
        ThreadKind::Virtio,
        ThreadKind::Ninep,
        ThreadKind::Solo,
        ThreadKind::Iothread,
        ThreadKind::AioWorker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Virtio => "virtio",
            ThreadKind::Ninep => "ninep",
            ThreadKind::Solo => "solo",
            ThreadKind::Iothread => "iothread",
            ThreadKind::AioWorker => "aio-worker",
        }
    }
}
