//! The one way microvm starts a thread (as Cloud Hypervisor's thread helper does): the new
//! thread enters its kind's filter before anything else, and a filter that cannot be
//! installed or a panic in its body is handed to the owner's `on_failure` (which ends the
//! VM with that message) instead of vanishing with the thread.

use crate::{Sandbox, ThreadKind};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Starts thread `name` running `body` under `kind`'s filter.
pub fn spawn<B, F>(
    name: String,
    kind: ThreadKind,
    sandbox: Arc<Sandbox>,
    on_failure: F,
    body: B,
) -> std::io::Result<JoinHandle<()>>
where
    B: FnOnce() + Send + 'static,
    F: FnOnce(String) + Send + 'static,
{
    std::thread::Builder::new().name(name).spawn(move || {
        if let Err(e) = sandbox.enter(kind) {
            on_failure(e.to_string());
            return;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
            on_failure(format!("the {} thread panicked: {}", kind.name(), panic_message(&*payload)));
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
        let thread = spawn("t".into(), ThreadKind::Virtio, sandbox, move |m| tx.send(m).unwrap(), || panic!("boom"));
        thread.unwrap().join().unwrap();
        assert_eq!(rx.recv().unwrap(), "the virtio thread panicked: boom");
    }
}
