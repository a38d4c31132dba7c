//! `-device virtio-9p-device` (and `-virtfs`'s device): a host directory over 9P2000.L,
//! served by microvm on a thread of its own (kind `ninep`), confined to the directory.

use super::props::{prop, Prop, PropDesc, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, Backend, BackendKind, BackendRef, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::ninep::{self, SecurityModel, Virtio9p};
use sandbox::ThreadKind;
use std::path::PathBuf;

/// `mount_tag=`, which `-virtfs` takes too.
pub const MOUNT_TAG: PropDesc = prop(
    "mount_tag",
    Value::Text("TAG"),
    None,
    "Required: what the guest mounts (mount -t 9p -o trans=virtio TAG DIR).",
);

pub(super) const DESC: KindDesc = KindDesc {
    name: "virtio-9p-device",
    help: "A host directory shared over 9P2000.L (mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR), \
           served by microvm itself on a thread confined to the directory. Not saved in snapshots.",
    props: &[
        prop("fsdev", Value::Text("ID"), None, "Required: the id of an -fsdev local."),
        MOUNT_TAG,
        PACKED,
        DEVICE_ID,
    ],
};

/// `mount_tag=`: 1 to NINEP_TAG_LEN bytes, as QEMU's MAX_TAG_LEN.
pub fn mount_tag(p: &Prop) -> Result<String, PropError> {
    if p.value.is_empty() || p.value.len() > NINEP_TAG_LEN {
        return Err(p.error(format!("a mount tag has 1 to {NINEP_TAG_LEN} bytes")));
    }
    Ok(p.value.clone())
}

/// `-fsdev local,id=,path=,security_model=` + `-device virtio-9p-device,fsdev=,mount_tag=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NinePConfig {
    /// The shared host directory.
    pub path: PathBuf,
    /// What the guest mounts; 1..=NINEP_TAG_LEN bytes.
    pub tag: String,
    /// `readonly=on`: every change is answered EROFS.
    pub read_only: bool,
    /// The `-fsdev`'s id, for messages and the monitor.
    pub id: String,
    /// `security_model=`: whose the files the guest creates are.
    pub security_model: SecurityModel,
}

/// The longest 9p mount tag.
pub use devices::virtio::ninep::MAX_TAG_LEN as NINEP_TAG_LEN;

pub(super) struct NineP;

impl DeviceKind for NineP {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let id = args.id()?;
        let fsdev = args.reference("fsdev")?;
        let tag = args.parsed("mount_tag", mount_tag)?;
        let (Some(fsdev), Some(tag)) = (fsdev, tag) else {
            return Err(args.error("fsdev=ID and mount_tag=TAG are required"));
        };
        // The share comes with the fsdev (bind).
        let config = NinePConfig { tag, ..Default::default() };
        let backend = BackendRef { kind: BackendKind::Fsdev, id: fsdev };
        Ok(Parsed::Slot { config: DeviceConfig::NineP(config), id, backend: Some(backend) })
    }

    fn bind(&self, config: &mut DeviceConfig, backend: Backend, _value: &str) -> Result<(), PropError> {
        if let (DeviceConfig::NineP(cfg), Backend::Fsdev(share)) = (config, backend) {
            *cfg = NinePConfig { tag: std::mem::take(&mut cfg.tag), ..share };
        }
        Ok(())
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::NineP(cfg) = config else { return Err(wrong_config(DESC.name)) };
        // Opens the share and its server now, so a missing or unreadable folder fails at set-up.
        let (link, worker) = ninep::pair_with(&cfg.path, cfg.read_only, cfg.security_model)
            .map_err(|source| Error::NineP { id: cfg.id.clone(), source })?;
        ctx.inventory.ninep_workers.push((cfg.id.clone(), worker));
        let device = Virtio9p::new(&cfg.tag, link).map_err(|source| Error::Io { what: "virtio-9p", source })?;
        ctx.add(device, "virtio-mmio (virtio-9p)", DESC.name, Some(&cfg.id))
    }

    fn thread(&self) -> Option<ThreadKind> {
        Some(ThreadKind::Ninep)
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let share = NinePConfig {
            path: "/srv".into(),
            tag: String::new(),
            read_only: true,
            id: "fs0".into(),
            security_model: SecurityModel::MappedXattr,
        };
        let config = NinePConfig { tag: "host".into(), ..share.clone() };
        vec![super::Example {
            name: DESC.name,
            props: &[("fsdev", "fs0"), ("mount_tag", "host")],
            backend: Some(Backend::Fsdev(share)),
            config: DeviceConfig::NineP(config),
        }]
    }
}
