//! The VM Generation ID's value and its `-device vmgenid` settings: plain data, shared by
//! the configuration, the power devices that announce a new one and `vmgenid.rs`, which
//! writes it into guest memory.

use std::fmt;

/// A GUID in RFC 4122 byte order: the order it is printed in, and `guid=` is given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guid([u8; 16]);

impl Guid {
    /// `8-4-4-4-12` hex digits, either case (QEMU's `qemu_uuid_parse`).
    pub fn parse(text: &str) -> Option<Guid> {
        let well_formed = text.len() == 36
            && text.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if !well_formed {
            return None;
        }
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Guid(bytes))
    }

    /// A random (version 4) GUID from the kernel's pool, as QEMU's `guid=auto` makes one.
    pub fn random() -> std::io::Result<Guid> {
        let mut bytes = [0u8; 16];
        let mut filled = 0;
        while filled < bytes.len() {
            let rest = &mut bytes[filled..];
            // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`, a live,
            // exclusively borrowed buffer.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            match usize::try_from(n) {
                Ok(n) => filled += n,
                Err(_) => {
                    let error = std::io::Error::last_os_error();
                    if error.kind() != std::io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
        // RFC 4122 §4.4: version 4 in the high nibble of byte 6, variant 10 in byte 8.
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Ok(Guid(bytes))
    }

    /// The bytes the guest reads: Microsoft's GUID layout, whose first three fields are
    /// little-endian (QEMU writes it so, `qemu_uuid_bswap`), so a guest that prints its
    /// generation ID as a GUID shows what `query-vm-generation-id` does.
    pub fn guest_bytes(&self) -> [u8; 16] {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// `-device vmgenid[,guid=auto|UUID]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmGenIdConfig {
    /// `guid=UUID`: every boot and restore shows this one; `None` (`guid=auto`, the
    /// default): a random one at boot and a new one at every restore.
    pub guid: Option<Guid>,
}
