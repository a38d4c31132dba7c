//! A pty chardev's user coming and going: the kernel sends no event when
//! the slave is opened, so a timer polls while nobody has it open.

use super::{poll_now, Chardev, Kind, PTY_POLL_INTERVAL};

impl Chardev {
    /// For a pty believed unused, looks whether someone opened the slave
    /// since. True if the pty is in use (or this is not a pty).
    pub(super) fn pty_check_connected(&mut self) -> bool {
        let Kind::Pty { connected, timer, path } = &mut self.kind else { return true };
        if *connected {
            return true;
        }
        let Some(master) = &self.output else { return false };
        match poll_now(master.raw(), 0) {
            Ok(revents) if revents & libc::POLLHUP == 0 => {
                *connected = true;
                if let Err(e) = timer.clear() {
                    log::warn!("chardev '{}': cannot stop the pty timer: {e}", self.label);
                }
                log::info!("chardev '{}': {} opened", self.label, path.display());
                true
            }
            _ => false,
        }
    }

    /// The last user of the pty slave closed it: drop output until the
    /// next one comes.
    pub(super) fn pty_hung_up(&mut self) {
        let Kind::Pty { connected, timer, path } = &mut self.kind else { return };
        if !*connected {
            return;
        }
        *connected = false;
        if let Err(e) = timer.reset(PTY_POLL_INTERVAL, Some(PTY_POLL_INTERVAL)) {
            log::warn!("chardev '{}': cannot start the pty timer: {e}", self.label);
        }
        log::info!("chardev '{}': {} closed", self.label, path.display());
        self.dropped += self.out_buf.len() as u64;
        self.out_buf.clear();
    }
}
