//! The vhost ioctl requests the virtio thread's filter names, computed like the kernel's
//! `_IOW` (linux/vhost.h, VHOST_VIRTIO = 0xAF); the vhost crate keeps its own private.

use vmm_sys_util::ioctl::{ioctl_expr, _IOC_READ, _IOC_WRITE};

const VHOST_VIRTIO: u32 = 0xAF;

const fn write(nr: u32, size: usize) -> u32 {
    ioctl_expr(_IOC_WRITE, VHOST_VIRTIO, nr, size as u32) as u32
}

/// `struct vhost_vring_state` / `vhost_vring_file`: two 32-bit fields.
const PAIR: usize = 8;
/// `struct vhost_vring_addr`: index, flags, four 64-bit addresses.
const VRING_ADDR: usize = 40;

pub const VHOST_SET_FEATURES: u32 = write(0x00, 8);
/// Its argument is a pointer to a `struct vhost_memory` (header only in the size).
pub const VHOST_SET_MEM_TABLE: u32 = write(0x03, 8);
pub const VHOST_SET_VRING_NUM: u32 = write(0x10, PAIR);
pub const VHOST_SET_VRING_ADDR: u32 = write(0x11, VRING_ADDR);
pub const VHOST_SET_VRING_BASE: u32 = write(0x12, PAIR);
pub const VHOST_SET_VRING_KICK: u32 = write(0x20, PAIR);
pub const VHOST_SET_VRING_CALL: u32 = write(0x21, PAIR);
pub const VHOST_NET_SET_BACKEND: u32 = write(0x30, PAIR);
pub const VHOST_VSOCK_SET_RUNNING: u32 = write(0x61, 4);
/// `_IOWR`: a snapshot reads where the kernel left each vring.
pub const VHOST_GET_VRING_BASE: u32 = ioctl_expr(_IOC_READ | _IOC_WRITE, VHOST_VIRTIO, 0x12, PAIR as u32) as u32;

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by a C program including <linux/vhost.h>.
    #[test]
    fn requests_match_the_kernel_headers() {
        assert_eq!(VHOST_SET_FEATURES, 0x4008_af00);
        assert_eq!(VHOST_SET_MEM_TABLE, 0x4008_af03);
        assert_eq!(VHOST_SET_VRING_NUM, 0x4008_af10);
        assert_eq!(VHOST_SET_VRING_ADDR, 0x4028_af11);
        assert_eq!(VHOST_SET_VRING_BASE, 0x4008_af12);
        assert_eq!(VHOST_SET_VRING_KICK, 0x4008_af20);
        assert_eq!(VHOST_SET_VRING_CALL, 0x4008_af21);
        assert_eq!(VHOST_NET_SET_BACKEND, 0x4008_af30);
        assert_eq!(VHOST_VSOCK_SET_RUNNING, 0x4004_af61);
        assert_eq!(VHOST_GET_VRING_BASE, 0xc008_af12);
    }
}
