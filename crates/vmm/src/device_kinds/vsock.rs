//! `-device vhost-vsock-device`: AF_VSOCK served by the host kernel's vhost_vsock.

use super::props::{prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::vhost::vsock::VhostVsock;

pub(super) const DESC: KindDesc = KindDesc {
    name: "vhost-vsock-device",
    help: "AF_VSOCK sockets between guest and host, served by the host kernel's vhost_vsock \
           (/dev/vhost-vsock).",
    props: &[
        prop("guest-cid", Value::Text("N"), None, "Required: the guest's address, 3..4294967294, unique on the host."),
        PACKED,
        DEVICE_ID,
    ],
};

/// `-device vhost-vsock-device,guest-cid=N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsockConfig {
    /// The guest's context id, 3..u32::MAX (checked by the CLI).
    pub cid: u64,
    /// `id=`, for the monitor.
    pub id: Option<String>,
}

pub(super) struct Vsock;

impl DeviceKind for Vsock {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn packed_refusal(&self) -> Option<&'static str> {
        Some(super::props::VHOST_NOT_PACKED)
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let id = args.id()?;
        let cid = args.parsed("guest-cid", |p| p.guest_cid())?;
        let cid = args.required(cid, "guest-cid=N is required (the guest's vsock address, 3 or more)")?;
        Ok(Parsed::Slot { config: DeviceConfig::Vsock(VsockConfig { cid, id: id.clone() }), id, backend: None })
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["ioctl"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Vsock(cfg) = config else { return Err(wrong_config(DESC.name)) };
        // Claims the CID now: one in use fails before the guest runs.
        let vsock = VhostVsock::open(cfg.cid, ctx.mem)?;
        ctx.add(vsock, "virtio-mmio (vhost-vsock)", DESC.name, cfg.id.as_deref())
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        vec![super::Example {
            name: DESC.name,
            props: &[("guest-cid", "3"), ("id", "v0")],
            backend: None,
            config: DeviceConfig::Vsock(VsockConfig { cid: 3, id: Some("v0".into()) }),
        }]
    }
}
