//! Reading the fields of a 9P message that `creds.rs` and `mapped.rs` look into: little-
//! endian integers and strings with a 16-bit length, after the 7-byte header.

/// A reader over a message body; each read is `None` past its end.
pub struct Body<'a>(pub &'a [u8]);

impl<'a> Body<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }
}

/// A message's type and its body.
pub fn parts(message: &[u8]) -> Option<(u8, Body<'_>)> {
    Some((*message.get(4)?, Body(message.get(super::confine::HEADER_LEN..)?)))
}
