//! A guest that drives a virtio-blk device itself: enough of a virtio 1.x driver over
//! virtio-mmio (status handshake, VERSION_1, one queue of 8) to post one-page reads and
//! wait for each, so host tests exercise the block device through the real KVM path.

use crate::asm::{Asm, Cond};
use crate::{pvh_elf, COM1};

/// The first virtio-mmio slot: the device of the first `-device virtio-*` option.
pub const VIRTIO_MMIO_SLOT0: u32 = 0xd000_0000;
/// Bytes each request reads.
pub const READ_BYTES: u32 = 4096;

// virtio-mmio registers (virtio 1.x §4.2.2).
const DRIVER_FEATURES: u32 = 0x020;
const DRIVER_FEATURES_SEL: u32 = 0x024;
const QUEUE_SEL: u32 = 0x030;
const QUEUE_NUM: u32 = 0x038;
const QUEUE_READY: u32 = 0x044;
const QUEUE_NOTIFY: u32 = 0x050;
const STATUS: u32 = 0x070;
const QUEUE_DESC: u32 = 0x080;
const QUEUE_AVAIL: u32 = 0x090;
const QUEUE_USED: u32 = 0x0a0;

// Where the driver keeps its queue and request, in guest RAM above the code.
const DESC: u32 = 0x20_0000;
const AVAIL: u32 = 0x20_1000;
const USED: u32 = 0x20_2000;
const HEADER: u32 = 0x20_3000;
const DATA: u32 = 0x20_4000;
const STATUS_BYTE: u32 = 0x20_6000;
const QUEUE_SIZE: u32 = 8;

fn write32(a: &mut Asm, addr: u32, value: u32) {
    a.mov_eax(value).store_eax(addr);
}

/// Brings the device at `mmio` up, writes `go\n` to COM1, then `count` times: posts one
/// read of [`READ_BYTES`] from sector 0, kicks the queue, polls the used ring until the
/// device completes it and writes `.` to COM1. Then `\ndone\n` and an i8042 reset. RAM
/// starts zeroed, so the header (type IN, sector 0) and the avail ring's entries (head 0)
/// need no writing; only the avail index moves.
pub fn virtio_blk_reads_then_reset(mmio: u32, count: u32) -> Vec<u8> {
    assert!(count > 0 && count < 0x1_0000, "the used index is 16 bits");
    let mut a = Asm::new();
    for status in [0, 1, 3] {
        write32(&mut a, mmio + STATUS, status);
    }
    // VIRTIO_F_VERSION_1 (bit 32) and nothing else.
    write32(&mut a, mmio + DRIVER_FEATURES_SEL, 1);
    write32(&mut a, mmio + DRIVER_FEATURES, 1);
    write32(&mut a, mmio + DRIVER_FEATURES_SEL, 0);
    write32(&mut a, mmio + DRIVER_FEATURES, 0);
    write32(&mut a, mmio + STATUS, 11); // + FEATURES_OK
    write32(&mut a, mmio + QUEUE_SEL, 0);
    write32(&mut a, mmio + QUEUE_NUM, QUEUE_SIZE);
    for (reg, addr) in [(QUEUE_DESC, DESC), (QUEUE_AVAIL, AVAIL), (QUEUE_USED, USED)] {
        write32(&mut a, mmio + reg, addr);
        write32(&mut a, mmio + reg + 4, 0);
    }
    write32(&mut a, mmio + QUEUE_READY, 1);
    write32(&mut a, mmio + STATUS, 15); // + DRIVER_OK
                                        // One chain: header (readable), data (writable), status byte (writable). Each
                                        // descriptor: le64 addr, le32 len, le16 flags (1 NEXT, 2 WRITE), le16 next.
    for (i, (addr, len, flags, next)) in
        [(HEADER, 16, 1, 1), (DATA, READ_BYTES, 3, 2), (STATUS_BYTE, 1, 2, 0)].into_iter().enumerate()
    {
        let at = DESC + 16 * i as u32;
        write32(&mut a, at, addr);
        write32(&mut a, at + 8, len);
        write32(&mut a, at + 12, flags | next << 16);
    }
    a.out_bytes(COM1, b"go\n").xor_esi_esi();
    let next = a.here();
    // avail.idx = ++esi (flags 0): `inc esi; mov eax, esi; shl eax, 16`.
    a.inc_esi().mov_eax_esi().bytes(&[0xc1, 0xe0, 0x10]).store_eax(AVAIL);
    write32(&mut a, mmio + QUEUE_NOTIFY, 0);
    let poll = a.here();
    // Until used.idx == esi: `cmp ax, si`.
    a.load_eax(USED).shr_eax(16).bytes(&[0x66, 0x39, 0xf0]).jcc(Cond::NotZero, poll);
    a.mov_dx(COM1).mov_al(b'.').out_dx_al();
    // `cmp esi, count`
    a.bytes(&[0x81, 0xfe]).bytes(&count.to_le_bytes()).jcc(Cond::NotZero, next);
    a.out_bytes(COM1, b"\ndone\n").i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}
