//! JSON text exactly as QEMU's QMP server writes it.
//!
//! QEMU's JSON writer differs from serde_json's compact form in three ways that clients can see
//! (scripts do `grep '"return": {}'`): members and elements are separated by `", "` and keys by
//! `": "`; every character outside printable ASCII is escaped as `\uXXXX` (upper-case hex,
//! surrogate pairs above U+FFFF), because the QMP spec promises ASCII output; and the pretty form
//! (`-mon ...,pretty=on`) indents by four spaces and always breaks the line before a closing
//! bracket, even of an empty container (`{` newline `}`). Line breaks are `\r\n`: QEMU's
//! `monitor_puts` turns every `\n` it writes into `\r\n`, pretty line breaks included.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// What ends every message and every pretty line break on the wire.
pub(crate) const LINE_END: &[u8] = b"\r\n";

/// Spaces per nesting level in pretty output, as QEMU's JSON writer indents.
const PRETTY_INDENT: usize = 4;

/// A serde_json [`Formatter`] producing QEMU's layout (see the module documentation).
struct QemuFormatter {
    pretty: bool,
    depth: usize,
}

impl QemuFormatter {
    fn newline<W: ?Sized + Write>(&self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            writer.write_all(LINE_END)?;
            for _ in 0..self.depth * PRETTY_INDENT {
                writer.write_all(b" ")?;
            }
        }
        Ok(())
    }

    /// What goes before a member or an element: a separator unless it is the first, then (pretty) a line break.
    fn separate<W: ?Sized + Write>(&self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(if self.pretty { b"," } else { b", " })?;
        }
        self.newline(writer)
    }

    fn open<W: ?Sized + Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, writer: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        self.newline(writer)?;
        writer.write_all(bracket)
    }
}

impl Formatter for QemuFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.separate(writer, first)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.separate(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..'\u{7f}').contains(&c) {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04X}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, writer: &mut W, escape: CharEscape) -> io::Result<()> {
        match escape {
            CharEscape::Quote => writer.write_all(b"\\\""),
            CharEscape::ReverseSolidus => writer.write_all(b"\\\\"),
            CharEscape::Solidus => writer.write_all(b"\\/"),
            CharEscape::Backspace => writer.write_all(b"\\b"),
            CharEscape::FormFeed => writer.write_all(b"\\f"),
            CharEscape::LineFeed => writer.write_all(b"\\n"),
            CharEscape::CarriageReturn => writer.write_all(b"\\r"),
            CharEscape::Tab => writer.write_all(b"\\t"),
            CharEscape::AsciiControl(byte) => write!(writer, "\\u{byte:04X}"),
        }
    }
}

/// Appends `message` to `out` as one QMP message: QEMU's JSON layout followed by `\r\n`.
pub(crate) fn write_message<T: Serialize + ?Sized>(
    message: &T,
    pretty: bool,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    let mut serializer = Serializer::with_formatter(&mut *out, QemuFormatter { pretty, depth: 0 });
    if let Err(e) = message.serialize(&mut serializer) {
        // Never leave half a message queued.
        out.truncate(start);
        return Err(e);
    }
    out.extend_from_slice(LINE_END);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(value: &serde_json::Value, pretty: bool) -> String {
        let mut out = Vec::new();
        write_message(value, pretty, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_layout_has_qemu_spacing() {
        let value = json!({"a": [1, "x", null], "b": {}, "c": []});
        assert_eq!(text(&value, false), "{\"a\": [1, \"x\", null], \"b\": {}, \"c\": []}\r\n");
    }

    #[test]
    fn pretty_layout_indents_by_four_with_crlf() {
        let value = json!({"return": {}, "id": [1, 2]});
        let expected = "{\r\n    \"id\": [\r\n        1,\r\n        2\r\n    ],\r\n    \"return\": {\r\n    }\r\n}\r\n";
        assert_eq!(text(&value, true), expected);
    }

    #[test]
    fn output_is_ascii_with_upper_case_escapes() {
        let value = json!("é\u{1F600}\u{7f}\u{1}\n\"\\/");
        assert_eq!(text(&value, false), "\"\\u00E9\\uD83D\\uDE00\\u007F\\u0001\\n\\\"\\\\/\"\r\n");
    }
}
