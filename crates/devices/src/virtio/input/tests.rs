use super::*;
use crate::virtio::test_driver::TestDriver;

const CONFIG: u64 = 0x100;

fn driver() -> (TestDriver, std::sync::Arc<std::sync::Mutex<VirtioKeyboard>>) {
    let (mut d, keyboard) = TestDriver::new(VirtioKeyboard::new().unwrap());
    d.activate(0, 16);
    (d, keyboard)
}

/// Selects `select`/`subsel` and reads the size byte and the answer, as Linux's driver does.
fn query(d: &mut TestDriver, select: u8, subsel: u8) -> Vec<u8> {
    d.write_reg(CONFIG, u32::from(select) | (u32::from(subsel) << 8));
    let size = (d.read_reg(CONFIG) >> 16) as usize & 0xff;
    let words: Vec<u8> = (0..32).flat_map(|i| d.read_reg(CONFIG + 8 + 4 * i).to_le_bytes()).collect();
    words[..size].to_vec()
}

fn key(qcode: &str) -> Key {
    Key::by_qcode(qcode).unwrap()
}

#[test]
fn identifies_as_a_virtio_input_keyboard() {
    let (mut d, _) = TestDriver::new(VirtioKeyboard::new().unwrap());
    assert_eq!(d.read_reg(0x8), VIRTIO_ID_INPUT);
    assert_eq!(d.device_features(), VIRTIO_F_VERSION_1);
    assert_eq!(query(&mut d, CFG_ID_NAME, 0), b"QEMU Virtio Keyboard");
    assert_eq!(query(&mut d, CFG_ID_DEVIDS, 0), [6, 0, 0x27, 0x06, 1, 0, 1, 0]);
    assert!(query(&mut d, CFG_ID_SERIAL, 0).is_empty());
    let keys = query(&mut d, CFG_EV_BITS, EV_KEY as u8);
    let has = |code: u16| keys.get(usize::from(code / 8)).is_some_and(|b| b & (1 << (code % 8)) != 0);
    assert!(has(1) && has(30) && has(97) && has(103) && has(127), "KEY_ESC, KEY_A, KEY_RIGHTCTRL, KEY_UP, KEY_COMPOSE");
    assert!(!has(0) && !has(84));
    assert!(query(&mut d, CFG_EV_BITS, 0x02).is_empty(), "no EV_REL: no pointer");
    assert!(query(&mut d, 0x12, 0).is_empty(), "no absolute axes");
}

#[test]
fn linux_key_codes_of_plain_and_extended_keys() {
    assert_eq!(linux_key_code(&key("esc")), Some(1));
    assert_eq!(linux_key_code(&key("a")), Some(30));
    assert_eq!(linux_key_code(&key("f12")), Some(88));
    assert_eq!(linux_key_code(&key("ctrl_r")), Some(97));
    assert_eq!(linux_key_code(&key("delete")), Some(111));
    assert_eq!(linux_key_code(&key("meta_l")), Some(125));
    // Every key send-key knows has a code.
    assert!(crate::legacy::KEYS.iter().all(|k| linux_key_code(k).is_some()));
}

/// One event: type, code, value, as the guest reads it from its buffer.
fn event(bytes: &[u8]) -> (u16, u16, u32) {
    (
        u16::from_le_bytes([bytes[0], bytes[1]]),
        u16::from_le_bytes([bytes[2], bytes[3]]),
        u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
    )
}

#[test]
fn a_key_press_is_ev_key_then_syn_in_the_guests_buffers() {
    let (mut d, keyboard) = driver();
    let bufs: Vec<u64> = (0..4).map(|_| d.alloc(8, 0xee)).collect();
    for &b in &bufs {
        d.add_chain(EVENT_QUEUE, &[(b, 8, true)]);
    }
    d.notify(EVENT_QUEUE as u32);
    keyboard.lock().unwrap().key_event(&key("a"), true);
    keyboard.lock().unwrap().key_event(&key("a"), false);
    assert_eq!(d.used(EVENT_QUEUE).len(), 4);
    assert!(d.interrupted());
    let events: Vec<_> = bufs.iter().map(|&b| event(&d.read_bytes(b, 8))).collect();
    assert_eq!(events, [(EV_KEY, 30, 1), (EV_SYN, 0, 0), (EV_KEY, 30, 0), (EV_SYN, 0, 0)]);
}

#[test]
fn events_wait_for_buffers_and_the_oldest_go_when_too_many_wait() {
    let (mut d, keyboard) = driver();
    keyboard.lock().unwrap().key_event(&key("b"), true);
    assert!(d.used(EVENT_QUEUE).is_empty(), "no buffer yet");
    let b = d.alloc(8, 0);
    d.add_chain(EVENT_QUEUE, &[(b, 8, true)]);
    d.notify(EVENT_QUEUE as u32);
    assert_eq!(d.used(EVENT_QUEUE).len(), 1, "the waiting press is delivered when a buffer comes");
    assert_eq!(event(&d.read_bytes(b, 8)), (EV_KEY, 48, 1));
    // Far more than fit: only the newest MAX_PENDING wait.
    for _ in 0..100 {
        keyboard.lock().unwrap().key_event(&key("c"), true);
    }
    assert_eq!(keyboard.lock().unwrap().pending.len(), MAX_PENDING);
}

#[test]
fn short_or_read_only_buffers_get_nothing_and_status_buffers_are_completed() {
    let (mut d, keyboard) = driver();
    let short = d.alloc(4, 0x11);
    let read_only = d.alloc(8, 0x22);
    d.add_chain(EVENT_QUEUE, &[(short, 4, true)]);
    d.add_chain(EVENT_QUEUE, &[(read_only, 8, false)]);
    d.notify(EVENT_QUEUE as u32);
    keyboard.lock().unwrap().key_event(&key("d"), true);
    let used = d.used(EVENT_QUEUE);
    assert_eq!(used.iter().map(|u| u.1).collect::<Vec<_>>(), [0, 0]);
    assert_eq!(d.read_bytes(short, 4), [0x11; 4]);
    assert_eq!(d.read_bytes(read_only, 8), [0x22; 8]);
    let led = d.alloc_with(&[0x11, 0, 0, 0, 1, 0, 0, 0]);
    d.add_chain(STATUS_QUEUE, &[(led, 8, false)]);
    d.notify(STATUS_QUEUE as u32);
    assert_eq!(d.used(STATUS_QUEUE).len(), 1);
}

#[test]
fn a_bad_avail_ring_stops_the_device_and_a_reset_clears_what_waited() {
    let (mut d, keyboard) = driver();
    d.set_avail_idx(EVENT_QUEUE, 1000);
    keyboard.lock().unwrap().key_event(&key("e"), true);
    assert_ne!(d.status() & crate::virtio::status::DEVICE_NEEDS_RESET, 0);
    d.write_reg(0x70, 0);
    assert!(keyboard.lock().unwrap().pending.is_empty());
    d.activate(0, 16);
    let b = d.alloc(8, 0);
    d.add_chain(EVENT_QUEUE, &[(b, 8, true)]);
    d.notify(EVENT_QUEUE as u32);
    keyboard.lock().unwrap().key_event(&key("e"), true);
    assert_eq!(d.used(EVENT_QUEUE).len(), 1, "served again after the reset");
}

#[test]
fn keys_waiting_for_a_buffer_survive_a_snapshot() {
    let mut keyboard = VirtioKeyboard::new().unwrap();
    keyboard.write_config(0, &[CFG_ID_NAME, 0]);
    keyboard.key_event(&key("a"), true);
    let saved = keyboard.save().unwrap();
    let super::super::VirtioState::Keyboard(state) = &saved else { panic!("{saved:?}") };
    assert_eq!(state.pending, [(EV_KEY, 30, 1), (EV_SYN, SYN_REPORT, 0)]);
    let mut restored = VirtioKeyboard::new().unwrap();
    restored.restore(saved.clone()).unwrap();
    assert_eq!(restored.save().unwrap(), saved);
    let e = restored.restore(super::super::VirtioState::Rng).unwrap_err();
    assert!(e.to_string().contains("virtio-keyboard"), "{e}");
}
