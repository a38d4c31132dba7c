//! VM Generation ID (`-device vmgenid`, with `acpi=on`): 16 bytes of guest memory that
//! change whenever the guest may have been duplicated. The DSDT's `VGEN` device gives
//! their address (`arch::layout::VMGENID_GUID_START`); every restore writes a new GUID
//! there before any vCPU runs and raises the GED's VMGenID event, so Linux's `vmgenid`
//! driver reseeds the kernel's RNG when the guest goes on. docs/snapshot.md ("Clones").

use crate::error::Error;
pub use crate::guid::{Guid, VmGenIdConfig};
use crate::power::PowerControl;
use arch::layout::VMGENID_GUID_START;
use devices::guest_memory::GuestMemoryMmap;
use vm_memory::{Bytes, GuestAddress};

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
