//! A virtio-mmio driver in a few dozen instructions, for devices whose requests are byte
//! strings answered in one buffer (virtio-9p): it sets up queue 0 of the device in the
//! first slot, sends each request in turn, waits for its answer by polling the used ring
//! (interrupts stay off), and copies the answer to COM1, framed by its own first 32-bit
//! word (a 9P message's size).

use crate::asm::{Asm, Cond};
use crate::{pvh_elf, COM1};

/// The first virtio-mmio slot.
const MMIO: u32 = 0xd000_0000;
/// Where the ring and buffers live in guest RAM (above the code at 1 MiB).
const DESC: u32 = 0x20_0000;
const AVAIL: u32 = 0x20_1000;
const USED: u32 = 0x20_2000;
const REQUEST: u32 = 0x20_3000;
const REPLY: u32 = 0x20_4000;
const REPLY_LEN: u32 = 0x1000;
const QUEUE_SIZE: u32 = 8;
/// The rings of queues after the first, 12 KiB each.
const OTHER_RINGS: u32 = 0x21_0000;

/// virtio-mmio registers (virtio 1.x §4.2.2) and status bits.
const DRIVER_FEATURES: u32 = 0x20;
const DRIVER_FEATURES_SEL: u32 = 0x24;
const QUEUE_SEL: u32 = 0x30;
const QUEUE_NUM: u32 = 0x38;
const QUEUE_READY: u32 = 0x44;
const QUEUE_NOTIFY: u32 = 0x50;
const STATUS: u32 = 0x70;
const QUEUE_DESC: u32 = 0x80;
const QUEUE_AVAIL: u32 = 0x90;
const QUEUE_USED: u32 = 0xa0;

fn store(a: &mut Asm, addr: u32, value: u32) {
    a.mov_eax(value).store_eax(addr);
}

/// Drives the device in slot 0 with `features` (low word, high word), sends `requests`
/// one by one and echoes each answer to COM1, then resets.
pub fn virtio_requests_echoed_then_reset(features: [u32; 2], requests: &[Vec<u8>]) -> Vec<u8> {
    let mut a = requests_in_turn(features, 1, requests, Some(echo_framed));
    a.i8042_reset().halt_forever();
    pvh_elf(&a.finish())
}

/// As [`virtio_requests_echoed_then_reset`], for devices whose answers are not framed
/// (virtio-rng's random bytes, a balloon's empty used buffers): nothing is echoed; once
/// every request is answered on queue 0, `done` is written to COM1 and the guest halts
/// (the test ends the VM, having read what the VMM counted). `queues` are set up (a
/// device refuses DRIVER_OK until all of its queues are: a balloon has two); only queue 0
/// carries requests.
pub fn virtio_requests_then_halt(features: [u32; 2], queues: u32, requests: &[Vec<u8>], done: &str) -> Vec<u8> {
    let mut a = requests_in_turn(features, queues, requests, None);
    a.out_bytes(COM1, done.as_bytes()).halt_forever();
    pvh_elf(&a.finish())
}

/// The driver: set-up, then each request sent and waited for, `after_each` run on its answer.
fn requests_in_turn(features: [u32; 2], queues: u32, requests: &[Vec<u8>], after_each: Option<fn(&mut Asm)>) -> Asm {
    let mut a = Asm::new();
    store(&mut a, MMIO + STATUS, 1); // ACKNOWLEDGE
    store(&mut a, MMIO + STATUS, 3); // DRIVER
    for (word, bits) in features.iter().enumerate() {
        store(&mut a, MMIO + DRIVER_FEATURES_SEL, word as u32);
        store(&mut a, MMIO + DRIVER_FEATURES, *bits);
    }
    store(&mut a, MMIO + STATUS, 0xb); // FEATURES_OK
    store(&mut a, MMIO + QUEUE_SEL, 0);
    store(&mut a, MMIO + QUEUE_NUM, QUEUE_SIZE);
    for (reg, addr) in [(QUEUE_DESC, DESC), (QUEUE_AVAIL, AVAIL), (QUEUE_USED, USED)] {
        store(&mut a, MMIO + reg, addr);
        store(&mut a, MMIO + reg + 4, 0);
    }
    store(&mut a, MMIO + QUEUE_READY, 1);
    // The other queues: rings of their own, above the first one's buffers, never used.
    for q in 1..queues {
        let base = OTHER_RINGS + (q - 1) * 0x3000;
        store(&mut a, MMIO + QUEUE_SEL, q);
        store(&mut a, MMIO + QUEUE_NUM, QUEUE_SIZE);
        for (reg, addr) in [(QUEUE_DESC, base), (QUEUE_AVAIL, base + 0x1000), (QUEUE_USED, base + 0x2000)] {
            store(&mut a, MMIO + reg, addr);
            store(&mut a, MMIO + reg + 4, 0);
        }
        store(&mut a, MMIO + QUEUE_READY, 1);
    }
    store(&mut a, MMIO + STATUS, 0xf); // DRIVER_OK
                                       // Every chain is descriptors 0 (the request) and 1 (the answer), so every avail ring
                                       // entry is head 0, which zeroed RAM already holds.
    store(&mut a, DESC + 16, REPLY);
    store(&mut a, DESC + 20, 0);
    store(&mut a, DESC + 24, REPLY_LEN);
    store(&mut a, DESC + 28, 2); // VIRTQ_DESC_F_WRITE
    for (i, request) in requests.iter().enumerate() {
        let sent = i as u32 + 1;
        for (k, chunk) in request.chunks(4).enumerate() {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            store(&mut a, REQUEST + 4 * k as u32, u32::from_le_bytes(word));
        }
        store(&mut a, DESC, REQUEST);
        store(&mut a, DESC + 4, 0);
        store(&mut a, DESC + 8, request.len() as u32);
        store(&mut a, DESC + 12, 1 | (1 << 16)); // VIRTQ_DESC_F_NEXT, next = 1
        store(&mut a, AVAIL, sent << 16); // flags 0, idx
        store(&mut a, MMIO + QUEUE_NOTIFY, 0);
        let wait = a.here();
        a.load_eax(USED).shr_eax(16);
        a.bytes(&[0x3d]).bytes(&sent.to_le_bytes()); // cmp eax, sent
        a.jcc(Cond::NotZero, wait);
        if let Some(after) = after_each {
            after(&mut a);
        }
    }
    a
}

/// Writes the answer at REPLY to COM1: as many bytes as its first 32-bit word says.
fn echo_framed(a: &mut Asm) {
    a.bytes(&[0xbe]).bytes(&REPLY.to_le_bytes()); // mov esi, REPLY
    a.bytes(&[0x8b, 0x0e]); // mov ecx, [esi]
    a.mov_dx(COM1);
    let top = a.here();
    a.bytes(&[0x8a, 0x06, 0xee, 0x46, 0x49]); // mov al, [esi]; out dx, al; inc esi; dec ecx
    a.jcc(Cond::NotZero, top);
}
