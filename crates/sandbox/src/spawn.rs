//! The one way microvm starts a thread (as Cloud Hypervisor's thread helper does): the new
//! thread enters its kind's filter before anything else, then waits at the start gate (if
//! any) for the other threads; a filter that cannot be installed or a panic in its body is
//! handed to the owner's `on_failure` (which ends the VM with that `ThreadFailure`)
//! instead of vanishing with the thread.

use crate::{Error, Sandbox, ThreadKind};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;

/// How a thread starts: its name, filter and the gate it meets the others at.
pub struct ThreadStart {
    pub name: String,
    pub kind: ThreadKind,
    pub sandbox: Arc<Sandbox>,
    /// Passed (even when the filter failed, so no one waits forever) before `body` runs.
    pub gate: Option<Arc<Barrier>>,
}

/// Why a thread ended the VM instead of running its body to the end. `Clone`, its error
/// shared: the VM's end reason is read by whoever asks for it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ThreadFailure {
    /// It could not enter its seccomp filter.
    #[error(transparent)]
    Confine(Arc<Error>),
    /// Its body panicked: the panic's message, as the panicking code wrote it.
    #[error("the {thread} thread panicked: {message}")]
    Panicked { thread: &'static str, message: String },
}

/// Starts a thread running `body` as `start` says.
pub fn spawn<B, F>(start: ThreadStart, on_failure: F, body: B) -> std::io::Result<JoinHandle<()>>
where
    B: FnOnce() + Send + 'static,
    F: FnOnce(ThreadFailure) + Send + 'static,
{
    let ThreadStart { name, kind, sandbox, gate } = start;
    std::thread::Builder::new().name(name).spawn(move || {
        let confined = sandbox.enter(kind);
        if let Some(gate) = gate {
            gate.wait();
        }
        if let Err(e) = confined {
            on_failure(ThreadFailure::Confine(Arc::new(e)));
            return;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
            // Firecracker's `vmm.panic_count` is a flag (1 once any thread panicked).
            metrics::VMM.panic_count.set(1);
            on_failure(ThreadFailure::Panicked { thread: kind.name(), message: panic_message(&*payload).to_owned() });
        }
    })
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_panic_reaches_the_owner() {
        let (tx, rx) = mpsc::channel();
        let sandbox = Arc::new(Sandbox::new(false).unwrap());
        let start = ThreadStart { name: "t".into(), kind: ThreadKind::Virtio, sandbox, gate: None };
        let thread = spawn(start, move |m| tx.send(m).unwrap(), || panic!("boom"));
        thread.unwrap().join().unwrap();
        let failure = rx.recv().unwrap();
        assert!(matches!(&failure, ThreadFailure::Panicked { thread: "virtio", message } if message == "boom"));
        assert_eq!(failure.to_string(), "the virtio thread panicked: boom");
    }
}
