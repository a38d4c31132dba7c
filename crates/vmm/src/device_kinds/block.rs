//! `-device virtio-blk-device,drive=ID` (with its `-drive`), Firecracker's drives.

use super::props::{prop, Value, DEVICE_ID, PACKED};
use super::DeviceConfig;
use super::{wrong_config, Backend, BackendKind, BackendRef, DeviceArgs, DeviceKind, KindDesc, Parsed, PropError};
use crate::device_info::BlockInfo;
use crate::error::Error;
use crate::virtio_devices::BuildCtx;
use devices::virtio::block::BlockOptions;
use devices::virtio::block::{CacheMode, DriveLimits, Engine, ImageOptions, MAX_QUEUES, POOL_WORKERS};
use sandbox::ThreadKind;
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
        prop(
            "num-queues",
            Value::Text("N"),
            Some("1"),
            "Request queues, 1 to 16 (VIRTIO_BLK_F_MQ with more than one); Linux uses at most one per CPU.",
        ),
        prop(
            "iothread",
            Value::Text("ID"),
            None,
            "The -object iothread serving the drive's queues; without it, the shared virtio thread.",
        ),
        prop("iothread-vq-mapping", Value::Text("LIST"), None, "Not supported: use iothread=ID."),
        PACKED,
        DEVICE_ID,
    ],
};

/// QEMU 9's per-queue iothreads, refused for the one iothread microvm serves a drive on.
const NO_VQ_MAPPING: &str =
    "iothread-vq-mapping is not supported: use iothread=ID (every queue of the drive on that iothread)";

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
    /// `virtio-blk-device,num-queues=`; `None`: one, QEMU's default on virtio-mmio (and
    /// Firecracker's only).
    pub num_queues: Option<u16>,
    /// `virtio-blk-device,iothread=`: the `-object iothread` whose thread serves the
    /// drive; `None`: the `virtio` thread.
    pub iothread: Option<String>,
}

impl BlockConfig {
    /// The drive `id` on the file `path` with this kind's defaults for the rest: what
    /// `-drive id=ID,file=PATH,if=none` + `-device virtio-blk-device,drive=ID` give
    /// (read-write, QEMU's writeback cache, the sync engine, a raw image, no limits, one
    /// queue on the `virtio` thread, the drive id as serial). A front end sets what its
    /// user gave over it, so a property added here reaches every front end by default.
    pub fn new(id: impl Into<String>, path: impl Into<PathBuf>) -> BlockConfig {
        BlockConfig { id: id.into(), path: path.into(), ..Default::default() }
    }
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
        if let Some(p) = args.get("iothread-vq-mapping") {
            return Err(p.error(NO_VQ_MAPPING));
        }
        let num_queues = args.parsed("num-queues", |p| match p.value.parse::<u16>() {
            Ok(n) if (1..=MAX_QUEUES).contains(&n) => Ok(n),
            _ => Err(p.error(format!("num-queues must be a number from 1 to {MAX_QUEUES}"))),
        })?;
        let iothread = args.reference("iothread")?;
        // The rest comes with the drive (bind).
        let config = BlockConfig { serial: args.text("serial"), num_queues, iothread, ..Default::default() };
        let backend = BackendRef { kind: BackendKind::Drive, id: drive };
        Ok(Parsed::Slot { config: DeviceConfig::Block(config), id, backend: Some(backend) })
    }

    fn bind(&self, config: &mut DeviceConfig, backend: Backend, _value: &str) -> Result<(), PropError> {
        if let (DeviceConfig::Block(cfg), Backend::Drive(drive)) = (config, backend) {
            let (serial, num_queues, iothread) = (cfg.serial.take(), cfg.num_queues, cfg.iothread.take());
            *cfg = BlockConfig { serial, num_queues, iothread, ..drive };
        }
        Ok(())
    }

    fn threads(&self, config: &DeviceConfig) -> Option<(ThreadKind, usize)> {
        match config {
            // A formatted drive is served synchronously whatever aio= says (no pool).
            DeviceConfig::Block(cfg) if cfg.engine == Engine::Threads && !cfg.image.formatted() => {
                Some((ThreadKind::AioWorker, POOL_WORKERS))
            }
            _ => None,
        }
    }

    fn syscalls(&self) -> &'static [&'static str] {
        &["preadv", "pwritev", "fdatasync", "fsync", "fallocate", "io_uring_enter", "timerfd_create"]
    }

    fn build(&self, config: &DeviceConfig, ctx: &mut BuildCtx) -> Result<(), Error> {
        let DeviceConfig::Block(cfg) = config else { return Err(wrong_config(DESC.name)) };
        let mut disk = devices::virtio::block::Block::new(block_options(cfg))?;
        let size = std::fs::metadata(&cfg.path).map_or(0, |m| m.len());
        let (id, path) = (cfg.id.clone(), cfg.path.clone());
        ctx.inventory.blocks.push(BlockInfo { id, path, read_only: cfg.read_only, cache: cfg.cache, size });
        let workers = disk.take_pool_workers();
        if !workers.is_empty() {
            ctx.inventory.pool_workers.push((cfg.id.clone(), workers));
        }
        ctx.add_on(disk, "virtio-mmio (virtio-blk)", DESC.name, Some(&cfg.id), cfg.iothread.as_deref())
    }

    #[cfg(test)]
    fn examples(&self) -> Vec<super::Example> {
        let drive = BlockConfig { id: "d0".into(), path: "/img".into(), read_only: true, ..Default::default() };
        let config = BlockConfig { serial: Some("SN1".into()), ..drive.clone() };
        let mq = BlockConfig { num_queues: Some(4), iothread: Some("io0".into()), ..drive.clone() };
        vec![
            super::Example {
                name: DESC.name,
                props: &[("drive", "d0"), ("serial", "SN1")],
                backend: Some(Backend::Drive(drive.clone())),
                config: DeviceConfig::Block(config),
            },
            super::Example {
                name: DESC.name,
                props: &[("drive", "d0"), ("num-queues", "4"), ("iothread", "io0")],
                backend: Some(Backend::Drive(drive)),
                config: DeviceConfig::Block(mq),
            },
        ]
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
        num_queues: cfg.num_queues.unwrap_or(1),
    }
}
