//! What a virtio-net device offers and shows the guest: its feature bits (and the tap
//! offloads that follow from those the guest takes), its configuration space, its MAC.

use crate::virtio::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net as vn;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

const fn bit(b: u32) -> u64 {
    1 << b
}
pub const F_CSUM: u64 = bit(vn::VIRTIO_NET_F_CSUM);
pub const F_GUEST_CSUM: u64 = bit(vn::VIRTIO_NET_F_GUEST_CSUM);
pub const F_MAC: u64 = bit(vn::VIRTIO_NET_F_MAC);
pub const F_GUEST_TSO4: u64 = bit(vn::VIRTIO_NET_F_GUEST_TSO4);
pub const F_GUEST_TSO6: u64 = bit(vn::VIRTIO_NET_F_GUEST_TSO6);
pub const F_GUEST_ECN: u64 = bit(vn::VIRTIO_NET_F_GUEST_ECN);
pub const F_GUEST_UFO: u64 = bit(vn::VIRTIO_NET_F_GUEST_UFO);
pub const F_HOST_TSO4: u64 = bit(vn::VIRTIO_NET_F_HOST_TSO4);
pub const F_HOST_TSO6: u64 = bit(vn::VIRTIO_NET_F_HOST_TSO6);
pub const F_HOST_ECN: u64 = bit(vn::VIRTIO_NET_F_HOST_ECN);
pub const F_HOST_UFO: u64 = bit(vn::VIRTIO_NET_F_HOST_UFO);
pub const F_MRG_RXBUF: u64 = bit(vn::VIRTIO_NET_F_MRG_RXBUF);
pub const F_STATUS: u64 = bit(vn::VIRTIO_NET_F_STATUS);
pub const F_EVENT_IDX: u64 = bit(VIRTIO_RING_F_EVENT_IDX);
pub const F_CTRL_VQ: u64 = bit(vn::VIRTIO_NET_F_CTRL_VQ);
pub const F_MQ: u64 = bit(vn::VIRTIO_NET_F_MQ);
/// What `mq=on` adds to the offer: the control queue, whose VQ_PAIRS_SET command
/// enables the pairs beyond the first, and `max_virtqueue_pairs` in config space.
pub const MULTIQUEUE_FEATURES: u64 = F_CTRL_VQ | F_MQ;
/// Most queue pairs: the tun driver's limit on a tap's queues (MAX_TAP_QUEUES).
pub const MAX_QUEUE_PAIRS: u16 = 256;

/// What the device offers: QEMU's tap-backed defaults minus the control
/// queue and multiqueue (`mq=on` adds them: [`MULTIQUEUE_FEATURES`]). UFO only if
/// the tap takes it (QEMU's probe).
pub(crate) fn offered_features(ufo: bool) -> u64 {
    offloads_offered(true, ufo)
}

/// What the device offers on a backend with (`vnet_hdr`) or without the
/// virtio-net header: without it no offload can reach the other side, so
/// none is offered (QEMU's socket netdevs alike).
pub(crate) fn offloads_offered(vnet_hdr: bool, ufo: bool) -> u64 {
    if !vnet_hdr {
        return VIRTIO_F_VERSION_1 | F_MAC | F_MRG_RXBUF | F_STATUS | F_EVENT_IDX;
    }
    let base = VIRTIO_F_VERSION_1
        | F_CSUM
        | F_GUEST_CSUM
        | F_MAC
        | F_GUEST_TSO4
        | F_GUEST_TSO6
        | F_GUEST_ECN
        | F_HOST_TSO4
        | F_HOST_TSO6
        | F_HOST_ECN
        | F_MRG_RXBUF
        | F_STATUS
        | F_EVENT_IDX;
    if ufo {
        base | F_GUEST_UFO | F_HOST_UFO
    } else {
        base
    }
}

/// The tap offloads (TUN_F_*) matching what the guest can receive. The
/// kernel only segments-offloads along with checksum offload.
pub fn tap_offloads(acked: u64) -> libc::c_uint {
    if acked & F_GUEST_CSUM == 0 {
        return 0;
    }
    let mut flags = libc::TUN_F_CSUM;
    if acked & F_GUEST_TSO4 != 0 {
        flags |= libc::TUN_F_TSO4;
    }
    if acked & F_GUEST_TSO6 != 0 {
        flags |= libc::TUN_F_TSO6;
    }
    if acked & F_GUEST_ECN != 0 && acked & (F_GUEST_TSO4 | F_GUEST_TSO6) != 0 {
        flags |= libc::TUN_F_TSO_ECN;
    }
    if acked & F_GUEST_UFO != 0 {
        flags |= libc::TUN_F_UFO;
    }
    flags
}

/// struct virtio_net_config: mac, status (link up), max_virtqueue_pairs (read by the
/// driver only with VIRTIO_NET_F_MQ; 1 without multiqueue).
pub(crate) fn config_space(mac: &[u8; 6], max_pairs: u16) -> [u8; 10] {
    let mut config = [0u8; 10];
    config[..6].copy_from_slice(mac);
    config[6..8].copy_from_slice(&(vn::VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
    config[8..10].copy_from_slice(&max_pairs.to_le_bytes());
    config
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub(crate) fn random_mac() -> [u8; 6] {
    let mut mac = [0x02, 0, 0, 0, 0, 0];
    // SAFETY: getrandom writes at most 5 bytes into the array's tail.
    let n = unsafe { libc::getrandom(mac[1..].as_mut_ptr().cast(), 5, 0) };
    if n != 5 {
        let bytes = vmm_sys_util::rand::rand_bytes(5);
        mac[1..].copy_from_slice(&bytes);
    }
    mac
}
