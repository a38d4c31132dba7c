//! Keys as QMP names them (QAPI `QKeyCode`, and QEMU's key numbers), with the bytes a PC
//! keyboard sends for them in scan code set 1 (what an i8042 that translates hands the
//! guest) and set 2 (what the keyboard itself sends).

/// One key: its QAPI qcode, its scan code set 1 code and set 2 code; `extended` keys are
/// prefixed by 0xE0 in both sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub qcode: &'static str,
    pub set1: u8,
    pub set2: u8,
    pub extended: bool,
}

const fn key(qcode: &'static str, set1: u8, set2: u8) -> Key {
    Key { qcode, set1, set2, extended: false }
}

const fn ext(qcode: &'static str, set1: u8, set2: u8) -> Key {
    Key { qcode, set1, set2, extended: true }
}

/// The 0xE0 prefix of extended keys, and set 2's break prefix.
const EXTENDED_PREFIX: u8 = 0xe0;
const SET2_BREAK_PREFIX: u8 = 0xf0;
/// Set 1 marks a break code by its top bit; QEMU's key numbers mark extended keys by it.
const SET1_BREAK_BIT: u8 = 0x80;

/// The keys `send-key` and `input-send-event` know: the standard 102-key layout.
pub const KEYS: &[Key] = &[
    key("esc", 0x01, 0x76),
    key("1", 0x02, 0x16),
    key("2", 0x03, 0x1e),
    key("3", 0x04, 0x26),
    key("4", 0x05, 0x25),
    key("5", 0x06, 0x2e),
    key("6", 0x07, 0x36),
    key("7", 0x08, 0x3d),
    key("8", 0x09, 0x3e),
    key("9", 0x0a, 0x46),
    key("0", 0x0b, 0x45),
    key("minus", 0x0c, 0x4e),
    key("equal", 0x0d, 0x55),
    key("backspace", 0x0e, 0x66),
    key("tab", 0x0f, 0x0d),
    key("q", 0x10, 0x15),
    key("w", 0x11, 0x1d),
    key("e", 0x12, 0x24),
    key("r", 0x13, 0x2d),
    key("t", 0x14, 0x2c),
    key("y", 0x15, 0x35),
    key("u", 0x16, 0x3c),
    key("i", 0x17, 0x43),
    key("o", 0x18, 0x44),
    key("p", 0x19, 0x4d),
    key("bracket_left", 0x1a, 0x54),
    key("bracket_right", 0x1b, 0x5b),
    key("ret", 0x1c, 0x5a),
    key("ctrl", 0x1d, 0x14),
    key("a", 0x1e, 0x1c),
    key("s", 0x1f, 0x1b),
    key("d", 0x20, 0x23),
    key("f", 0x21, 0x2b),
    key("g", 0x22, 0x34),
    key("h", 0x23, 0x33),
    key("j", 0x24, 0x3b),
    key("k", 0x25, 0x42),
    key("l", 0x26, 0x4b),
    key("semicolon", 0x27, 0x4c),
    key("apostrophe", 0x28, 0x52),
    key("grave_accent", 0x29, 0x0e),
    key("shift", 0x2a, 0x12),
    key("backslash", 0x2b, 0x5d),
    key("z", 0x2c, 0x1a),
    key("x", 0x2d, 0x22),
    key("c", 0x2e, 0x21),
    key("v", 0x2f, 0x2a),
    key("b", 0x30, 0x32),
    key("n", 0x31, 0x31),
    key("m", 0x32, 0x3a),
    key("comma", 0x33, 0x41),
    key("dot", 0x34, 0x49),
    key("slash", 0x35, 0x4a),
    key("shift_r", 0x36, 0x59),
    key("kp_multiply", 0x37, 0x7c),
    key("alt", 0x38, 0x11),
    key("spc", 0x39, 0x29),
    key("caps_lock", 0x3a, 0x58),
    key("f1", 0x3b, 0x05),
    key("f2", 0x3c, 0x06),
    key("f3", 0x3d, 0x04),
    key("f4", 0x3e, 0x0c),
    key("f5", 0x3f, 0x03),
    key("f6", 0x40, 0x0b),
    key("f7", 0x41, 0x83),
    key("f8", 0x42, 0x0a),
    key("f9", 0x43, 0x01),
    key("f10", 0x44, 0x09),
    key("num_lock", 0x45, 0x77),
    key("scroll_lock", 0x46, 0x7e),
    key("kp_7", 0x47, 0x6c),
    key("kp_8", 0x48, 0x75),
    key("kp_9", 0x49, 0x7d),
    key("kp_subtract", 0x4a, 0x7b),
    key("kp_4", 0x4b, 0x6b),
    key("kp_5", 0x4c, 0x73),
    key("kp_6", 0x4d, 0x74),
    key("kp_add", 0x4e, 0x79),
    key("kp_1", 0x4f, 0x69),
    key("kp_2", 0x50, 0x72),
    key("kp_3", 0x51, 0x7a),
    key("kp_0", 0x52, 0x70),
    key("kp_decimal", 0x53, 0x71),
    key("less", 0x56, 0x61),
    key("f11", 0x57, 0x78),
    key("f12", 0x58, 0x07),
    ext("kp_enter", 0x1c, 0x5a),
    ext("ctrl_r", 0x1d, 0x14),
    ext("kp_divide", 0x35, 0x4a),
    ext("alt_r", 0x38, 0x11),
    ext("home", 0x47, 0x6c),
    ext("up", 0x48, 0x75),
    ext("pgup", 0x49, 0x7d),
    ext("left", 0x4b, 0x6b),
    ext("right", 0x4d, 0x74),
    ext("end", 0x4f, 0x69),
    ext("down", 0x50, 0x72),
    ext("pgdn", 0x51, 0x7a),
    ext("insert", 0x52, 0x70),
    ext("delete", 0x53, 0x71),
    ext("meta_l", 0x5b, 0x1f),
    ext("meta_r", 0x5c, 0x27),
    ext("menu", 0x5d, 0x2f),
];

impl Key {
    /// The key a QAPI qcode names.
    pub fn by_qcode(qcode: &str) -> Option<Key> {
        KEYS.iter().find(|k| k.qcode == qcode).copied()
    }

    /// The key a QEMU key number names (`KeyValue` of type `number`): its set 1 code,
    /// plus 0x80 for an extended key (QEMU's numbering).
    pub fn by_number(number: u32) -> Option<Key> {
        KEYS.iter().find(|k| k.number() == number).copied()
    }

    pub fn number(&self) -> u32 {
        u32::from(self.set1) | if self.extended { u32::from(SET1_BREAK_BIT) } else { 0 }
    }

    /// The bytes of a press (`down`) or release, in set 1 (`translated`) or set 2.
    pub fn scancode(&self, down: bool, translated: bool) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(3);
        if self.extended {
            bytes.push(EXTENDED_PREFIX);
        }
        match (translated, down) {
            (true, true) => bytes.push(self.set1),
            (true, false) => bytes.push(self.set1 | SET1_BREAK_BIT),
            (false, true) => bytes.push(self.set2),
            (false, false) => bytes.extend([SET2_BREAK_PREFIX, self.set2]),
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_alt_delete_in_both_sets() {
        let ctrl = Key::by_qcode("ctrl").unwrap();
        let alt = Key::by_qcode("alt").unwrap();
        let delete = Key::by_qcode("delete").unwrap();
        assert_eq!(ctrl.scancode(true, false), [0x14]);
        assert_eq!(alt.scancode(true, false), [0x11]);
        assert_eq!(delete.scancode(true, false), [0xe0, 0x71]);
        assert_eq!(delete.scancode(false, false), [0xe0, 0xf0, 0x71]);
        assert_eq!(delete.scancode(true, true), [0xe0, 0x53]);
        assert_eq!(delete.scancode(false, true), [0xe0, 0xd3]);
        assert_eq!(ctrl.scancode(false, true), [0x9d]);
    }

    #[test]
    fn numbers_are_qemus() {
        assert_eq!(Key::by_number(0xd3).unwrap().qcode, "delete");
        assert_eq!(Key::by_number(0x1d).unwrap().qcode, "ctrl");
        assert_eq!(Key::by_number(0x9d).unwrap().qcode, "ctrl_r");
        assert!(Key::by_number(0x7f).is_none());
    }

    #[test]
    fn every_key_is_named_and_numbered_once() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert_ne!(a.qcode, b.qcode);
                assert_ne!(a.number(), b.number(), "{} and {}", a.qcode, b.qcode);
                assert!(a.extended != b.extended || a.set2 != b.set2, "{} and {}", a.qcode, b.qcode);
            }
        }
    }
}
