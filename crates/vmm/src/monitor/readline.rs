//! The human monitor's line editor: enough of QEMU's readline for a person at
//! a terminal or a script on a socket. Printable characters are echoed and
//! kept, backspace (DEL or BS) and C-u edit, CR or LF ends the line (LF right
//! after CR is the same line end), and terminal escape sequences (arrow keys)
//! are swallowed rather than inserted.

/// The prompt QEMU's human monitor prints, which scripts wait for.
pub const PROMPT: &str = "(qemu) ";

#[derive(Default)]
pub struct Readline {
    line: String,
    /// Inside an escape sequence: 1 after ESC, 2 after ESC [.
    escape: u8,
    last_was_cr: bool,
}

/// What one input byte did.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit {
    /// Echo these bytes (may be empty).
    Echo(&'static str, Option<char>),
    /// A whole line was entered (the echo of the line end is `"\r\n"`).
    Line(String),
}

impl Readline {
    pub fn feed(&mut self, byte: u8) -> Edit {
        let cr = self.last_was_cr;
        self.last_was_cr = byte == b'\r';
        match self.escape {
            1 => {
                self.escape = if byte == b'[' || byte == b'O' { 2 } else { 0 };
                return Edit::Echo("", None);
            }
            2 => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = 0;
                }
                return Edit::Echo("", None);
            }
            _ => {}
        }
        match byte {
            b'\n' if cr => Edit::Echo("", None),
            b'\r' | b'\n' => Edit::Line(std::mem::take(&mut self.line)),
            0x7f | 0x08 if self.line.pop().is_some() => Edit::Echo("\x08 \x08", None),
            0x15 => {
                let n = self.line.len();
                self.line.clear();
                // Erase the line on the terminal: back to the prompt's end.
                Edit::Echo(if n > 0 { "\r\x1b[K(qemu) " } else { "" }, None)
            }
            0x1b => {
                self.escape = 1;
                Edit::Echo("", None)
            }
            0x20..=0x7e => {
                self.line.push(byte as char);
                Edit::Echo("", Some(byte as char))
            }
            _ => Edit::Echo("", None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(r: &mut Readline, bytes: &[u8]) -> (String, Vec<String>) {
        let (mut echo, mut lines) = (String::new(), Vec::new());
        for &b in bytes {
            match r.feed(b) {
                Edit::Echo(s, c) => {
                    echo.push_str(s);
                    echo.extend(c);
                }
                Edit::Line(l) => lines.push(l),
            }
        }
        (echo, lines)
    }

    #[test]
    fn lines_are_echoed_edited_and_ended_by_cr_or_lf() {
        let mut r = Readline::default();
        let (echo, lines) = feed_all(&mut r, b"info statuss\x7f\r");
        assert_eq!((echo.as_str(), lines), ("info statuss\x08 \x08", vec!["info status".to_owned()]));
        // CR LF is one line end; a lone LF is one too.
        let (_, lines) = feed_all(&mut r, b"stop\r\ncont\nquit\r");
        assert_eq!(lines, ["stop", "cont", "quit"]);
        // Arrow keys and C-u.
        let (_, lines) = feed_all(&mut r, b"\x1b[Ainfo\x1bOB cpus\x15help\r");
        assert_eq!(lines, ["help"]);
        let (echo, _) = feed_all(&mut r, b"\x7f\x03\x00");
        assert_eq!(echo, "", "nothing to erase, control characters ignored");
    }
}
