//! The `virtio` device thread: one event loop serving every virtio device's queues and
//! backends (block files, taps or their socket stand-in, the entropy source, chardevs).

use crate::allow;
use crate::rules::{eq, Rule};
use crate::vhost_ioctls::*;

/// What the `virtio` thread adds to the event loop and the block data path
/// (`block.rs`, which it shares with the iothreads).
pub const VIRTIO: &[Rule] = &[
    // Taps, chardevs (their socket calls are in the chardev list).
    allow!(SYS_readv),
    allow!(SYS_writev),
    // virtio-rng.
    allow!(SYS_getrandom),
    // virtio-balloon returns pages of file- or memfd-backed guest RAM (MADV_DONTNEED, for
    // anonymous RAM, is in the common list).
    allow!(SYS_madvise, "MADV_REMOVE", [eq(2, libc::MADV_REMOVE as u32)]),
    // Kernel vhost devices (vhost-vsock, -netdev tap,vhost=on): after the guest's DRIVER_OK
    // this thread hands the kernel the features, memory table and vrings, and starts or
    // stops it (opening, VHOST_SET_OWNER and the CID happen during set-up).
    allow!(SYS_ioctl, "VHOST_SET_FEATURES", [eq(1, VHOST_SET_FEATURES)]),
    allow!(SYS_ioctl, "VHOST_SET_MEM_TABLE", [eq(1, VHOST_SET_MEM_TABLE)]),
    allow!(SYS_ioctl, "VHOST_SET_VRING_NUM", [eq(1, VHOST_SET_VRING_NUM)]),
    allow!(SYS_ioctl, "VHOST_SET_VRING_ADDR", [eq(1, VHOST_SET_VRING_ADDR)]),
    allow!(SYS_ioctl, "VHOST_SET_VRING_BASE", [eq(1, VHOST_SET_VRING_BASE)]),
    allow!(SYS_ioctl, "VHOST_SET_VRING_KICK", [eq(1, VHOST_SET_VRING_KICK)]),
    allow!(SYS_ioctl, "VHOST_SET_VRING_CALL", [eq(1, VHOST_SET_VRING_CALL)]),
    allow!(SYS_ioctl, "VHOST_NET_SET_BACKEND", [eq(1, VHOST_NET_SET_BACKEND)]),
    allow!(SYS_ioctl, "VHOST_VSOCK_SET_RUNNING", [eq(1, VHOST_VSOCK_SET_RUNNING)]),
    // Multiqueue virtio-net (mq=on): the guest's VQ_PAIRS_SET on the control queue
    // attaches or detaches the queues of the tap (the extra queues are detached at
    // set-up, before any filter).
    allow!(SYS_ioctl, "TUNSETQUEUE", [eq(1, libc::TUNSETQUEUE as u32)]),
    // Firecracker's hybrid vsock: a guest connecting to host port P is connected to the
    // Unix socket `<uds_path>_P` (accepting host connections is in the chardev list), and
    // a guest's half-close is passed on with shutdown(SHUT_WR).
    allow!(SYS_socket, "AF_UNIX", [eq(0, libc::AF_UNIX as u32)]),
    allow!(SYS_connect),
    allow!(SYS_shutdown),
    // vhost-user (virtiofsd): the frontend's messages, with fds (memory table, eventfds).
    allow!(SYS_sendmsg),
    allow!(SYS_recvmsg),
];
