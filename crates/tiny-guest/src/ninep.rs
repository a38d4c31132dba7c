//! 9P2000.L requests as Linux's v9fs client encodes them (little-endian fields, strings
//! with a 16-bit length, the whole message's size first), for the guests that drive
//! virtio-9p ([`crate::virtio`]) and the device's unit tests.

/// Message types (Linux's `include/net/9p/9p.h`); an answer's type is the request's + 1.
pub mod ty {
    pub const RLERROR: u8 = 7;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TMKNOD: u8 = 18;
    pub const TREADLINK: u8 = 22;
    pub const TGETATTR: u8 = 24;
    pub const TSETATTR: u8 = 26;
    pub const TREADDIR: u8 = 40;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const TRENAMEAT: u8 = 74;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TATTACH: u8 = 104;
    pub const TWALK: u8 = 110;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
}

/// A request under construction: type, tag, then fields.
pub struct Msg(Vec<u8>);

impl Msg {
    pub fn new(kind: u8, tag: u16) -> Msg {
        let mut b = vec![0, 0, 0, 0, kind];
        b.extend_from_slice(&tag.to_le_bytes());
        Msg(b)
    }
    pub fn u16(mut self, v: u16) -> Msg {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Msg {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Msg {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A string: its length, then its bytes.
    pub fn s(mut self, v: &str) -> Msg {
        self = self.u16(v.len() as u16);
        self.0.extend_from_slice(v.as_bytes());
        self
    }
    /// Counted data (Twrite): a 32-bit length, then the bytes.
    pub fn data(mut self, v: &[u8]) -> Msg {
        self = self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    /// The message with its size filled in.
    pub fn done(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

/// Tversion for 9P2000.L with `msize`.
pub fn version(tag: u16, msize: u32) -> Msg {
    Msg::new(ty::TVERSION, tag).u32(msize).s("9P2000.L")
}

/// Tattach of the share's root as `fid` (no authentication fid).
pub fn attach(tag: u16, fid: u32) -> Msg {
    Msg::new(ty::TATTACH, tag).u32(fid).u32(!0).s("root").s("").u32(0)
}

/// Twalk from `fid` to `newfid` through `names`.
pub fn walk(tag: u16, fid: u32, newfid: u32, names: &[&str]) -> Msg {
    let mut m = Msg::new(ty::TWALK, tag).u32(fid).u32(newfid).u16(names.len() as u16);
    for n in names {
        m = m.s(n);
    }
    m
}

/// Tlopen of `fid` with Linux open `flags`.
pub fn lopen(tag: u16, fid: u32, flags: u32) -> Msg {
    Msg::new(ty::TLOPEN, tag).u32(fid).u32(flags)
}

/// Tread of `count` bytes at offset 0.
pub fn read(tag: u16, fid: u32, count: u32) -> Msg {
    Msg::new(ty::TREAD, tag).u32(fid).u64(0).u32(count)
}

/// Twrite of `data` at offset 0.
pub fn write(tag: u16, fid: u32, data: &[u8]) -> Msg {
    Msg::new(ty::TWRITE, tag).u32(fid).u64(0).data(data)
}

/// Tlcreate of `name` in directory `fid` (which becomes the new file's), read-write, 0644.
pub fn lcreate(tag: u16, fid: u32, name: &str) -> Msg {
    Msg::new(ty::TLCREATE, tag).u32(fid).s(name).u32(2).u32(0o644).u32(0)
}

/// Tmkdir of `name` in directory `fid`, 0755.
pub fn mkdir(tag: u16, fid: u32, name: &str) -> Msg {
    Msg::new(ty::TMKDIR, tag).u32(fid).s(name).u32(0o755).u32(0)
}

/// Tsymlink: `name` in directory `fid` pointing to `target`, group `gid`.
pub fn symlink(tag: u16, fid: u32, name: &str, target: &str, gid: u32) -> Msg {
    Msg::new(ty::TSYMLINK, tag).u32(fid).s(name).s(target).u32(gid)
}

/// Tmknod: `name` in directory `fid` with `mode` (type bits included), device
/// `major`:`minor`, group `gid`.
pub fn mknod(tag: u16, fid: u32, name: &str, mode: u32, (major, minor): (u32, u32), gid: u32) -> Msg {
    Msg::new(ty::TMKNOD, tag).u32(fid).s(name).u32(mode).u32(major).u32(minor).u32(gid)
}

/// Tlink: a new name `name` in directory `dir` for the file of `fid`.
pub fn link(tag: u16, dir: u32, fid: u32, name: &str) -> Msg {
    Msg::new(ty::TLINK, tag).u32(dir).u32(fid).s(name)
}

/// Treadlink of `fid`.
pub fn readlink(tag: u16, fid: u32) -> Msg {
    Msg::new(ty::TREADLINK, tag).u32(fid)
}

/// Tgetattr of `fid`, every basic field.
pub fn getattr(tag: u16, fid: u32) -> Msg {
    Msg::new(ty::TGETATTR, tag).u32(fid).u64(0x7ff)
}

/// An Rgetattr's (mode, uid, gid, rdev).
pub fn getattr_fields(answer: &[u8]) -> Option<(u32, u32, u32, u64)> {
    let u32_at = |i: usize| Some(u32::from_le_bytes(answer.get(i..i + 4)?.try_into().ok()?));
    let rdev = u64::from_le_bytes(answer.get(48..56)?.try_into().ok()?);
    Some((u32_at(28)?, u32_at(32)?, u32_at(36)?, rdev))
}

/// An Rreadlink's target.
pub fn readlink_target(answer: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_le_bytes(answer.get(7..9)?.try_into().ok()?));
    answer.get(9..9 + len)
}

/// Trenameat of `from` in `from_dir` to `to` in `to_dir`.
pub fn renameat(tag: u16, from_dir: u32, from: &str, to_dir: u32, to: &str) -> Msg {
    Msg::new(ty::TRENAMEAT, tag).u32(from_dir).s(from).u32(to_dir).s(to)
}

/// Tunlinkat of `name` in `dir`.
pub fn unlinkat(tag: u16, dir: u32, name: &str) -> Msg {
    Msg::new(ty::TUNLINKAT, tag).u32(dir).s(name).u32(0)
}

/// Treaddir of `fid` from the start, up to `count` bytes.
pub fn readdir(tag: u16, fid: u32, count: u32) -> Msg {
    Msg::new(ty::TREADDIR, tag).u32(fid).u64(0).u32(count)
}

/// The messages in a stream of answers (each framed by its size); a cut one ends it.
pub fn split_answers(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while stream.len() >= 4 {
        let len = u32::from_le_bytes([stream[0], stream[1], stream[2], stream[3]]) as usize;
        if len < 7 || len > stream.len() {
            break;
        }
        out.push(&stream[..len]);
        stream = &stream[len..];
    }
    out
}

/// The errno of an Rlerror answer, or `None` for any other answer.
pub fn errno(answer: &[u8]) -> Option<u32> {
    (answer.get(4) == Some(&ty::RLERROR)).then(|| u32::from_le_bytes([answer[7], answer[8], answer[9], answer[10]]))
}
