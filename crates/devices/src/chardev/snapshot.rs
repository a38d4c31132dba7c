//! A chardev's part of a console's snapshot: the guest's output it accepted but had not
//! written yet (a peer that was not reading). The device had already completed those
//! bytes' buffers, so without this they would be lost.

use super::Chardev;

impl Chardev {
    /// Output accepted but not yet taken by the peer, in order.
    pub fn buffered_output(&self) -> Vec<u8> {
        self.out_buf.iter().copied().collect()
    }

    /// Sends output a snapshot kept as if the guest had just written it, but without
    /// logging it again (the saving process did). At most `OUTPUT_BUFFER` bytes were
    /// saved, so a new chardev takes all of it.
    pub fn restore_output(&mut self, data: &[u8]) {
        let taken = self.send_output(data);
        self.dropped += (data.len() - taken) as u64;
    }
}
