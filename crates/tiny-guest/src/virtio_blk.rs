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
pub(crate) const QUEUE_NOTIFY: u32 = 0x050;
pub(crate) const STATUS: u32 = 0x070;
const QUEUE_DESC: u32 = 0x080;
const QUEUE_AVAIL: u32 = 0x090;
const QUEUE_USED: u32 = 0x0a0;

// Where the driver keeps its queue and request, in guest RAM above the code.
pub(crate) const DESC: u32 = 0x20_0000;
const AVAIL: u32 = 0x20_1000;
const USED: u32 = 0x20_2000;
pub(crate) const HEADER: u32 = 0x20_3000;
pub(crate) const DATA: u32 = 0x20_4000;
/// Where the write-then-read guest reads back into.
pub(crate) const DATA2: u32 = 0x20_5000;
pub(crate) const STATUS_BYTE: u32 = 0x20_6000;
pub(crate) const QUEUE_SIZE: u32 = 8;

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
    bring_up(&mut a, mmio);
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

/// Sector the write-then-read guest writes its pattern to.
pub const PATTERN_SECTOR: u64 = 8;
/// Sector it writes what it read back to.
pub const COPY_SECTOR: u64 = 16;

/// The bytes the write-then-read guest writes: byte `i` is `i % 256`.
pub fn pattern_byte(i: usize) -> u8 {
    i as u8
}

/// Brings the device at `mmio` up, writes `go\n`, then three requests, one at a time,
/// each followed by `.`: writes [`READ_BYTES`] of [`pattern_byte`] at
/// [`PATTERN_SECTOR`], reads them back into another buffer, and writes that buffer at
/// [`COPY_SECTOR`]. The host finds the pattern twice in the image only if the write
/// reached it and the read returned it. Then a device reset (status 0), `\ndone\n` and
/// an i8042 reset.
pub fn virtio_blk_write_read_copy(mmio: u32) -> Vec<u8> {
    write_read_copy(mmio, true, 0)
}

/// VIRTIO_BLK_F_MQ, which a driver acks to use more than one request queue.
const VIRTIO_BLK_F_MQ: u32 = 1 << 12;
/// Where queue 0 lives when the requests go to another queue: set up (every queue must
/// be, with F_MQ) but never used.
const IDLE_RINGS: [u32; 3] = [0x21_0000, 0x21_1000, 0x21_2000];

/// [`virtio_blk_write_read_copy`] on request queue `queue` of a multiqueue device (of
/// `queue + 1` queues at least: the driver acks VIRTIO_BLK_F_MQ and sets up queues
/// `0..=queue`, the device must have exactly that many): each request is kicked on that
/// queue's notification and polled on that queue's used ring, so the guest finishes only
/// if the device completed them there.
pub fn virtio_blk_write_read_copy_on_queue(mmio: u32, queue: u32) -> Vec<u8> {
    assert!(queue > 0 && queue < 8, "queue 0 is virtio_blk_write_read_copy");
    write_read_copy(mmio, true, queue)
}

/// [`virtio_blk_write_read_copy`] without the reset at the end: the guest halts after
/// `\ndone\n`, so the VM runs until the host ends it (QMP `quit`, a signal).
pub fn virtio_blk_write_read_copy_then_halt(mmio: u32) -> Vec<u8> {
    write_read_copy(mmio, false, 0)
}

fn write_read_copy(mmio: u32, reset: bool, queue: u32) -> Vec<u8> {
    let mut a = Asm::new();
    if queue == 0 {
        bring_up(&mut a, mmio);
    } else {
        bring_up_on(&mut a, mmio, VIRTIO_BLK_F_MQ, queue);
    }
    // The pattern: each byte of the (page-aligned) buffer is its address's low byte.
    a.mov_edi(DATA);
    let fill = a.here();
    a.mov_eax_edi().store_al_at_edi().add_edi(1).cmp_edi(DATA + READ_BYTES).jcc(Cond::NotZero, fill);
    a.out_bytes(COM1, b"go\n");
    // (type, sector, buffer, buffer descriptor flags: NEXT, + WRITE for a read)
    let requests = [(1, PATTERN_SECTOR, DATA, 1), (0, PATTERN_SECTOR, DATA2, 3), (1, COPY_SECTOR, DATA2, 1)];
    for (n, (kind, sector, buffer, flags)) in requests.into_iter().enumerate() {
        write32(&mut a, HEADER, kind);
        write32(&mut a, HEADER + 8, sector as u32);
        write32(&mut a, DESC + 16, buffer);
        write32(&mut a, DESC + 16 + 12, flags | 2 << 16);
        let idx = n as u32 + 1;
        // avail.idx (the upper half; flags 0); every ring entry is head 0.
        write32(&mut a, AVAIL, idx << 16);
        write32(&mut a, mmio + QUEUE_NOTIFY, queue);
        let poll = a.here();
        // Until used.idx == idx: `cmp ax, imm16`.
        a.load_eax(USED).shr_eax(16).bytes(&[0x66, 0x3d]).bytes(&(idx as u16).to_le_bytes());
        a.jcc(Cond::NotZero, poll);
        a.mov_dx(COM1).mov_al(b'.').out_dx_al();
    }
    // A driver reset, as Linux's on reboot: the device's reset runs on this vCPU's thread.
    write32(&mut a, mmio + STATUS, 0);
    a.out_bytes(COM1, b"\ndone\n");
    if reset {
        a.i8042_reset();
    }
    a.halt_forever();
    pvh_elf(&a.finish())
}

/// The status handshake with feature bits 32.. `high_features` (none below 32) and queue 0
/// of [`QUEUE_SIZE`] at DESC/AVAIL/USED (a packed ring: its ring and the driver's and
/// device's event structures), up to DRIVER_OK.
pub(crate) fn bring_up_registers(a: &mut Asm, mmio: u32, high_features: u32) {
    bring_up_queues(a, mmio, [0, high_features], 0);
}

/// The handshake with feature bits `features` (low word, high word) and queues
/// `0..=queue`: `queue` at DESC/AVAIL/USED, the ones before it at [`IDLE_RINGS`] (each
/// the same rings: no request is ever posted there).
fn bring_up_queues(a: &mut Asm, mmio: u32, features: [u32; 2], queue: u32) {
    for status in [0, 1, 3] {
        write32(a, mmio + STATUS, status);
    }
    write32(a, mmio + DRIVER_FEATURES_SEL, 1);
    write32(a, mmio + DRIVER_FEATURES, features[1]);
    write32(a, mmio + DRIVER_FEATURES_SEL, 0);
    write32(a, mmio + DRIVER_FEATURES, features[0]);
    write32(a, mmio + STATUS, 11); // + FEATURES_OK
    for q in 0..=queue {
        write32(a, mmio + QUEUE_SEL, q);
        write32(a, mmio + QUEUE_NUM, QUEUE_SIZE);
        let rings = if q == queue { [DESC, AVAIL, USED] } else { IDLE_RINGS };
        for (reg, addr) in [QUEUE_DESC, QUEUE_AVAIL, QUEUE_USED].into_iter().zip(rings) {
            write32(a, mmio + reg, addr);
            write32(a, mmio + reg + 4, 0);
        }
        write32(a, mmio + QUEUE_READY, 1);
    }
    write32(a, mmio + STATUS, 15); // + DRIVER_OK
}

/// The driver's side of the handshake: VERSION_1 only, queue 0 of [`QUEUE_SIZE`] at
/// DESC/AVAIL/USED, DRIVER_OK, and the one chain every request uses: header
/// (readable), data (writable for reads), status byte (writable).
fn bring_up(a: &mut Asm, mmio: u32) {
    bring_up_on(a, mmio, 0, 0);
}

/// [`bring_up`] with feature bits `low_features` too, requests on queue `queue`.
fn bring_up_on(a: &mut Asm, mmio: u32, low_features: u32, queue: u32) {
    // VIRTIO_F_VERSION_1 (bit 32) and `low_features`.
    bring_up_queues(a, mmio, [low_features, 1], queue);
    // One chain: header (readable), data (writable), status byte (writable). Each
    // descriptor: le64 addr, le32 len, le16 flags (1 NEXT, 2 WRITE), le16 next.
    for (i, (addr, len, flags, next)) in
        [(HEADER, 16, 1, 1), (DATA, READ_BYTES, 3, 2), (STATUS_BYTE, 1, 2, 0)].into_iter().enumerate()
    {
        let at = DESC + 16 * i as u32;
        write32(a, at, addr);
        write32(a, at + 8, len);
        write32(a, at + 12, flags | next << 16);
    }
}
