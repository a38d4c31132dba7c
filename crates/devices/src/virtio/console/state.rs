//! What a snapshot keeps of virtio-console and virtio-serial beyond their queues.

use super::{Console, TxChain};
use crate::state::StateError;
use crate::virtio::VirtioState;
use serde::{Deserialize, Serialize};
use vm_memory::GuestAddress;

/// A transmit chain the chardev had not taken all of: the device has already taken it
/// from the avail ring, so without it the guest would never get the buffer back (Linux's
/// hvc driver waits for it, spinning).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TxChainState {
    pub head: u16,
    /// (guest address, length) of each device-readable buffer.
    pub segments: Vec<(u64, u32)>,
    /// Next byte to send: segment index and offset in it.
    pub index: usize,
    pub offset: u32,
}

/// One port's data: host input read but not yet in a guest buffer, the chain being
/// sent, and output the chardev accepted but its peer had not taken (sent to the
/// restoring process's chardev first). Input still in the backend (a socket, a pty)
/// stays there and is read after the restore if the restoring command line opens the
/// same backend.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsoleState {
    pub pending: Vec<u8>,
    pub tx: Option<TxChainState>,
    pub output: Vec<u8>,
}

pub(super) fn save_tx(tx: &Option<TxChain>) -> Option<TxChainState> {
    tx.as_ref().map(|t| TxChainState {
        head: t.head,
        segments: t.segments.iter().map(|(a, l)| (a.0, *l)).collect(),
        index: t.index,
        offset: t.offset,
    })
}

/// Checks a saved chain: its position is inside it. The head and the addresses are the
/// guest's, checked at each use as they were before the snapshot (a head beyond the
/// queue, which a guest can post, is refused by the used ring).
pub(super) fn restore_tx(tx: Option<TxChainState>, device: &'static str) -> Result<Option<TxChain>, StateError> {
    let Some(t) = tx else { return Ok(None) };
    if t.index > t.segments.len() {
        return Err(StateError::Invalid { device, what: "transmit chain" });
    }
    let segments = t.segments.into_iter().map(|(a, l)| (GuestAddress(a), l)).collect();
    Ok(Some(TxChain { head: t.head, segments, index: t.index, offset: t.offset }))
}

impl Console {
    pub(super) fn save_state(&self) -> VirtioState {
        VirtioState::Console(ConsoleState {
            pending: self.pending.iter().copied().collect(),
            tx: save_tx(&self.tx),
            output: self.chardev.buffered_output(),
        })
    }

    /// After the transport re-activated the device: the device thread serves the
    /// restored chain and input on its first turn (the activation wake-up).
    pub(super) fn restore_state(&mut self, state: VirtioState) -> Result<(), StateError> {
        let VirtioState::Console(saved) = state else { return Err(state.mismatch("virtio-console")) };
        self.tx = restore_tx(saved.tx, "virtio-console")?;
        self.pending = saved.pending.into();
        self.chardev.restore_output(&saved.output);
        Ok(())
    }
}
