//! `-device virtio-blk-device,drive=ID` (with its `-drive`), Firecracker's drives.

use super::props::{prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, Backend, BackendKind, BackendRef, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::device_info::BlockInfo;
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::block::BlockOptions;
use devices::virtio::block::{CacheMode, DriveLimits, Engine, ImageOptions};
use std::path::PathBuf;

pub(super) const DESC: KindDesc = KindDesc {
    name: "virtio-blk-device",
    help: "A disk (/dev/vdX); its serial is the drive id.",
    props: &[
        prop("drive", Value::Text("ID"), None, "Required: the id of a -drive."),
        prop(
            "serial",
            Value::Text("STRING"),
            None,
            "What the guest reads as the disk's serial (GET_ID, first 20 bytes); without it, the drive id.",
        ),
        PACKED,
        DEVICE_ID,
    ],
};

/// `-drive id=,file=,format=raw,if=none[,readonly=on][,cache=]` + `-device virtio-blk-device,drive=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockConfig {
    /// The drive id; also the serial number the guest reads with GET_ID
    /// unless `serial` is given.
    pub id: String,
    pub path: PathBuf,
    pub read_only: bool,
    pub cache: CacheMode,
    /// `virtio-blk-device,serial=`: what the guest reads with GET_ID.
    pub serial: Option<String>,
    /// Rate limits (`-drive throttling.*`, Firecracker's `rate_limiter`).
    pub limits: DriveLimits,
    /// How requests are submitted (`-drive aio=`, Firecracker's `io_engine`).
    pub engine: Engine,
    /// `-drive format=,snapshot=,discard=` (Firecracker's drives are raw).
    pub image: ImageOptions,
}

pub(super) struct Block;

impl DeviceKind for Block {
    fn names(&self) -> &'static [&'static str] {
        &[DESC.name]
    }

    fn parse(&self, _name: &str, args: &DeviceArgs) -> Result<Parsed, PropError> {
        let id = args.id()?;
        let drive = args.reference("drive")?;
        let drive = args.required(drive, "drive=ID is required (the id of a -drive)")?;
        // The rest comes with the drive (bind).
        let config = BlockConfig { serial: args.text("serial"), ..Default::default() };
        let backend = BackendRef { kind: BackendKind::Drive, id: drive };
        Ok(Parsed::Slot { config: DeviceConfig::Block(config), id, backend: Some(backend) })
    }

    fn bind(&self, config: &mut DeviceConfig, backend: Backend, _value: &str) -> Result<(), PropError> {
        if let (DeviceConfig::Block(cfg), Backend::Drive(drive)) = (config, backend) {
            *cfg = BlockConfig { serial: cfg.serial.take(), ..drive };
        }
        Ok(())
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["preadv", "pwritev", "fdatasync", "fsync", "fallocate", "io_uring_enter", "timerfd_create"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Block(cfg) = config else { return Err(wrong_config(DESC.name)) };
        let disk = devices::virtio::block::Block::new(block_options(cfg))?;
        let size = std::fs::metadata(&cfg.path).map_or(0, |m| m.len());
        let (id, path) = (cfg.id.clone(), cfg.path.clone());
        ctx.inventory.blocks.push(BlockInfo { id, path, read_only: cfg.read_only, cache: cfg.cache, size });
        ctx.add(disk, "virtio-mmio (virtio-blk)", DESC.name, Some(&cfg.id))
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let drive = BlockConfig { id: "d0".into(), path: "/img".into(), read_only: true, ..Default::default() };
        let config = BlockConfig { serial: Some("SN1".into()), ..drive.clone() };
        vec![super::Example {
            name: DESC.name,
            props: &[("drive", "d0"), ("serial", "SN1")],
            backend: Some(Backend::Drive(drive)),
            config: DeviceConfig::Block(config),
        }]
    }
}

fn block_options(cfg: &BlockConfig) -> BlockOptions {
    // GET_ID answers the serial when one is given, as QEMU's serial= does.
    let id = cfg.serial.clone().unwrap_or_else(|| cfg.id.clone());
    BlockOptions {
        id,
        path: cfg.path.clone(),
        read_only: cfg.read_only,
        cache: cfg.cache,
        limits: cfg.limits,
        engine: cfg.engine,
        image: cfg.image,
    }
}
