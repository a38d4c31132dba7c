//! microvm's host-side confinement: each thread runs under a seccomp allowlist for its kind
//! (main/event loop with the monitors, vCPU, virtio device thread, iothread, a
//! block pool's worker, 9p server), installed after set-up
//! and before the guest runs. A call outside the list ends the process with SIGSYS after
//! one line that names the call and the thread (see `sigsys`).
//!
//! The lists are data (`filters/`, one file per thread kind plus the common list), compiled
//! to BPF by `build.rs` (`compile.rs`), so start-up only installs them; [`report`] prints
//! exactly what is compiled.

#[cfg(test)]
mod compile;
#[cfg(test)]
mod compile_tests;
mod fatal;
pub mod filters;
pub mod jail;
mod kvm_ioctls;
pub mod report;
pub mod rules;
mod sigsys;
mod spawn;
mod syscall_names;
mod thread_kind;
mod vhost_ioctls;

pub use fatal::install_handlers as install_fatal_signal_handlers;
pub use spawn::{spawn, ThreadFailure, ThreadStart};
pub use syscall_names::syscall_name;
pub use thread_kind::ThreadKind;

/// The BPF of each kind's filter, compiled from `filters/` by `build.rs`.
mod programs {
    use seccompiler::sock_filter;
    include!(concat!(env!("OUT_DIR"), "/programs.rs"));
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp: cannot install the {kind} thread's filter: {source}")]
    Install { kind: &'static str, source: seccompiler::Error },
    #[error("seccomp: cannot install the SIGSYS handler: {0}")]
    Handler(#[source] std::io::Error),
}

/// Whether threads enter their filters (`-sandbox on`) or run unconfined (`off`).
pub struct Sandbox {
    enabled: bool,
}

impl Sandbox {
    /// Installs the SIGSYS handler (`enabled`), or prepares to install nothing. The filters
    /// themselves were compiled with the binary.
    pub fn new(enabled: bool) -> Result<Sandbox, Error> {
        if enabled {
            sigsys::install_handler().map_err(Error::Handler)?;
        }
        Ok(Sandbox { enabled })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Puts the calling thread under `kind`'s filter (and no_new_privs) for good.
    pub fn enter(&self, kind: ThreadKind) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        sigsys::set_thread_kind(kind);
        seccompiler::apply_filter(program(kind)).map_err(|source| Error::Install { kind: kind.name(), source })
    }
}

/// `kind`'s filter as BPF: its rules allowed, anything else trapped (SIGSYS).
pub fn program(kind: ThreadKind) -> &'static [seccompiler::sock_filter] {
    match kind {
        ThreadKind::Main => programs::MAIN,
        ThreadKind::Vcpu => programs::VCPU,
        ThreadKind::Virtio => programs::VIRTIO,
        ThreadKind::Ninep => programs::NINEP,
        ThreadKind::Solo => programs::SOLO,
        ThreadKind::Iothread => programs::IOTHREAD,
        ThreadKind::AioWorker => programs::AIO_WORKER,
    }
}
