//! `-device i8042`: the PS/2 keyboard controller (data port 0x60, command/status port
//! 0x64, IRQ 1) with a keyboard behind it, enough for Linux's `i8042` and `atkbd`
//! drivers to find a keyboard, and for the VMM to type on it (`send-key`,
//! `input-send-event`, and Ctrl-Alt-Del for `system_powerdown` without ACPI).
//!
//! vm-superio's i8042 models only the CPU-reset command; it still handles that one here,
//! so a reset goes the same way with or without `-device i8042`. The rest follows the
//! 8042's documented commands, as QEMU's `hw/input/pckbd.c` and `ps2.c` implement them.
//! No mouse: the auxiliary port reports itself absent, so Linux skips it at once.

mod keys;
mod state;

pub use keys::{Key, KEYS};
pub use state::{I8042State, PendingWrite};

use crate::bus::BusDevice;
use crate::EventFdTrigger;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use vm_superio::{I8042Device, Trigger};

/// Status register bits.
const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM: u8 = 0x04;
const STATUS_LAST_WAS_COMMAND: u8 = 0x08;
/// The keyboard is not inhibited by a key lock.
const STATUS_UNLOCKED: u8 = 0x10;

/// Controller configuration byte ("command byte") bits.
const CONFIG_KEYBOARD_INTERRUPT: u8 = 0x01;
const CONFIG_SYSTEM: u8 = 0x04;
const CONFIG_KEYBOARD_DISABLED: u8 = 0x10;
const CONFIG_AUX_DISABLED: u8 = 0x20;
/// The controller translates the keyboard's set 2 codes to set 1.
const CONFIG_TRANSLATE: u8 = 0x40;
/// After power-on: keyboard interrupt on, self-test passed, no translation, no mouse
/// (Firecracker's value; Linux then talks set 2 to the keyboard directly).
const CONFIG_AT_RESET: u8 = CONFIG_KEYBOARD_INTERRUPT | CONFIG_SYSTEM | CONFIG_AUX_DISABLED;

/// Controller commands (port 0x64).
const CMD_READ_CONFIG: u8 = 0x20;
const CMD_WRITE_CONFIG: u8 = 0x60;
const CMD_DISABLE_AUX: u8 = 0xa7;
const CMD_ENABLE_AUX: u8 = 0xa8;
const CMD_TEST_AUX: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_TEST_KEYBOARD: u8 = 0xab;
const CMD_DISABLE_KEYBOARD: u8 = 0xad;
const CMD_ENABLE_KEYBOARD: u8 = 0xae;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
const CMD_WRITE_KEYBOARD_OUTPUT: u8 = 0xd2;
const CMD_WRITE_AUX_OUTPUT: u8 = 0xd3;
const CMD_WRITE_AUX: u8 = 0xd4;
const SELF_TEST_PASSED: u8 = 0x55;
const INTERFACE_OK: u8 = 0x00;
/// The answer to "test the mouse port": a general error, so Linux drops the AUX port.
const INTERFACE_ERROR: u8 = 0xff;
/// Output port: the CPU-reset line not asserted, the A20 gate open.
const OUTPUT_PORT: u8 = 0x03;

/// Keyboard commands (port 0x60) and replies.
const KBD_SET_LEDS: u8 = 0xed;
const KBD_ECHO: u8 = 0xee;
const KBD_SCANCODE_SET: u8 = 0xf0;
const KBD_GET_ID: u8 = 0xf2;
const KBD_SET_TYPEMATIC: u8 = 0xf3;
const KBD_ENABLE: u8 = 0xf4;
const KBD_RESET_DISABLE: u8 = 0xf5;
const KBD_RESET_ENABLE: u8 = 0xf6;
const KBD_RESET: u8 = 0xff;
const KBD_ACK: u8 = 0xfa;
const KBD_RESEND: u8 = 0xfe;
const KBD_SELF_TEST_PASSED: u8 = 0xaa;
/// A standard MF2 keyboard's id.
const KBD_ID: [u8; 2] = [0xab, 0x83];
/// The keyboard's only scan code set, reported by `F0 00`.
const KBD_SET2: u8 = 0x02;

/// Bytes the keyboard holds for the guest: QEMU's PS/2 queue size. Keys typed into a
/// full queue are dropped, as a real keyboard's would be.
const QUEUE_LEN: usize = 256;

/// Which port of the controller a bus range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum I8042Port {
    Data,
    Command,
}

/// What the next byte written to the data port is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Config,
    OutputPort,
    KeyboardOutput,
    AuxOutput,
    AuxDevice,
    /// The argument of this keyboard command.
    KeyboardParameter(u8),
}

/// The controller and its keyboard.
pub struct I8042Controller<T: Trigger = EventFdTrigger> {
    /// Handles the CPU-reset command (0xFE on port 0x64).
    reset: I8042Device<T>,
    irq: T,
    config: u8,
    status: u8,
    /// The byte in the output buffer (valid when STATUS_OUTPUT_FULL is set).
    output: u8,
    /// Bytes from the keyboard waiting for the output buffer.
    queue: VecDeque<u8>,
    pending: Pending,
    /// The keyboard sends key codes (F4/F5).
    scanning: bool,
}

impl<T: Trigger> I8042Controller<T>
where
    T::E: std::fmt::Display,
{
    /// `reset` fires on the CPU-reset command; `irq` raises IRQ 1.
    pub fn new(reset: T, irq: T) -> Self {
        I8042Controller {
            reset: I8042Device::new(reset),
            irq,
            config: CONFIG_AT_RESET,
            status: STATUS_UNLOCKED | STATUS_SYSTEM,
            output: 0,
            queue: VecDeque::new(),
            pending: Pending::None,
            scanning: true,
        }
    }

    /// Types `key`: its make (`down`) or break code, in the set the guest reads. Dropped
    /// while the keyboard is not scanning or its queue is full.
    pub fn key_event(&mut self, key: Key, down: bool) {
        if !self.scanning {
            return;
        }
        let bytes = key.scancode(down, self.config & CONFIG_TRANSLATE != 0);
        if self.queue.len() + bytes.len() > QUEUE_LEN {
            log::warn!("i8042: keyboard queue full, key {} dropped", key.qcode);
            return;
        }
        self.queue.extend(bytes);
        self.refill();
    }

    /// Presses and releases Ctrl-Alt-Delete, what a PC turns into a reboot.
    pub fn ctrl_alt_delete(&mut self) {
        let keys = ["ctrl", "alt", "delete"].map(|q| Key::by_qcode(q).expect("in the key table"));
        for key in keys {
            self.key_event(key, true);
        }
        for key in keys.iter().rev() {
            self.key_event(*key, false);
        }
    }

    fn read_data(&mut self) -> u8 {
        let byte = self.output;
        self.status &= !STATUS_OUTPUT_FULL;
        self.refill();
        byte
    }

    /// A reply of the controller itself: straight into the output buffer, no interrupt
    /// (Linux polls for these, with the keyboard interrupt off or on).
    fn controller_reply(&mut self, byte: u8) {
        self.output = byte;
        self.status |= STATUS_OUTPUT_FULL;
    }

    /// Moves the keyboard's next byte into an empty output buffer and interrupts, when
    /// the keyboard interface is enabled.
    fn refill(&mut self) {
        if self.status & STATUS_OUTPUT_FULL != 0 || self.config & CONFIG_KEYBOARD_DISABLED != 0 {
            return;
        }
        let Some(byte) = self.queue.pop_front() else { return };
        self.output = byte;
        self.status |= STATUS_OUTPUT_FULL;
        if self.config & CONFIG_KEYBOARD_INTERRUPT != 0 {
            if let Err(e) = self.irq.trigger() {
                log::error!("i8042: cannot raise IRQ 1: {e}");
            }
        }
    }

    /// Replies beyond the queue's size are dropped, as QEMU's `ps2_queue` drops them: a
    /// guest that writes commands without reading the replies cannot grow the queue (nor
    /// a snapshot, which refuses a longer one).
    fn keyboard_reply(&mut self, bytes: &[u8]) {
        let room = QUEUE_LEN.saturating_sub(self.queue.len());
        self.queue.extend(&bytes[..bytes.len().min(room)]);
        self.refill();
    }

    fn write_command(&mut self, command: u8) {
        self.status |= STATUS_LAST_WAS_COMMAND;
        self.pending = Pending::None;
        match command {
            CMD_READ_CONFIG => self.controller_reply(self.config),
            CMD_WRITE_CONFIG => self.pending = Pending::Config,
            CMD_DISABLE_AUX => self.config |= CONFIG_AUX_DISABLED,
            // There is no mouse: the port stays disabled.
            CMD_ENABLE_AUX => {}
            CMD_TEST_AUX => self.controller_reply(INTERFACE_ERROR),
            CMD_SELF_TEST => {
                self.status |= STATUS_SYSTEM;
                self.controller_reply(SELF_TEST_PASSED);
            }
            CMD_TEST_KEYBOARD => self.controller_reply(INTERFACE_OK),
            CMD_DISABLE_KEYBOARD => self.config |= CONFIG_KEYBOARD_DISABLED,
            CMD_ENABLE_KEYBOARD => {
                self.config &= !CONFIG_KEYBOARD_DISABLED;
                self.refill();
            }
            CMD_READ_OUTPUT_PORT => self.controller_reply(OUTPUT_PORT),
            CMD_WRITE_OUTPUT_PORT => self.pending = Pending::OutputPort,
            CMD_WRITE_KEYBOARD_OUTPUT => self.pending = Pending::KeyboardOutput,
            CMD_WRITE_AUX_OUTPUT => self.pending = Pending::AuxOutput,
            CMD_WRITE_AUX => self.pending = Pending::AuxDevice,
            // 0xFE (pulse the reset line) and everything vm-superio knows.
            other => {
                super::i8042::pulse(&mut self.reset, other);
            }
        }
    }

    fn write_data(&mut self, byte: u8) {
        self.status &= !STATUS_LAST_WAS_COMMAND;
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => self.keyboard_command(byte),
            Pending::Config => {
                self.config = byte;
                self.status = (self.status & !STATUS_SYSTEM) | (byte & CONFIG_SYSTEM);
                self.refill();
            }
            // Only the reset line matters, and Linux resets with 0xFE instead.
            Pending::OutputPort => {}
            Pending::KeyboardOutput => self.keyboard_reply(&[byte]),
            // The looped-back byte comes without the mouse-data status bit: Linux reads
            // that as "no AUX port" at once instead of timing out.
            Pending::AuxOutput => self.controller_reply(byte),
            Pending::AuxDevice => {}
            Pending::KeyboardParameter(command) => self.keyboard_parameter(command, byte),
        }
    }

    /// A byte for the keyboard: a command, answered with ACK and its reply.
    fn keyboard_command(&mut self, command: u8) {
        match command {
            KBD_SET_LEDS | KBD_SET_TYPEMATIC | KBD_SCANCODE_SET => {
                self.pending = Pending::KeyboardParameter(command);
                self.keyboard_reply(&[KBD_ACK]);
            }
            KBD_ECHO => self.keyboard_reply(&[KBD_ECHO]),
            KBD_GET_ID => self.keyboard_reply(&[KBD_ACK, KBD_ID[0], KBD_ID[1]]),
            KBD_ENABLE => {
                self.scanning = true;
                self.keyboard_reply(&[KBD_ACK]);
            }
            KBD_RESET_DISABLE | KBD_RESET_ENABLE => {
                self.scanning = command == KBD_RESET_ENABLE;
                self.queue.clear();
                self.keyboard_reply(&[KBD_ACK]);
            }
            KBD_RESET => {
                self.scanning = true;
                self.queue.clear();
                self.keyboard_reply(&[KBD_ACK, KBD_SELF_TEST_PASSED]);
            }
            // Key-type commands (F7-FD) change nothing here.
            0xf7..=0xfd => self.keyboard_reply(&[KBD_ACK]),
            _ => self.keyboard_reply(&[KBD_RESEND]),
        }
    }

    /// The argument of F0 (scan code set: only set 2; 0 asks which), ED (LEDs), F3.
    fn keyboard_parameter(&mut self, command: u8, byte: u8) {
        if command == KBD_SCANCODE_SET && byte == 0 {
            self.keyboard_reply(&[KBD_ACK, KBD_SET2]);
        } else {
            self.keyboard_reply(&[KBD_ACK]);
        }
    }

    fn read_status(&self) -> u8 {
        self.status
    }
}

/// One of the controller's two ports on the I/O bus.
pub struct I8042PortDevice<T: Trigger = EventFdTrigger> {
    pub controller: Arc<Mutex<I8042Controller<T>>>,
    pub port: I8042Port,
}

impl<T: Trigger + Send> BusDevice for I8042PortDevice<T>
where
    T::E: std::fmt::Display,
{
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        let mut controller = self.controller.lock().unwrap_or_else(|p| p.into_inner());
        let byte = match self.port {
            I8042Port::Data => controller.read_data(),
            I8042Port::Command => controller.read_status(),
        };
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = byte;
        }
        super::i8042::count_read(data.len());
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let Some(&byte) = data.first() else { return };
        super::i8042::count_write(data.len(), (self.port == I8042Port::Command).then_some(byte));
        let mut controller = self.controller.lock().unwrap_or_else(|p| p.into_inner());
        match self.port {
            I8042Port::Data => controller.write_data(byte),
            I8042Port::Command => controller.write_command(byte),
        }
    }

    fn save(&mut self) -> Result<crate::state::DeviceState, crate::state::StateError> {
        self.save_controller()
    }

    fn restore(&mut self, state: crate::state::DeviceState) -> Result<(), crate::state::StateError> {
        self.restore_controller(state)
    }
}

#[cfg(test)]
mod tests;
