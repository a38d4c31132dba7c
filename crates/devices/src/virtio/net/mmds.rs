//! Firecracker's MMDS on one virtio-net interface (those `PUT /mmds/config` lists): the
//! TX path offers each frame to the `mmds` crate's stack first, and a frame it takes
//! (ARP for the MMDS's address, IPv4 to it) never reaches the tap; the RX path delivers
//! the stack's answers before the tap's frames. All on the virtio thread, no syscall but
//! getrandom for tokens and sequence numbers (already in that thread's filter).

use super::tap::VNET_HDR_LEN;
use mmds::{Mmds, MmdsStack};
use std::net::Ipv4Addr;

/// What a device needs to serve the MMDS: the shared store and the address it answers at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmdsAttachment {
    pub mmds: Mmds,
    pub ipv4: Ipv4Addr,
}

/// The MMDS side of one device.
pub struct Detour {
    stack: MmdsStack,
    /// A frame went to the stack since the RX path last looked: answers may wait.
    pub answered: bool,
}

impl Detour {
    pub fn new(attachment: &MmdsAttachment) -> Detour {
        Detour { stack: MmdsStack::new(attachment.mmds.clone(), attachment.ipv4), answered: false }
    }

    /// Whether `packet` (the guest's virtio-net header first) was the MMDS's.
    pub fn take(&mut self, packet: &[u8]) -> bool {
        let taken = packet.len() > VNET_HDR_LEN && self.stack.detour(&packet[VNET_HDR_LEN..]);
        self.answered |= taken;
        taken
    }

    /// Puts the stack's next frame in `buf` behind a zeroed virtio-net header (its
    /// checksums are complete; it is never a GSO frame); its length with the header.
    pub fn next_rx(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.answered = false;
        let frame = self.stack.next_frame()?;
        let len = VNET_HDR_LEN + frame.len();
        // The stack's frames are at most an MSS of 1460 bytes plus headers.
        let Some(dst) = buf.get_mut(..len) else {
            metrics::MMDS.tx_errors.inc();
            return None;
        };
        dst[..VNET_HDR_LEN].fill(0);
        dst[VNET_HDR_LEN..].copy_from_slice(&frame);
        metrics::MMDS.tx_frames.inc();
        metrics::MMDS.tx_bytes.add(frame.len() as u64);
        Some(len)
    }
}
