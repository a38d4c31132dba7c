//! virtio-input keyboard (`-device virtio-keyboard-device`): the keys QMP
//! `send-key` and `input-send-event` type reach the guest as Linux input
//! events (EV_KEY, then EV_SYN), as QEMU's virtio-keyboard sends them.
//!
//! Events are written by whoever calls [`VirtioKeyboard::key_event`] (the
//! monitor, on the main thread) under the device's lock, into buffers the
//! guest left in the event queue; those that find no buffer wait in a
//! bounded queue until the guest adds some (a queue notification on the
//! `virtio` thread). The status queue (LED changes) is read and dropped.

use std::collections::VecDeque;

use super::{come_back_later, read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice};
use super::{CHAINS_PER_TURN, VIRTIO_F_VERSION_1};
use crate::guest_memory::GuestMemoryMmap;
use crate::guest_warn;
use crate::legacy::Key;
use crate::noise::LineBudget;
use event_manager::{EventOps, Events, MutEventSubscriber};

use vm_memory::Bytes;

/// VIRTIO_ID_INPUT.
pub const VIRTIO_ID_INPUT: u32 = 18;
const QUEUE_SIZE: u16 = 64;
const EVENT_QUEUE: usize = 0;
const STATUS_QUEUE: usize = 1;
/// Events kept while the guest has no buffer: QEMU's virtio-input keeps 64.
const MAX_PENDING: usize = 64;

// virtio_input_config selectors (virtio 1.x §5.8.5).
const CFG_ID_NAME: u8 = 0x01;
#[cfg(test)]
const CFG_ID_SERIAL: u8 = 0x02;
const CFG_ID_DEVIDS: u8 = 0x03;
const CFG_EV_BITS: u8 = 0x11;
/// Offset of the answer in the configuration space (select, subsel, size, 5 reserved).
const CFG_PAYLOAD: usize = 8;

// Linux input event types and the one code of EV_SYN used.
const EV_SYN: u16 = 0x00;
const EV_KEY: u16 = 0x01;
const SYN_REPORT: u16 = 0;

/// What the guest reads as the device's name, and its ids (QEMU's virtio-keyboard's).
const NAME: &[u8] = b"QEMU Virtio Keyboard";
const BUS_VIRTUAL: u16 = 0x06;
const DEVIDS: [u16; 4] = [BUS_VIRTUAL, 0x0627, 0x0001, 0x0001];

/// The Linux key code (`KEY_*`) of `key`. For the keys without the 0xE0 prefix
/// Linux's codes are the scan code set 1 codes; the extended ones are listed.
pub fn linux_key_code(key: &Key) -> Option<u16> {
    if !key.extended {
        return Some(u16::from(key.set1));
    }
    let code = match key.set1 {
        0x1c => 96,  // KEY_KPENTER
        0x1d => 97,  // KEY_RIGHTCTRL
        0x35 => 98,  // KEY_KPSLASH
        0x37 => 99,  // KEY_SYSRQ
        0x38 => 100, // KEY_RIGHTALT
        0x47 => 102, // KEY_HOME
        0x48 => 103, // KEY_UP
        0x49 => 104, // KEY_PAGEUP
        0x4b => 105, // KEY_LEFT
        0x4d => 106, // KEY_RIGHT
        0x4f => 107, // KEY_END
        0x50 => 108, // KEY_DOWN
        0x51 => 109, // KEY_PAGEDOWN
        0x52 => 110, // KEY_INSERT
        0x53 => 111, // KEY_DELETE
        0x5b => 125, // KEY_LEFTMETA
        0x5c => 126, // KEY_RIGHTMETA
        0x5d => 127, // KEY_COMPOSE
        _ => return None,
    };
    Some(code)
}

/// The EV_KEY bitmap: every key `send-key` knows.
fn key_bits() -> Vec<u8> {
    let mut bits = vec![0u8; 128 / 8];
    for code in crate::legacy::KEYS.iter().filter_map(linux_key_code) {
        bits[usize::from(code / 8)] |= 1 << (code % 8);
    }
    while bits.last() == Some(&0) {
        bits.pop();
    }
    bits
}

/// What a snapshot keeps of the keyboard beyond its queues: the configuration space's
/// selectors and the events still waiting for a buffer.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct KeyboardState {
    pub select: u8,
    pub subsel: u8,
    pub pending: Vec<(u16, u16, u32)>,
}

pub struct VirtioKeyboard {
    activation: Activation,
    select: u8,
    subsel: u8,
    /// Events (type, code, value) waiting for a buffer, oldest first.
    pending: VecDeque<(u16, u16, u32)>,
    broken: bool,
    used_ring_lines: LineBudget,
}

impl VirtioKeyboard {
    pub fn new() -> std::io::Result<Self> {
        Ok(VirtioKeyboard {
            activation: Activation::new()?,
            select: 0,
            subsel: 0,
            pending: VecDeque::new(),
            broken: false,
            used_ring_lines: LineBudget::new(),
        })
    }

    /// Presses (`down`) or releases `key`: an EV_KEY event and an EV_SYN
    /// report, delivered now if the guest left buffers, else kept (the
    /// oldest dropped beyond [`MAX_PENDING`], as a full QEMU queue drops).
    pub fn key_event(&mut self, key: &Key, down: bool) {
        let Some(code) = linux_key_code(key) else { return };
        for event in [(EV_KEY, code, u32::from(down)), (EV_SYN, SYN_REPORT, 0)] {
            if self.pending.len() == MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(event);
        }
        self.deliver();
    }

    /// The answer to the current `select`/`subsel` (empty: size 0).
    fn answer(&self) -> Vec<u8> {
        match (self.select, self.subsel) {
            (CFG_ID_NAME, 0) => NAME.to_vec(),
            (CFG_ID_DEVIDS, 0) => DEVIDS.iter().flat_map(|v| v.to_le_bytes()).collect(),
            (CFG_EV_BITS, s) if u16::from(s) == EV_KEY => key_bits(),
            // No serial (CFG_ID_SERIAL), no properties, no other event types, no axes.
            _ => Vec::new(),
        }
    }

    /// Writes pending events into the event queue's buffers, one event a buffer.
    fn deliver(&mut self) {
        if self.broken {
            return;
        }
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let queue = &mut ctx.queues[EVENT_QUEUE];
        let mut used_any = false;
        while let Some(&(kind, code, value)) = self.pending.front() {
            let chain = match queue.iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    log::warn!("virtio-keyboard: bad avail ring ({e}); device needs reset");
                    self.broken = true;
                    ctx.interrupt.signal_needs_reset();
                    return;
                }
            };
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            let mut event = [0u8; 8];
            event[0..2].copy_from_slice(&kind.to_le_bytes());
            event[2..4].copy_from_slice(&code.to_le_bytes());
            event[4..8].copy_from_slice(&value.to_le_bytes());
            let written = write_event(&mem, chain, &event);
            self.pending.pop_front();
            if queue.add_used(&mem, head, written).is_err() {
                guest_warn!(self.used_ring_lines, "virtio-keyboard: used ring is outside guest memory");
                return;
            }
            used_any = true;
        }
        if used_any && queue.needs_notification(&mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
    }

    /// Completes the status queue's buffers (LED states), which nothing shows.
    fn drain_status(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let queue = &mut ctx.queues[STATUS_QUEUE];
        let mut used_any = false;
        for served in 0.. {
            if served == CHAINS_PER_TURN {
                come_back_later(&ctx.queue_events[STATUS_QUEUE]);
                break;
            }
            let Ok(Some(chain)) = queue.iter(&mem).map(|mut i| i.next()) else { break };
            if queue.add_used(&mem, chain.head_index(), 0).is_err() {
                guest_warn!(self.used_ring_lines, "virtio-keyboard: used ring is outside guest memory");
                return;
            }
            used_any = true;
        }
        if used_any && queue.needs_notification(&mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
    }
}

/// Writes `event` into the first writable descriptor of `chain` big enough
/// for it; returns the bytes written (0 if none was).
fn write_event<M>(mem: &GuestMemoryMmap, chain: crate::virtio::queue::Chain<M>, event: &[u8; 8]) -> u32
where
    M: std::ops::Deref<Target = GuestMemoryMmap>,
{
    for desc in chain.writable() {
        if desc.len() as usize >= event.len() && mem.write_slice(event, desc.addr()).is_ok() {
            return event.len() as u32;
        }
    }
    0
}

impl VirtioDevice for VirtioKeyboard {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_INPUT
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let answer = self.answer();
        let mut config = vec![0u8; CFG_PAYLOAD + 128];
        config[0] = self.select;
        config[1] = self.subsel;
        // At most 128 bytes: the union's size; the answers here are shorter.
        let len = answer.len().min(128);
        config[2] = len as u8;
        config[CFG_PAYLOAD..CFG_PAYLOAD + len].copy_from_slice(&answer[..len]);
        read_config_bytes(&config, offset, data);
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // Only select and subsel are the driver's to write.
        for (i, byte) in data.iter().enumerate() {
            match offset.checked_add(i as u64) {
                Some(0) => self.select = *byte,
                Some(1) => self.subsel = *byte,
                _ => {}
            }
        }
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        self.pending.clear();
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    fn save(&mut self) -> Result<super::VirtioState, crate::state::StateError> {
        Ok(super::VirtioState::Keyboard(KeyboardState {
            select: self.select,
            subsel: self.subsel,
            pending: self.pending.iter().copied().collect(),
        }))
    }
    fn restore(&mut self, state: super::VirtioState) -> Result<(), crate::state::StateError> {
        let super::VirtioState::Keyboard(saved) = state else {
            return Err(state.mismatch("virtio-keyboard"));
        };
        if saved.pending.len() > MAX_PENDING {
            return Err(crate::state::StateError::Invalid {
                device: "virtio-keyboard",
                what: "more pending events than it keeps",
            });
        }
        self.select = saved.select;
        self.subsel = saved.subsel;
        self.pending = saved.pending.into();
        Ok(())
    }
}

impl MutEventSubscriber for VirtioKeyboard {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            if self.activation.on_wake(ops) {
                self.deliver();
                self.drain_status();
            }
            return;
        }
        let index = events.data() as usize;
        if let Some(evt) = self.activation.active.as_ref().and_then(|ctx| ctx.queue_events.get(index)) {
            let _ = evt.read();
        }
        match index {
            EVENT_QUEUE => self.deliver(),
            STATUS_QUEUE => self.drain_status(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
