//! `-device hybrid-vsock-device` (Firecracker's `PUT /vsock`): AF_VSOCK in the guest,
//! Unix sockets on the host, served by microvm.

use super::props::{prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use std::path::PathBuf;

pub(super) const DESC: KindDesc = KindDesc {
    name: "hybrid-vsock-device",
    help: "microvm's own (QEMU has no such device): Firecracker's hybrid vsock, AF_VSOCK in the guest and \
           Unix sockets on the host, served by microvm (no /dev/vhost-vsock). A host process connects to \
           uds-path and writes CONNECT <port>, then reads OK <host port>; a guest connecting to host port P \
           reaches <uds-path>_P (docs/firecracker-api.md, PUT /vsock).",
    props: &[
        prop("guest-cid", Value::Text("N"), None, "Required: the guest's address, 3..4294967294."),
        prop("uds-path", Value::Text("PATH"), None, "Required: where microvm listens; it must not exist yet."),
        PACKED,
        DEVICE_ID,
    ],
};

/// Firecracker's `PUT /vsock {guest_cid, uds_path}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HybridVsockConfig {
    /// The guest's context id, 3..u32::MAX (the device checks it).
    pub cid: u64,
    /// The host side: host processes connect here (`CONNECT <port>`), and a guest
    /// connecting to port P reaches `<uds_path>_P`.
    pub uds_path: PathBuf,
    /// Firecracker's `vsock_id`.
    pub id: Option<String>,
}

impl HybridVsockConfig {
    /// The device for guest `cid` listening on `uds_path`, with this kind's defaults for
    /// the rest (no id); a front end sets what its user gave over it.
    pub fn new(cid: u64, uds_path: impl Into<PathBuf>) -> HybridVsockConfig {
        HybridVsockConfig { cid, uds_path: uds_path.into(), id: None }
    }
}

pub(super) struct HybridVsock;

impl DeviceKind for HybridVsock {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let id = args.id()?;
        let cid = args.parsed("guest-cid", |p| p.guest_cid())?;
        // An empty path counts as missing.
        let uds_path = args.text("uds-path").filter(|p| !p.is_empty()).map(PathBuf::from);
        let (Some(cid), Some(uds_path)) = (cid, uds_path) else {
            return Err(args.error("guest-cid=N and uds-path=PATH are required"));
        };
        let config =
            DeviceConfig::HybridVsock(HybridVsockConfig { id: id.clone(), ..HybridVsockConfig::new(cid, uds_path) });
        Ok(Parsed::Slot { config, id, backend: None })
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["socket", "connect", "shutdown", "accept4", "recvfrom", "sendto"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::HybridVsock(cfg) = config else { return Err(wrong_config(DESC.name)) };
        // Binds uds_path now: a path in use fails before the guest runs.
        let vsock = devices::virtio::hvsock::HybridVsock::new(cfg.cid, &cfg.uds_path)?;
        ctx.add(vsock, "virtio-mmio (hybrid vsock)", DESC.name, cfg.id.as_deref())
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let config = HybridVsockConfig { cid: 7, uds_path: "/tmp/v.sock".into(), id: None };
        vec![super::Example {
            name: DESC.name,
            props: &[("guest-cid", "7"), ("uds-path", "/tmp/v.sock")],
            backend: None,
            config: DeviceConfig::HybridVsock(config),
        }]
    }
}
