//! `-device vhost-user-fs-device`: virtio-fs, whose data path is virtiofsd's.

use super::props::{prop, Prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, Backend, BackendKind, BackendRef, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::chardev_config::ChardevBackend;
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::vhost::fs::VhostUserFs;
use std::path::PathBuf;

pub(super) const DESC: KindDesc = KindDesc {
    name: "vhost-user-fs-device",
    help: "virtio-fs: a host directory shared by a vhost-user backend (virtiofsd). Guest RAM must be \
           shared: -object memory-backend-memfd,id=mem,size=RAM,share=on -machine memory-backend=mem.",
    props: &[
        prop("chardev", Value::Text("ID"), None, "Required: a -chardev socket,path= on virtiofsd's --socket-path."),
        prop(
            "tag",
            Value::Text("TAG"),
            None,
            "Required: what the guest mounts (mount -t virtiofs TAG DIR); 1-36 bytes.",
        ),
        prop("queue-size", Value::Text("N"), Some("128"), "Request queue size: a power of two up to 1024."),
        PACKED,
        DEVICE_ID,
    ],
};

/// QEMU's default `queue-size=`.
const QUEUE_SIZE: u16 = 128;

/// `-chardev socket,id=,path=` + `-device vhost-user-fs-device,chardev=,tag=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsConfig {
    /// virtiofsd's socket.
    pub socket: PathBuf,
    /// What the guest mounts; 1..=FS_TAG_LEN bytes.
    pub tag: String,
    pub queue_size: u16,
    pub id: Option<String>,
}

/// The limits of `FsConfig`, the device's.
pub use devices::virtio::vhost::fs::{MAX_QUEUE_SIZE as FS_MAX_QUEUE_SIZE, TAG_LEN as FS_TAG_LEN};

pub(super) struct Fs;

/// `tag=`: what the guest mounts, at most 36 bytes (the config space's field).
fn tag(p: &Prop) -> Result<String, PropError> {
    if p.value.is_empty() || p.value.len() > FS_TAG_LEN {
        return Err(p.error("a tag has 1 to 36 bytes"));
    }
    Ok(p.value.clone())
}

/// `queue-size=`: a power of two up to 1024, as QEMU requires.
fn queue_size(p: &Prop) -> Result<u16, PropError> {
    match p.value.parse::<u16>() {
        Ok(n) if n.is_power_of_two() && n <= FS_MAX_QUEUE_SIZE => Ok(n),
        _ => Err(p.error("queue-size must be a power of two from 1 to 1024")),
    }
}

impl DeviceKind for Fs {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn packed_refusal(&self) -> Option<&'static str> {
        Some(super::props::VHOST_NOT_PACKED)
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let id = args.id()?;
        let chardev = args.reference("chardev")?;
        let tag = args.parsed("tag", tag)?;
        let queue_size = args.parsed("queue-size", queue_size)?.unwrap_or(QUEUE_SIZE);
        let (Some(chardev), Some(tag)) = (chardev, tag) else {
            return Err(args.error("chardev=ID and tag=TAG are required"));
        };
        // The socket comes with the chardev (bind).
        let config = DeviceConfig::Fs(FsConfig { socket: Default::default(), tag, queue_size, id: id.clone() });
        Ok(Parsed::Slot { config, id, backend: Some(BackendRef { kind: BackendKind::VhostUserChardev, id: chardev }) })
    }

    fn bind(&self, config: &mut DeviceConfig, backend: Backend, value: &str) -> Result<(), PropError> {
        let DeviceConfig::Fs(fs) = config else { return Ok(()) };
        match backend {
            Backend::Chardev { backend: Some(ChardevBackend::Socket { path, server: false, .. }), .. } => {
                fs.socket = path;
                Ok(())
            }
            Backend::Chardev { id, .. } => Err(PropError {
                text: value.to_owned(),
                reason: format!(
                    "chardev '{}' must be a client socket, -chardev socket,id=ID,path=PATH, on virtiofsd's \
                     --socket-path",
                    id.escape_debug()
                ),
            }),
            _ => Ok(()),
        }
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["sendmsg", "recvmsg"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Fs(cfg) = config else { return Err(wrong_config(DESC.name)) };
        // Connects and negotiates now: a virtiofsd that is not there fails before the guest runs.
        let fs = VhostUserFs::connect(&cfg.socket, &cfg.tag, cfg.queue_size)
            .map_err(|source| Error::Fs { tag: cfg.tag.clone(), source })?;
        ctx.add(fs, "virtio-mmio (vhost-user-fs)", DESC.name, cfg.id.as_deref())
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let socket = ChardevBackend::Socket { path: "/run/vfs.sock".into(), server: false, wait: true };
        let config = FsConfig { socket: "/run/vfs.sock".into(), tag: "share".into(), queue_size: 256, id: None };
        vec![super::Example {
            name: DESC.name,
            props: &[("chardev", "c0"), ("tag", "share"), ("queue-size", "256")],
            backend: Some(Backend::Chardev { id: "c0".into(), backend: Some(socket) }),
            config: DeviceConfig::Fs(config),
        }]
    }
}
