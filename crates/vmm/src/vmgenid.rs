//! VM Generation ID (`-device vmgenid`, with `acpi=on`): 16 bytes of guest memory that
//! change whenever the guest may have been duplicated. The DSDT's `VGEN` device gives
//! their address (`arch::layout::VMGENID_GUID_START`); every restore writes a new GUID
//! there before any vCPU runs and raises the GED's VMGenID event, so Linux's `vmgenid`
//! driver reseeds the kernel's RNG when the guest goes on. docs/snapshot.md ("Clones").

use crate::power::PowerControl;
use crate::Error;
use arch::layout::VMGENID_GUID_START;
use devices::guest_memory::GuestMemoryMmap;
use std::fmt;
use vm_memory::{Bytes, GuestAddress};

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

/// Writes the generation ID of this start into guest memory: `guid=` or a random one.
/// On a restore, when it differs from what the guest last saw, the GED announces it;
/// this runs after the devices' saved state is restored (the GED's saved selector would
/// overwrite the event otherwise) and before any vCPU runs.
pub fn start(
    config: &VmGenIdConfig,
    mem: &GuestMemoryMmap,
    restored: bool,
    power: &PowerControl,
) -> Result<Guid, Error> {
    let guid = match config.guid {
        Some(fixed) => fixed,
        None => Guid::random().map_err(|source| Error::Io { what: "cannot draw a VM generation ID", source })?,
    };
    let address = GuestAddress(VMGENID_GUID_START);
    let mut previous = [0u8; 16];
    mem.read_slice(&mut previous, address).map_err(|_| Error::VmGenId)?;
    mem.write_slice(&guid.guest_bytes(), address).map_err(|_| Error::VmGenId)?;
    if restored && previous != guid.guest_bytes() {
        power.announce_new_generation();
    }
    Ok(guid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_canonical_form() {
        let text = "324E6EAF-D1D1-4BF6-BF41-B9BB6C91FB87";
        let guid = Guid::parse(text).unwrap();
        assert_eq!(guid.to_string(), text.to_ascii_lowercase());
        for bad in ["", "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb8", "324e6eafxd1d1-4bf6-bf41-b9bb6c91fb87", "auto"] {
            assert_eq!(Guid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_guest_sees_the_first_three_fields_little_endian() {
        let guid = Guid::parse("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        assert_eq!(
            guid.guest_bytes(),
            [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        );
    }

    #[test]
    fn random_ones_are_version_4_and_differ() {
        let (a, b) = (Guid::random().unwrap(), Guid::random().unwrap());
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(&text[14..15], "4", "{text}");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
    }

    #[test]
    fn start_writes_the_guid_where_the_dsdt_points() {
        let mem = crate::memory::create_guest_memory(2 << 20, &Default::default(), false).unwrap();
        let fixed = Guid::parse("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        let guid = start(&VmGenIdConfig { guid: Some(fixed) }, &mem, false, &PowerControl::default()).unwrap();
        assert_eq!(guid, fixed);
        let mut seen = [0u8; 16];
        mem.read_slice(&mut seen, GuestAddress(VMGENID_GUID_START)).unwrap();
        assert_eq!(seen, fixed.guest_bytes());
        let auto = start(&VmGenIdConfig::default(), &mem, true, &PowerControl::default()).unwrap();
        mem.read_slice(&mut seen, GuestAddress(VMGENID_GUID_START)).unwrap();
        assert_eq!(seen, auto.guest_bytes());
    }
}
