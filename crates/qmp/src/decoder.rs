//! Streaming decoder: turns bytes arriving in arbitrary chunks into complete JSON values.
//!
//! Like QEMU's json-streamer, it does not need newlines between requests: it tracks string
//! quoting and bracket depth byte by byte, and a value is complete when its outermost bracket
//! closes (or, for a top-level scalar, when the next delimiter arrives). The complete text is
//! then parsed by serde_json. On the way it accepts QEMU's input extensions: `'single-quoted'`
//! strings and the `\'` escape, rewritten to standard JSON before parsing.
//!
//! # Errors and resynchronisation
//!
//! - A balanced value that is not valid JSON (`{"execute": }`) gets one `GenericError` reply
//!   ("JSON parse error, ..."); its end is known, so decoding simply goes on after it.
//! - A byte that can never occur there (a control character, a byte that is not ASCII outside a
//!   string, 0xFE/0xFF anywhere: QEMU's lexical errors, "JSON parse error, stray '...'"), junk
//!   outside any value (`hello`, a stray `}`), or a value nested deeper than [`MAX_NESTING`]
//!   gets one error, the value being assembled is dropped, and the rest of the line is
//!   discarded: decoding resumes after the next ASCII control character other than tab, which
//!   includes `\n` and `\r`. QEMU resumes at the next control character or bracket; brackets in
//!   garbage restart bogus values that swallow the next real request, so this decoder waits for
//!   the line end. A control character is also the QMP spec's way for a client to reset the
//!   parser, and it works here: it either raises an error or ends the skipping.
//! - Repeated garbage on one line is answered once: after a garbage error, further garbage
//!   errors are suppressed until a line ends or a value decodes, so a burst of binary junk does
//!   not turn into a burst of replies.
//! - A value longer than [`MAX_REQUEST_BYTES`] is fatal: one error is produced, then
//!   [`DecodeError::RequestTooLarge`]; the caller should close the connection (the rest of a
//!   huge value is still coming and there is no safe point to resume at).

use serde_json::Value;

use crate::wire::QmpError;

/// Largest request accepted, in bytes of JSON text (whitespace between requests not counted).
/// Real QMP requests are well under a kilobyte; 1 MiB leaves room for large `arguments`
/// (e.g. a base64 blob) while bounding what one client can make the VMM hold.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Deepest bracket nesting accepted. It must stay below serde_json's own recursion limit (128),
/// so that the decoder, not the parser, refuses deep input, with QEMU's message. No QMP command
/// nests beyond about ten levels.
pub const MAX_NESTING: usize = 100;

/// One thing the decoder extracted from the stream, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A complete JSON value (not necessarily an object: validation is the dispatcher's job).
    Value(Value),
    /// Input that could not be decoded; the reply to send for it (it never has an `id`).
    Error(QmpError),
}

/// The decoder cannot go on; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a QMP request exceeds the limit of {limit} bytes", limit = MAX_REQUEST_BYTES)]
    RequestTooLarge,
}

/// Incremental JSON value framer and parser for one connection (see the module documentation).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Text of the value being assembled, rewritten to standard JSON.
    message: Vec<u8>,
    braces: usize,
    brackets: usize,
    /// The quote character of the string being read, if inside one.
    string_quote: Option<u8>,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
    /// Reading a top-level bare word (number, keyword, or junk).
    bare_word: bool,
    /// Discarding input after an error until a control character (see module docs).
    skipping: bool,
    /// A garbage error was reported on this line already.
    garbage_reported: bool,
    /// A request went over [`MAX_REQUEST_BYTES`]; nothing more is decoded.
    failed: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Decodes `bytes`, appending what they complete to `out`. Bytes that do not complete a
    /// value are kept for the next call.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Decoded>) -> Result<(), DecodeError> {
        if self.failed {
            return Err(DecodeError::RequestTooLarge);
        }
        for &byte in bytes {
            self.byte(byte, out);
            if self.message.len() > MAX_REQUEST_BYTES {
                self.failed = true;
                self.message = Vec::new();
                out.push(Decoded::Error(QmpError::generic("JSON token size limit exceeded")));
                return Err(DecodeError::RequestTooLarge);
            }
        }
        Ok(())
    }

    /// Whether part of a value has been received and not completed yet.
    pub fn is_pending(&self) -> bool {
        !self.message.is_empty()
    }

    fn depth(&self) -> usize {
        self.braces + self.brackets
    }

    fn byte(&mut self, byte: u8, out: &mut Vec<Decoded>) {
        if self.skipping {
            if ends_skipping(byte) {
                self.skipping = false;
                self.end_of_line_seen(byte);
            }
            return;
        }
        if let Some(quote) = self.string_quote {
            self.string_byte(quote, byte, out);
            return;
        }
        if self.bare_word {
            if is_bare_word_byte(byte) {
                self.message.push(byte);
                return;
            }
            // The delimiter ends the word and is then read on its own (it may be the `\n`
            // that ends the skipping an invalid word starts).
            self.bare_word = false;
            self.emit(true, out);
            self.byte(byte, out);
            return;
        }
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {
                self.end_of_line_seen(byte);
                if self.depth() > 0 {
                    self.message.push(byte);
                }
            }
            b'{' | b'[' => {
                self.message.push(byte);
                if byte == b'{' {
                    self.braces += 1;
                } else {
                    self.brackets += 1;
                }
                if self.depth() > MAX_NESTING {
                    self.garbage("JSON nesting depth limit exceeded".to_string(), byte, out);
                }
            }
            b'}' | b']' => {
                self.message.push(byte);
                let open = if byte == b'}' { &mut self.braces } else { &mut self.brackets };
                match open.checked_sub(1) {
                    Some(remaining) => {
                        *open = remaining;
                        if self.depth() == 0 {
                            self.emit(false, out);
                        }
                    }
                    // A closer with nothing open: junk; serde_json words the error.
                    None => self.emit(true, out),
                }
            }
            b'"' | b'\'' => {
                self.string_quote = Some(byte);
                self.message.push(b'"');
            }
            b':' | b',' if self.depth() == 0 => {
                self.message.push(byte);
                self.emit(true, out);
            }
            0x00..=0x1f | 0x80..=0xff => self.garbage(stray(byte), byte, out),
            _ => {
                self.message.push(byte);
                if self.depth() == 0 {
                    self.bare_word = true;
                }
            }
        }
    }

    fn string_byte(&mut self, quote: u8, byte: u8, out: &mut Vec<Decoded>) {
        if is_invalid_in_string(byte) {
            self.garbage(stray(byte), byte, out);
            return;
        }
        if self.escaped {
            self.escaped = false;
            // QEMU's `\'` escape is not JSON: write the bare quote, which needs no escape
            // inside the double-quoted string produced.
            if byte != b'\'' {
                self.message.push(b'\\');
            }
            self.message.push(byte);
            return;
        }
        match byte {
            b'\\' => self.escaped = true,
            _ if byte == quote => {
                self.string_quote = None;
                self.message.push(b'"');
                if self.depth() == 0 {
                    self.emit(false, out);
                }
            }
            // Only reachable inside a single-quoted string, rewritten as double-quoted.
            b'"' => self.message.extend_from_slice(b"\\\""),
            _ => self.message.push(byte),
        }
    }

    /// Parses the assembled text. `is_junk`: it did not come from a balanced value or a complete
    /// string, so if it fails to parse the rest of the line is discarded.
    fn emit(&mut self, is_junk: bool, out: &mut Vec<Decoded>) {
        let text = std::mem::take(&mut self.message);
        self.braces = 0;
        self.brackets = 0;
        match serde_json::from_slice::<Value>(&text) {
            Ok(value) => {
                self.garbage_reported = false;
                out.push(Decoded::Value(value));
            }
            Err(e) if is_junk => {
                self.report_garbage(parse_error_desc(&e), out);
                self.skipping = true;
            }
            Err(e) => out.push(Decoded::Error(QmpError::generic(parse_error_desc(&e)))),
        }
    }

    /// Drops the value being assembled after a lexical error or limit at `byte`, reports it,
    /// and skips the rest of the line, unless `byte` itself is where decoding may resume.
    fn garbage(&mut self, desc: String, byte: u8, out: &mut Vec<Decoded>) {
        self.message.clear();
        self.braces = 0;
        self.brackets = 0;
        self.string_quote = None;
        self.escaped = false;
        self.bare_word = false;
        self.report_garbage(desc, out);
        self.skipping = !ends_skipping(byte);
        self.end_of_line_seen(byte);
    }

    fn report_garbage(&mut self, desc: String, out: &mut Vec<Decoded>) {
        if !self.garbage_reported {
            self.garbage_reported = true;
            out.push(Decoded::Error(QmpError::generic(desc)));
        }
    }

    fn end_of_line_seen(&mut self, byte: u8) {
        if byte == b'\n' {
            self.garbage_reported = false;
        }
    }
}

/// Where skipping after an error ends: any ASCII control character but tab (so `\r`, `\n`, and
/// the characters the QMP spec tells clients to send to reset the parser).
fn ends_skipping(byte: u8) -> bool {
    byte < 0x20 && byte != b'\t'
}

/// Bytes that can continue a top-level number or keyword (anything else ends it).
fn is_bare_word_byte(byte: u8) -> bool {
    (0x21..0x7f).contains(&byte) && !matches!(byte, b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"' | b'\'')
}

/// Bytes QEMU's lexer rejects inside a string: raw control characters and bytes that never
/// occur in UTF-8 (other invalid UTF-8 is caught when the string is parsed).
fn is_invalid_in_string(byte: u8) -> bool {
    !(0x20..0xfe).contains(&byte)
}

/// QEMU's description of a lexical error.
fn stray(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("JSON parse error, stray '{}'", byte as char)
    } else {
        format!("JSON parse error, stray '\\x{byte:02x}'")
    }
}

/// QEMU's wording ("JSON parse error, ...") around serde_json's reason. serde_json's line and
/// column are dropped: they count in the rewritten text of one value, not in the client's stream.
/// The commonest reason is reworded as QEMU's, which the QMP spec quotes in its example.
fn parse_error_desc(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let reason = match full.rsplit_once(" at line ") {
        Some((reason, _)) => reason,
        None => &full,
    };
    let reason = if reason == "expected value" { "expecting value" } else { reason };
    format!("JSON parse error, {reason}")
}

#[cfg(test)]
mod tests;
