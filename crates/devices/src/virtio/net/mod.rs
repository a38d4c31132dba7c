//! virtio-net (virtio 1.x §5.1): one RX and one TX queue, no control queue.
//! On a TAP device frames cross with the guest's own 12-byte
//! `virtio_net_hdr_v1` in front (IFF_VNET_HDR), so checksum and TSO offloads
//! work end to end: the device only fills num_buffers on receive. On a
//! socket (`-netdev stream|dgram|user`) bare Ethernet frames cross, and no
//! offload is offered.
//!
//! - `tap`: opening /dev/net/tun (`Tap::open`), offload settings.
//! - `backend`: the tap or a socket behind the device; `stream`: QEMU's
//!   length-prefixed framing on stream sockets; `passt`: starting passt for
//!   `-netdev user`.
//! - `device`: `Net`, the `VirtioDevice` and its event handler, which also
//!   watches the tap fd.
//! - `features`: the feature bits, tap offloads, config space and MAC address.
//! - `rx`, `tx`: moving one frame between the tap and descriptor chains.
//! - `mmds`: Firecracker's MMDS on an interface: the guest's frames for it are
//!   answered by the `mmds` crate's stack instead of going to the tap.

mod backend;
mod device;
mod features;
mod mmds;
#[cfg(test)]
#[path = "tests/mmds.rs"]
mod mmds_tests;
pub mod passt;
mod rx;
#[cfg(test)]
#[path = "tests/sockets.rs"]
mod socket_tests;
mod stream;
mod tap;
#[cfg(test)]
mod tests;
mod tx;

pub use backend::{Backend, DgramSocket, SocketAddress, SocketError, StreamSocket};
pub use device::{Net, NetError};
pub use features::format_mac;
pub(crate) use features::{config_space, offered_features, random_mac, tap_offloads, F_MRG_RXBUF};
pub use mmds::MmdsAttachment;
pub use tap::{Tap, TapError};

/// What a snapshot keeps of virtio-net beyond its queues: the MAC address the guest
/// knows (the restoring command line may give none, and a random one would change the
/// guest's address under it). The tap (or socket) is whatever the restoring command line opens. A
/// frame read from the tap but not yet delivered (the guest had no buffer) is dropped:
/// networks lose packets, and the guest's protocols resend.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NetState {
    pub mac: [u8; 6],
}
