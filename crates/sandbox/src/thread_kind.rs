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
}

impl ThreadKind {
    pub const ALL: [ThreadKind; 3] = [ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Virtio];

    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Virtio => "virtio",
        }
    }
}
