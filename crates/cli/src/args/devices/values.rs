//! The values of `-device` properties that need more than the generic
//! checks: numbers, MACs, vsock CIDs, virtio-fs tags and queue sizes.
//! Split from `devices.rs`, which keeps the devices themselves.

use super::super::keyval::Setting;
use super::super::{invalid, ArgsError};
use super::DEVICE;
use vmm::config::{FS_MAX_QUEUE_SIZE, FS_TAG_LEN};
use vmm::vmgenid::Guid;

/// A number in decimal or `0x` hex (QEMU's integer properties), at most `max`.
pub(super) fn parse_number(s: &Setting, max: u64) -> Result<u64, ArgsError> {
    let v = &s.value;
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    };
    n.filter(|n| *n <= max).ok_or_else(|| invalid(DEVICE, &s.text, format!("expected a number up to {max:#x}")))
}

/// `mac=` as QEMU spells it: six two-digit hex octets separated by `:` or
/// `-`; it must be a unicast address the guest can use.
pub(super) fn parse_mac(p: &Setting) -> Result<[u8; 6], ArgsError> {
    let syntax = || invalid(DEVICE, &p.text, "expected six hex octets such as 52:54:00:12:34:56");
    let b = p.value.as_bytes();
    if b.len() != 17 {
        return Err(syntax());
    }
    let mut mac = [0u8; 6];
    for (i, octet) in mac.iter_mut().enumerate() {
        let pair = &p.value[3 * i..3 * i + 2];
        if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(syntax());
        }
        *octet = u8::from_str_radix(pair, 16).map_err(|_| syntax())?;
        if i < 5 && !matches!(b[3 * i + 2], b':' | b'-') {
            return Err(syntax());
        }
    }
    if mac[0] & 1 != 0 {
        return Err(invalid(
            DEVICE,
            &p.text,
            "a multicast address cannot be a NIC's MAC (the first octet must be even)",
        ));
    }
    if mac == [0; 6] {
        return Err(invalid(DEVICE, &p.text, "the all-zero MAC is not valid"));
    }
    Ok(mac)
}

/// `guest-cid=`: the kernel refuses 0-2 (hypervisor, local, host) and
/// values of 32 bits or more (U32_MAX is VMADDR_CID_ANY).
pub(super) fn parse_guest_cid(s: &Setting) -> Result<u64, ArgsError> {
    match s.value.parse::<u64>() {
        Ok(cid) if (3..u64::from(u32::MAX)).contains(&cid) => Ok(cid),
        _ => Err(invalid(DEVICE, &s.text, "guest-cid must be a number from 3 to 4294967294")),
    }
}

/// `tag=`: what the guest mounts (`mount -t virtiofs TAG DIR`), at most
/// 36 bytes (the config space's field).
pub(super) fn parse_fs_tag(s: &Setting) -> Result<String, ArgsError> {
    if s.value.is_empty() || s.value.len() > FS_TAG_LEN {
        return Err(invalid(DEVICE, &s.text, "a tag has 1 to 36 bytes"));
    }
    Ok(s.value.clone())
}

/// `queue-size=`: a power of two up to 1024, as QEMU requires.
pub(super) fn parse_queue_size(s: &Setting) -> Result<u16, ArgsError> {
    match s.value.parse::<u16>() {
        Ok(n) if n.is_power_of_two() && n <= FS_MAX_QUEUE_SIZE => Ok(n),
        _ => Err(invalid(DEVICE, &s.text, "queue-size must be a power of two from 1 to 1024")),
    }
}

/// `guid=`: a UUID, 8-4-4-4-12 hex digits in either case (`auto` is handled by the caller).
pub(super) fn parse_guid(s: &Setting) -> Result<Guid, ArgsError> {
    Guid::parse(&s.value).ok_or_else(|| {
        invalid(DEVICE, &s.text, "guid must be auto or a UUID such as 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87")
    })
}
