//! `-device virtio-balloon-device` (Firecracker's `PUT /balloon`).

use super::props::{prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::Error;
use crate::virtio_devices::BuildCtx;

pub(super) const DESC: KindDesc = KindDesc {
    name: "virtio-balloon-device",
    help: "A memory balloon: QMP balloon and query-balloon; pages the guest gives up go back to the host. \
           At most one.",
    props: &[
        prop(
            "deflate-on-oom",
            Value::Bool,
            Some("off"),
            "The guest may deflate the balloon when it runs out of memory.",
        ),
        prop(
            "free-page-reporting",
            Value::Bool,
            Some("off"),
            "The guest reports free memory (in 2 MiB and larger blocks), which goes back to the host.",
        ),
        PACKED,
        DEVICE_ID,
    ],
};

/// `-device virtio-balloon-device[,id=][,deflate-on-oom=on][,free-page-reporting=on]`.
/// `Default` is the kind's defaults (no id, every option off), for a front end to set
/// what its user gave over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalloonConfig {
    pub id: Option<String>,
    pub options: BalloonOptions,
}

pub use devices::virtio::balloon::BalloonOptions;

pub(super) struct Balloon;

impl DeviceKind for Balloon {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let options = BalloonOptions {
            deflate_on_oom: args.on("deflate-on-oom"),
            free_page_reporting: args.on("free-page-reporting"),
        };
        let id = args.id()?;
        Ok(Parsed::Slot { config: DeviceConfig::Balloon(BalloonConfig { id: id.clone(), options }), id, backend: None })
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["madvise"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Balloon(cfg) = config else { return Err(wrong_config(DESC.name)) };
        let mut balloon = devices::virtio::balloon::Balloon::new(cfg.options)
            .map_err(|source| Error::Io { what: "virtio-balloon", source })?;
        balloon.report_to(ctx.inventory.guest_events()?);
        ctx.add(balloon, "virtio-mmio (virtio-balloon)", DESC.name, cfg.id.as_deref())
    }

    fn at_most_one(&self) -> Option<&'static str> {
        Some("there can be only one balloon device")
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let options = BalloonOptions { deflate_on_oom: true, free_page_reporting: true };
        vec![super::Example {
            name: DESC.name,
            props: &[("id", "b0"), ("deflate-on-oom", "on"), ("free-page-reporting", "on")],
            backend: None,
            config: DeviceConfig::Balloon(BalloonConfig { id: Some("b0".into()), options }),
        }]
    }
}
