//! What `confine.rs`, `creds.rs` and `mapped.rs` read of a raw 9P message: its header,
//! the message types they look into, and its fields (little-endian integers and strings
//! with a 16-bit length, after the header). It depends on none of them, so each can use it.

/// 9P2000.L message types (Linux's `include/net/9p/9p.h`) that microvm looks into or
/// answers itself, around the `p9` server.
pub mod ty {
    pub const RLERROR: u8 = 7;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const RLCREATE: u8 = 15;
    pub const TSYMLINK: u8 = 16;
    pub const RSYMLINK: u8 = 17;
    pub const TMKNOD: u8 = 18;
    pub const RMKNOD: u8 = 19;
    pub const TRENAME: u8 = 20;
    pub const TREADLINK: u8 = 22;
    pub const RREADLINK: u8 = 23;
    pub const TGETATTR: u8 = 24;
    pub const RGETATTR: u8 = 25;
    pub const TSETATTR: u8 = 26;
    pub const TXATTRCREATE: u8 = 32;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const RMKDIR: u8 = 73;
    pub const TRENAMEAT: u8 = 74;
    pub const RRENAMEAT: u8 = 75;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TATTACH: u8 = 104;
    pub const RATTACH: u8 = 105;
    pub const TWALK: u8 = 110;
    pub const RWALK: u8 = 111;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
    pub const TREMOVE: u8 = 122;
}

/// Size, type and tag: the header of every 9P message.
pub const HEADER_LEN: usize = 7;

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
    Some((*message.get(4)?, Body(message.get(HEADER_LEN..)?)))
}
