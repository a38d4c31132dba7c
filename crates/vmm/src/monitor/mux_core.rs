//! QEMU's mux chardev (`-chardev ...,mux=on`, `-serial mon:stdio`) without
//! the I/O: one backend shared by several front ends (the guest's serial port
//! and consoles, and a human monitor). Output from every front end goes to
//! the backend; input goes to the front end that has the focus, except for
//! the escape key (C-a, or `-echr N`) and the key after it:
//! `C-a h` help, `C-a x` quit, `C-a c` next front end, `C-a C-a` one C-a;
//! `C-a s`, `C-a b` and `C-a t` (disk sync, break, timestamps) do nothing here.

/// What the driver must do with input bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum MuxAction {
    /// Give these bytes to guest front end N.
    ToGuest(usize, Vec<u8>),
    /// Give this byte to the human monitor.
    ToMonitor(u8),
    /// Write this text to the backend.
    ToBackend(String),
    /// The monitor took the focus (show the banner the first time, then the prompt).
    MonitorFocused { first: bool },
    /// `C-a x`: end microvm.
    Quit,
}

pub struct MuxCore {
    guests: usize,
    monitor: bool,
    focus: usize,
    escape: u8,
    got_escape: bool,
    monitor_seen: bool,
}

/// `C-a` for 1, as QEMU writes it.
pub fn escape_name(escape: u8) -> String {
    match escape {
        1..=26 => format!("C-{}", (b'a' + escape - 1) as char),
        _ => format!("0x{escape:02x}"),
    }
}

impl MuxCore {
    /// `guests` guest front ends (numbered from 0) and, if `monitor`, a human
    /// monitor after them. The first front end has the focus.
    pub fn new(guests: usize, monitor: bool, escape: u8) -> MuxCore {
        MuxCore { guests, monitor, focus: 0, escape, got_escape: false, monitor_seen: false }
    }

    fn count(&self) -> usize {
        self.guests + usize::from(self.monitor)
    }

    pub fn monitor_focused(&self) -> bool {
        self.monitor && self.focus == self.guests
    }

    /// The action that starts the session: a monitor alone has the focus from the start.
    pub fn start(&mut self) -> Option<MuxAction> {
        self.monitor_focused().then(|| {
            self.monitor_seen = true;
            MuxAction::MonitorFocused { first: true }
        })
    }

    pub fn help(&self) -> String {
        let e = escape_name(self.escape);
        [
            ("h", "print this help"),
            ("x", "exit emulator"),
            ("s", "save disk data back to file (if -snapshot)"),
            ("t", "toggle console timestamps"),
            ("b", "send break (magic sysrq)"),
            ("c", "switch between console and monitor"),
        ]
        .iter()
        .map(|(k, what)| format!("{e} {k}    {what}\r\n"))
        .chain(std::iter::once(format!("{e} {e}  sends {e}\r\n")))
        .collect()
    }

    /// Input from the backend, in order.
    pub fn input(&mut self, bytes: &[u8]) -> Vec<MuxAction> {
        let mut out = Vec::new();
        let mut run = Vec::new();
        for &b in bytes {
            if self.got_escape {
                self.got_escape = false;
                match b {
                    _ if b == self.escape => run.push(b),
                    b'h' | b'?' => {
                        self.flush(&mut run, &mut out);
                        out.push(MuxAction::ToBackend(self.help()));
                    }
                    b'x' => {
                        self.flush(&mut run, &mut out);
                        out.push(MuxAction::ToBackend("QEMU: Terminated\r\n".into()));
                        out.push(MuxAction::Quit);
                        return out;
                    }
                    b'c' if self.count() > 1 => {
                        self.flush(&mut run, &mut out);
                        self.focus = (self.focus + 1) % self.count();
                        if self.monitor_focused() {
                            out.push(MuxAction::MonitorFocused { first: !self.monitor_seen });
                            self.monitor_seen = true;
                        }
                    }
                    _ => {}
                }
            } else if b == self.escape {
                self.got_escape = true;
            } else {
                run.push(b);
            }
        }
        self.flush(&mut run, &mut out);
        out
    }

    fn flush(&self, run: &mut Vec<u8>, out: &mut Vec<MuxAction>) {
        if run.is_empty() || self.count() == 0 {
            run.clear();
            return;
        }
        if self.monitor_focused() {
            out.extend(run.drain(..).map(MuxAction::ToMonitor));
        } else {
            out.push(MuxAction::ToGuest(self.focus, std::mem::take(run)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MuxAction::*;

    #[test]
    fn input_goes_to_the_focus_and_c_a_c_cycles() {
        let mut m = MuxCore::new(2, true, 1);
        assert_eq!(m.start(), None, "a guest has the focus first");
        assert_eq!(m.input(b"ls\r"), [ToGuest(0, b"ls\r".to_vec())]);
        assert_eq!(m.input(b"\x01c"), []);
        assert_eq!(m.input(b"x"), [ToGuest(1, b"x".to_vec())]);
        assert_eq!(m.input(b"\x01ci"), [MonitorFocused { first: true }, ToMonitor(b'i')]);
        assert_eq!(m.input(b"\x01c\x01c"), []);
        // Focus went monitor -> guest 0 -> guest 1; once more is the monitor again.
        assert_eq!(m.input(b"\x01c"), [MonitorFocused { first: false }]);
    }

    #[test]
    fn escape_keys() {
        let mut m = MuxCore::new(1, false, 1);
        // C-a C-a sends one C-a; C-a s/b/t and unknown keys do nothing; c with one front end too.
        assert_eq!(m.input(b"a\x01\x01b\x01s\x01t\x01b\x01z\x01c"), [ToGuest(0, b"a\x01b".to_vec())]);
        let help = m.help();
        assert!(help.starts_with("C-a h    print this help\r\n") && help.ends_with("C-a C-a  sends C-a\r\n"));
        assert_eq!(m.input(b"\x01h"), [ToBackend(help)]);
        assert_eq!(
            m.input(b"q\x01xignored"),
            [ToGuest(0, b"q".to_vec()), ToBackend("QEMU: Terminated\r\n".into()), Quit]
        );
        // The escape split across reads still counts.
        let mut m = MuxCore::new(1, true, 1);
        assert_eq!(m.input(b"\x01"), []);
        assert_eq!(m.input(b"c"), [MonitorFocused { first: true }]);
    }

    #[test]
    fn echr_changes_the_escape_key_and_a_monitor_alone_has_the_focus() {
        let mut m = MuxCore::new(1, true, 0x14);
        assert_eq!(escape_name(0x14), "C-t");
        assert_eq!(m.input(b"\x01\x14c"), [ToGuest(0, vec![1]), MonitorFocused { first: true }]);
        let mut m = MuxCore::new(0, true, 1);
        assert_eq!(m.start(), Some(MonitorFocused { first: true }));
        assert_eq!(m.input(b"q"), [ToMonitor(b'q')]);
    }
}
