//! `-device vmgenid`: the VM Generation ID (its value and restore behaviour: `guid.rs`,
//! `vmgenid.rs`).

use super::{PlatformConfig, PlatformDevice, PlatformKind};
use crate::device_kinds::props::{prop, DeviceArgs, KindDesc, PropError, Value, DEVICE_ID};
use crate::guid::{Guid, VmGenIdConfig};

pub(crate) const DESC: KindDesc = KindDesc {
    name: "vmgenid",
    help: "The VM Generation ID (needs -M microvm,acpi=on): 16 bytes the guest's vmgenid driver watches; \
           every restore (-incoming) writes a new one and notifies the guest, which reseeds its RNG. \
           query-vm-generation-id reports it. Not a virtio slot; at most one.",
    props: &[
        prop(
            "guid",
            Value::Text("auto|UUID"),
            Some("auto"),
            "auto: random at boot, new at every restore; a UUID: always this one.",
        ),
        DEVICE_ID,
    ],
};

pub(crate) struct VmGenId;

impl PlatformKind for VmGenId {
    fn desc(&self) -> &'static KindDesc {
        &DESC
    }

    fn parse(&self, args: &DeviceArgs) -> Result<PlatformDevice, PropError> {
        let id = args.id()?;
        // `auto` (the default) is `None`: a fresh GUID at boot and at every restore.
        let guid = args.parsed("guid", |p| match p.value.as_str() {
            "auto" => Ok(None),
            // 8-4-4-4-12 hex digits in either case.
            uuid => Guid::parse(uuid)
                .map(Some)
                .ok_or_else(|| p.error("guid must be auto or a UUID such as 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87")),
        })?;
        Ok(PlatformDevice { id, config: PlatformConfig::VmGenId(VmGenIdConfig { guid: guid.flatten() }) })
    }

    fn at_most_one(&self) -> &'static str {
        "only one vmgenid"
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::PlatformExample> {
        let device =
            |guid| PlatformDevice { id: Some("gen".into()), config: PlatformConfig::VmGenId(VmGenIdConfig { guid }) };
        const UUID: &str = "324E6EAF-d1d1-4bf6-bf41-b9bb6c91fb87";
        vec![
            super::PlatformExample { props: &[("id", "gen")], device: device(None) },
            super::PlatformExample { props: &[("guid", "auto"), ("id", "gen")], device: device(None) },
            super::PlatformExample { props: &[("guid", UUID), ("id", "gen")], device: device(Guid::parse(UUID)) },
        ]
    }
}
