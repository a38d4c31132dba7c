use super::*;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

struct Rig {
    data: I8042PortDevice,
    command: I8042PortDevice,
    controller: Arc<Mutex<I8042Controller>>,
    reset: EventFd,
    irq: EventFd,
}

fn rig() -> Rig {
    let reset = EventFd::new(EFD_NONBLOCK).unwrap();
    let irq = EventFd::new(EFD_NONBLOCK).unwrap();
    let controller = Arc::new(Mutex::new(I8042Controller::new(
        EventFdTrigger::new(reset.try_clone().unwrap()),
        EventFdTrigger::new(irq.try_clone().unwrap()),
    )));
    Rig {
        data: I8042PortDevice { controller: controller.clone(), port: I8042Port::Data },
        command: I8042PortDevice { controller: controller.clone(), port: I8042Port::Command },
        controller,
        reset,
        irq,
    }
}

impl Rig {
    fn status(&mut self) -> u8 {
        let mut b = [0u8];
        self.command.read(0, &mut b);
        b[0]
    }

    fn read(&mut self) -> Option<u8> {
        if self.status() & STATUS_OUTPUT_FULL == 0 {
            return None;
        }
        let mut b = [0u8];
        self.data.read(0, &mut b);
        Some(b[0])
    }

    fn drain(&mut self) -> Vec<u8> {
        std::iter::from_fn(|| self.read()).collect()
    }

    fn interrupts(&self) -> u64 {
        self.irq.read().unwrap_or(0)
    }
}

/// What Linux's i8042 probe does first: flush, self-test, read the configuration byte.
#[test]
fn linux_probe_finds_a_controller_without_a_mouse() {
    let mut r = rig();
    assert_eq!(r.drain(), [0u8; 0], "nothing to flush at power-on");
    r.command.write(0, &[CMD_SELF_TEST]);
    assert_eq!(r.drain(), [SELF_TEST_PASSED]);
    r.command.write(0, &[CMD_READ_CONFIG]);
    let config = r.drain()[0];
    assert_eq!(config & CONFIG_TRANSLATE, 0, "no translation: set 2 goes straight to atkbd");
    r.command.write(0, &[CMD_WRITE_CONFIG]);
    r.data.write(0, &[config & !CONFIG_KEYBOARD_INTERRUPT]);
    r.command.write(0, &[CMD_READ_CONFIG]);
    assert_eq!(r.drain(), [config & !CONFIG_KEYBOARD_INTERRUPT]);
    // AUX loop-back comes back without the mouse-data bit; the AUX test fails.
    r.command.write(0, &[CMD_WRITE_AUX_OUTPUT]);
    r.data.write(0, &[0x5a]);
    assert_eq!(r.status() & 0x20, 0);
    assert_eq!(r.drain(), [0x5a]);
    r.command.write(0, &[CMD_TEST_AUX]);
    assert_eq!(r.drain(), [INTERFACE_ERROR]);
    assert_eq!(r.interrupts(), 0, "controller replies are polled, not interrupts");
}

/// What atkbd does: GET ID, then LEDs off; every byte from the keyboard interrupts.
#[test]
fn keyboard_answers_atkbd_with_interrupts() {
    let mut r = rig();
    r.data.write(0, &[KBD_GET_ID]);
    assert_eq!(r.interrupts(), 1);
    assert_eq!(r.drain(), [KBD_ACK, 0xab, 0x83]);
    assert_eq!(r.interrupts(), 2, "one per byte after the first");
    r.data.write(0, &[KBD_SET_LEDS]);
    r.data.write(0, &[0]);
    assert_eq!(r.drain(), [KBD_ACK, KBD_ACK], "the LED byte is an argument, not a command");
    r.data.write(0, &[KBD_SCANCODE_SET]);
    r.data.write(0, &[0]);
    assert_eq!(r.drain(), [KBD_ACK, KBD_ACK, KBD_SET2]);
    r.data.write(0, &[0x01]);
    assert_eq!(r.drain(), [KBD_RESEND]);
}

#[test]
fn ctrl_alt_delete_is_typed_in_set_2_or_translated_set_1() {
    let mut r = rig();
    r.controller.lock().unwrap().ctrl_alt_delete();
    assert_eq!(r.drain(), [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14]);
    r.command.write(0, &[CMD_WRITE_CONFIG]);
    r.data.write(0, &[CONFIG_AT_RESET | CONFIG_TRANSLATE]);
    r.controller.lock().unwrap().ctrl_alt_delete();
    assert_eq!(r.drain(), [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d]);
}

#[test]
fn disabled_keyboard_holds_its_bytes_and_a_stopped_one_drops_keys() {
    let mut r = rig();
    r.command.write(0, &[CMD_DISABLE_KEYBOARD]);
    let a = Key::by_qcode("a").unwrap();
    r.controller.lock().unwrap().key_event(a, true);
    assert_eq!(r.drain(), [0u8; 0]);
    r.command.write(0, &[CMD_ENABLE_KEYBOARD]);
    assert_eq!(r.drain(), [0x1c]);
    r.data.write(0, &[KBD_RESET_DISABLE]);
    assert_eq!(r.drain(), [KBD_ACK]);
    r.controller.lock().unwrap().key_event(a, true);
    assert_eq!(r.drain(), [0u8; 0], "not scanning");
    r.data.write(0, &[KBD_ENABLE]);
    r.controller.lock().unwrap().key_event(a, false);
    assert_eq!(r.drain(), [KBD_ACK, 0xf0, 0x1c]);
}

#[test]
fn full_queue_drops_whole_keys() {
    let mut r = rig();
    let delete = Key::by_qcode("delete").unwrap();
    for _ in 0..QUEUE_LEN {
        r.controller.lock().unwrap().key_event(delete, true);
    }
    let bytes = r.drain();
    // The output buffer holds the first byte; the queue then fills up with whole keys.
    assert_eq!(bytes.len(), QUEUE_LEN);
    assert!(bytes.chunks(2).all(|c| c == [0xe0, 0x71]));
}

#[test]
fn reset_command_fires_the_reset_event() {
    let mut r = rig();
    r.command.write(0, &[CMD_READ_CONFIG]);
    assert!(r.reset.read().is_err());
    r.command.write(0, &[0xfe]);
    assert_eq!(r.reset.read().unwrap(), 1);
}

/// A guest that sends commands and never reads the replies fills the queue and no more.
#[test]
fn unread_replies_stop_at_the_queue_size() {
    let mut rig = rig();
    for _ in 0..200 {
        rig.data.write(0, &[KBD_GET_ID]);
    }
    assert_eq!(rig.controller.lock().unwrap().queue.len(), QUEUE_LEN);
    let state = rig.controller.lock().unwrap().save_state();
    assert!(rig.controller.lock().unwrap().restore_state(state).is_ok(), "a full queue restores");
}
