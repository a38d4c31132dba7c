//! What every thread microvm starts shares: joining with a deadline at teardown.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often teardown looks whether a told-to-stop thread has ended.
const JOIN_POLL: Duration = Duration::from_micros(100);

/// Joins `thread` if it ends within `timeout`; false if it did not (it is then left to
/// the process exit, which ends it).
pub fn join_within(thread: JoinHandle<()>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !thread.is_finished() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(JOIN_POLL);
    }
    let _ = thread.join();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_a_thread_that_ends_and_gives_up_on_one_that_does_not() {
        assert!(join_within(std::thread::spawn(|| ()), Duration::from_secs(1)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stuck = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        assert!(!join_within(stuck, Duration::from_millis(20)));
        drop(tx);
    }
}
