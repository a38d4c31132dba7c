//! The values of the platform `-device`s' properties that need more than the
//! generic checks: numbers and GUIDs (the virtio kinds' are in their descriptors,
//! `vmm::device_kinds`).

use super::super::keyval::Setting;
use super::super::{invalid, ArgsError};
use super::DEVICE;
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

/// `guid=`: a UUID, 8-4-4-4-12 hex digits in either case (`auto` is handled by the caller).
pub(super) fn parse_guid(s: &Setting) -> Result<Guid, ArgsError> {
    Guid::parse(&s.value).ok_or_else(|| {
        invalid(DEVICE, &s.text, "guid must be auto or a UUID such as 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87")
    })
}
