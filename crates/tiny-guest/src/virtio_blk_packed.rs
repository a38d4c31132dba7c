//! The write-read-copy guest of `virtio_blk.rs` on a packed virtqueue (virtio 1.1 §2.8):
//! it acks VIRTIO_F_RING_PACKED, so the device reads queue 0's descriptor area as a
//! packed ring of 8 slots. Each request is three descriptors in the next slots (header,
//! data, status byte), the head's flags written last; the driver then polls the head's
//! slot until the device's used descriptor (AVAIL and USED both equal to the lap's wrap
//! counter) lands there. Three requests take nine slots, so the third crosses the end of
//! the ring and the wrap counter flips mid-chain.

use crate::asm::{Asm, Cond};
use crate::virtio_blk::{
    bring_up_registers, COPY_SECTOR, DATA, DATA2, DESC, HEADER, PATTERN_SECTOR, QUEUE_SIZE, READ_BYTES, STATUS_BYTE,
};
use crate::COM1;
/// Packed descriptor flags (§2.8.1): NEXT, WRITE, and the AVAIL/USED pair.
const F_NEXT: u32 = 1;
const F_WRITE: u32 = 2;
const F_AVAIL: u32 = 1 << 7;
const F_USED: u32 = 1 << 15;
/// Feature bits 32.. the driver acks: VERSION_1 (32) and RING_PACKED (34).
const HIGH_FEATURES: u32 = 1 | 1 << 2;

fn write32(a: &mut Asm, addr: u32, value: u32) {
    a.mov_eax(value).store_eax(addr);
}

/// [`crate::virtio_blk_write_read_copy`] with a packed ring: the same three requests and
/// output (`go\n`, a `.` each, `\ndone\n`), so the host checks the image the same way.
pub fn virtio_blk_packed_write_read_copy(mmio: u32) -> Vec<u8> {
    let mut a = Asm::new();
    bring_up_registers(&mut a, mmio, HIGH_FEATURES);
    a.mov_edi(DATA);
    let fill = a.here();
    a.mov_eax_edi().store_al_at_edi().add_edi(1).cmp_edi(DATA + READ_BYTES).jcc(Cond::NotZero, fill);
    a.out_bytes(COM1, b"go\n");
    let requests = [(1, PATTERN_SECTOR, DATA, 0), (0, PATTERN_SECTOR, DATA2, F_WRITE), (1, COPY_SECTOR, DATA2, 0)];
    for (n, (kind, sector, buffer, data_flags)) in requests.into_iter().enumerate() {
        write32(&mut a, HEADER, kind);
        write32(&mut a, HEADER + 8, sector as u32);
        let start = 3 * n as u32;
        let chain = [(HEADER, 16, F_NEXT), (buffer, READ_BYTES, data_flags | F_NEXT), (STATUS_BYTE, 1, F_WRITE)];
        // The head (i = 0) last: its flags make the whole chain available.
        for (i, (addr, len, flags)) in chain.into_iter().enumerate().rev() {
            let counter = start + i as u32;
            let wrap = (counter / QUEUE_SIZE).is_multiple_of(2);
            let flags = flags | if wrap { F_AVAIL } else { F_USED };
            let at = DESC + 16 * (counter % QUEUE_SIZE);
            write32(&mut a, at, addr);
            write32(&mut a, at + 4, 0);
            write32(&mut a, at + 8, len);
            // Buffer id n, then the flags (le16 each).
            write32(&mut a, at + 12, n as u32 | flags << 16);
        }
        write32(&mut a, mmio + crate::virtio_blk::QUEUE_NOTIFY, 0);
        // The used descriptor goes to the head's slot (requests complete in order).
        let head = DESC + 16 * (start % QUEUE_SIZE);
        let used = if (start / QUEUE_SIZE).is_multiple_of(2) { F_AVAIL | F_USED } else { 0 };
        let poll = a.here();
        // `and eax, AVAIL|USED` on the flags half; until it is the used pattern.
        a.load_eax(head + 12).shr_eax(16);
        a.bytes(&[0x25]).bytes(&(F_AVAIL | F_USED).to_le_bytes());
        a.bytes(&[0x3d]).bytes(&used.to_le_bytes());
        a.jcc(Cond::NotZero, poll);
        a.mov_dx(COM1).mov_al(b'.').out_dx_al();
    }
    write32(&mut a, mmio + crate::virtio_blk::STATUS, 0);
    a.out_bytes(COM1, b"\ndone\n").i8042_reset().halt_forever();
    crate::pvh_elf(&a.finish())
}
