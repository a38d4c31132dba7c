//! virtio-net (virtio 1.x §5.1): one RX and one TX queue and no control queue, or with
//! `mq=on` N queue pairs on the N queues of a multiqueue tap and a control queue.
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
//! - `ctrl`: the queue layout of `mq=on` and the control queue's commands (shared
//!   with vhost-net, whose control queue stays in microvm).
//! - `datapath`: one queue pair's frames between its queues and its tap queue.
//! - `rx`, `tx`: moving one frame between the tap and descriptor chains; `fault`: why
//!   a direction stops until a reset (a ring the guest broke).
//! - `mmds`: Firecracker's MMDS on an interface: the guest's frames for it are
//!   answered by the `mmds` crate's stack instead of going to the tap.

mod backend;
pub(crate) mod ctrl;
mod datapath;
mod device;
mod fault;
mod features;
mod mmds;
#[cfg(test)]
#[path = "tests/mmds.rs"]
mod mmds_tests;
mod pair;
pub mod passt;
mod rx;
#[cfg(test)]
#[path = "tests/rx.rs"]
mod rx_tests;
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
pub use features::MAX_QUEUE_PAIRS;
pub(crate) use features::{config_space, offered_features, random_mac, tap_offloads, F_MRG_RXBUF};
pub use mmds::MmdsAttachment;
pub(crate) use tap::detach_after_first;
pub use tap::{DetachError, Tap, TapError};

/// What a snapshot keeps of virtio-net beyond its queues: the MAC address the guest
/// knows (the restoring command line may give none, and a random one would change the
/// guest's address under it). The tap (or socket) is whatever the restoring command line opens. A
/// frame read from the tap but not yet delivered (the guest had no buffer) is dropped:
/// networks lose packets, and the guest's protocols resend.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NetState {
    pub mac: [u8; 6],
}

/// What a snapshot keeps of a virtio-net or vhost-net device with `mq=on`: the MAC
/// address, and how many queue pairs the guest enabled (its VQ_PAIRS_SET), so the
/// restored device serves, and attaches the tap queues of, the same pairs. A device
/// of its own in the saved state (not a field added to [`NetState`]), so snapshots of
/// single-queue devices made before multiqueue still load.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MultiqueueNetState {
    pub mac: [u8; 6],
    pub pairs: u16,
}
