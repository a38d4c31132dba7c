//! vhost-user-fs-device: virtio-fs served by a vhost-user backend process
//! (virtiofsd) over a Unix socket; microvm is the vhost-user frontend
//! (rust-vmm's `vhost` crate). virtiofsd maps guest RAM through the memory
//! table's fds, so RAM must be a shared memfd or file (checked by the CLI).
//!
//! Queues: 0 is hiprio (FORGETs), 1 the one request queue. The device
//! thread relays virtiofsd's call eventfds into the virtio-mmio interrupt,
//! as for the kernel's vhost, and watches the socket: if virtiofsd dies,
//! microvm logs once, takes the queues back and answers every request still
//! pending and every later one with EIO, so the guest sees I/O errors
//! instead of hanging, and the VM keeps running.

use super::{start_vrings, CallRelay, RingAddresses, VhostError};
use crate::guest_memory::GuestMemoryMmap;
use crate::virtio::queue::Virtqueue;
use crate::virtio::{read_config_bytes, ActivateContext, ActivateError, Activation, VirtioDevice, VIRTIO_F_VERSION_1};
use ::vhost::vhost_user::message::VhostUserProtocolFeatures;
use ::vhost::vhost_user::{Frontend, VhostUserFrontend, VhostUserVirtioFeatures};
use ::vhost::VhostBackend;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

use vm_memory::{Address, Bytes, GuestAddress};

/// VIRTIO_ID_FS.
const VIRTIO_ID_FS: u32 = 26;
const QUEUES: usize = 2;
/// `struct virtio_fs_config`: the tag's size.
pub const TAG_LEN: usize = 36;
/// Queue sizes allowed by `queue-size=` (QEMU's limit).
pub const MAX_QUEUE_SIZE: u16 = 1024;
const OFFERABLE: u64 = VIRTIO_F_VERSION_1 | 1 << VIRTIO_RING_F_EVENT_IDX | 1 << VIRTIO_RING_F_INDIRECT_DESC;
const PROTOCOL_FEATURES: u64 = VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
/// Event data of virtiofsd's socket: past the queue indices and the call relay's.
const SOCKET_DATA: u32 = 0x200;
/// FUSE: `struct fuse_in_header` is 40 bytes with `unique` at 8; the reply
/// header `struct fuse_out_header` { len, error, unique } is 16.
const FUSE_IN_UNIQUE: u64 = 8;
const FUSE_OUT_HEADER_LEN: u32 = 16;
const FUSE_FORGET: u32 = 2;
const FUSE_BATCH_FORGET: u32 = 42;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot connect to the vhost-user backend (virtiofsd) at {}: {source}", .path.display())]
    Connect { path: PathBuf, source: ::vhost::Error },
    #[error("vhost-user backend at {}: {op}: {source}", .path.display())]
    Setup { path: PathBuf, op: &'static str, source: ::vhost::Error },
    #[error("the vhost-user backend at {} does not offer VIRTIO_F_VERSION_1", .0.display())]
    NotModern(PathBuf),
    #[error("cannot create an eventfd: {0}")]
    EventFd(std::io::Error),
}

pub struct VhostUserFs {
    tag: String,
    queue_sizes: [u16; QUEUES],
    socket: PathBuf,
    /// `None` once virtiofsd is gone.
    backend: Option<Frontend>,
    backend_features: u64,
    features: u64,
    activation: Activation,
    calls: CallRelay,
    /// The device thread serves the queues itself (with EIO): virtiofsd is gone.
    serving_errors: bool,
    /// virtiofsd has the rings (set at DRIVER_OK, cleared when they are stopped).
    started: bool,
}

impl VhostUserFs {
    /// Connects to virtiofsd and negotiates what needs no guest: on the
    /// thread building the VM, so a missing backend is a start-up error.
    pub fn connect(socket: &Path, tag: &str, queue_size: u16) -> Result<Self, FsError> {
        let path = socket.to_owned();
        let setup = |op| {
            let path = path.clone();
            move |source| FsError::Setup { path, op, source }
        };
        let mut backend = Frontend::connect(socket, QUEUES as u64)
            .map_err(|source| FsError::Connect { path: path.clone(), source })?;
        backend.set_owner().map_err(setup("SET_OWNER"))?;
        let backend_features = backend.get_features().map_err(setup("GET_FEATURES"))?;
        if backend_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(FsError::NotModern(path));
        }
        if backend_features & PROTOCOL_FEATURES != 0 {
            let offered = backend.get_protocol_features().map_err(setup("GET_PROTOCOL_FEATURES"))?;
            // Nothing optional is used; REPLY_ACK makes every request confirmed.
            let wanted = offered & VhostUserProtocolFeatures::REPLY_ACK;
            backend.set_protocol_features(wanted).map_err(setup("SET_PROTOCOL_FEATURES"))?;
        }
        let calls = CallRelay::new(QUEUES).map_err(FsError::EventFd)?;
        Ok(VhostUserFs {
            tag: tag.to_owned(),
            queue_sizes: [queue_size; QUEUES],
            socket: path,
            features: backend_features & OFFERABLE,
            backend: Some(backend),
            backend_features,
            activation: Activation::new().map_err(FsError::EventFd)?,
            calls,
            serving_errors: false,
            started: false,
        })
    }

    /// A device whose virtiofsd is already gone (tests of the EIO path).
    #[cfg(test)]
    fn orphan(tag: &str) -> Self {
        VhostUserFs {
            tag: tag.to_owned(),
            queue_sizes: [64; QUEUES],
            socket: PathBuf::from("/nonexistent"),
            backend: None,
            backend_features: VIRTIO_F_VERSION_1,
            features: VIRTIO_F_VERSION_1,
            activation: Activation::new().unwrap(),
            calls: CallRelay::new(QUEUES).unwrap(),
            serving_errors: true,
            started: false,
        }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// On the device thread, at DRIVER_OK.
    fn start(&mut self) -> Result<(), VhostError> {
        let (Some(ctx), Some(backend)) = (&self.activation.active, &mut self.backend) else { return Ok(()) };
        let features = ctx.acked_features & self.features | self.backend_features & PROTOCOL_FEATURES;
        start_vrings(&*backend, ctx, features, self.calls.eventfds(), RingAddresses::Host)?;
        if features & PROTOCOL_FEATURES != 0 {
            // With protocol features, rings start disabled (vhost-user spec).
            for queue in 0..QUEUES {
                backend
                    .set_vring_enable(queue, true)
                    .map_err(|source| VhostError::Ioctl { op: "SET_VRING_ENABLE", source })?;
            }
        }
        self.started = true;
        Ok(())
    }

    /// On the device thread, after a reset: the backend stops using the rings.
    fn stop(&mut self) {
        if !std::mem::take(&mut self.started) {
            return;
        }
        if let Some(backend) = &mut self.backend {
            for queue in 0..QUEUES {
                // GET_VRING_BASE stops a ring (vhost-user spec); its value is not needed.
                let _ = backend.get_vring_base(queue);
            }
        }
    }

    /// virtiofsd closed its socket: log once, take the queues back.
    fn backend_gone(&mut self, ops: &mut EventOps) {
        let Some(backend) = self.backend.take() else { return };
        let _ = ops.remove(Events::new_raw(backend.as_raw_fd(), EventSet::HANG_UP));
        log::error!(
            "vhost-user-fs {}: virtiofsd at {} is gone; the guest's file requests now fail with EIO",
            self.tag,
            self.socket.display()
        );
        self.serving_errors = true;
        let Some(ctx) = &mut self.activation.active else { return };
        for (index, queue) in ctx.queues.iter_mut().enumerate() {
            // What virtiofsd completed is in the used ring; the rest is pending.
            if let Ok(used) = ctx.mem.read_obj::<u16>(GuestAddress(queue.used_ring() + 2)) {
                queue.set_next_avail(used);
                queue.set_next_used(used);
            }
            let _ = ops.add(Events::with_data(&ctx.queue_events[index], index as u32, EventSet::IN));
        }
        self.fail_requests();
    }

    /// Completes every available request with EIO (forgets get no reply).
    fn fail_requests(&mut self) {
        let Some(ctx) = &mut self.activation.active else { return };
        let event_idx = ctx.acked_features & 1 << VIRTIO_RING_F_EVENT_IDX != 0;
        let mut used_any = false;
        for queue in &mut ctx.queues {
            // With EVENT_IDX the guest kicks only past the avail_event we publish.
            queue.set_event_idx(event_idx);
            used_any |= fail_queue(&ctx.mem, queue);
        }
        if used_any {
            ctx.interrupt.signal_used_queue();
        }
    }
}

fn fail_queue(mem: &GuestMemoryMmap, queue: &mut Virtqueue) -> bool {
    let mut used_any = false;
    loop {
        used_any |= fail_available(mem, queue);
        // Publishes avail_event (EVENT_IDX); true if more arrived meanwhile.
        if !queue.enable_notification(mem).unwrap_or(false) {
            return used_any;
        }
    }
}

fn fail_available(mem: &GuestMemoryMmap, queue: &mut Virtqueue) -> bool {
    let mut used_any = false;
    while let Some(chain) = queue.iter(mem).ok().and_then(|mut it| it.next()) {
        let head = chain.head_index();
        let request = chain.clone().readable().next().map(|d| d.addr());
        let reply = chain.writable().next().filter(|d| d.len() >= FUSE_OUT_HEADER_LEN).map(|d| d.addr());
        let mut written = 0;
        if let (Some(request), Some(reply)) = (request, reply) {
            let opcode: u32 = mem.read_obj(request.unchecked_add(4)).unwrap_or(0);
            let unique: u64 = mem.read_obj(request.unchecked_add(FUSE_IN_UNIQUE)).unwrap_or(0);
            if opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET {
                let mut header = [0u8; FUSE_OUT_HEADER_LEN as usize];
                header[..4].copy_from_slice(&FUSE_OUT_HEADER_LEN.to_le_bytes());
                header[4..8].copy_from_slice(&(-libc::EIO).to_le_bytes());
                header[8..].copy_from_slice(&unique.to_le_bytes());
                if mem.write_slice(&header, reply).is_ok() {
                    written = FUSE_OUT_HEADER_LEN;
                }
            }
        }
        if queue.add_used(mem, head, written).is_err() {
            break;
        }
        used_any = true;
    }
    used_any
}

impl VirtioDevice for VhostUserFs {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_FS
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }
    fn features(&self) -> u64 {
        self.features
    }
    /// `struct virtio_fs_config { u8 tag[36]; le32 num_request_queues; }`
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; TAG_LEN + 4];
        let tag = self.tag.as_bytes();
        config[..tag.len().min(TAG_LEN)].copy_from_slice(&tag[..tag.len().min(TAG_LEN)]);
        config[TAG_LEN..].copy_from_slice(&1u32.to_le_bytes());
        read_config_bytes(&config, offset, data);
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    // The file system's state (open files, FUSE requests in flight, the inode table) lives
    // in virtiofsd, which has no way to hand it over; QEMU refuses to migrate vhost-user-fs too.
    crate::virtio::unsaveable!(
        "vhost-user-fs",
        "its file system state lives in virtiofsd, which cannot save it (QEMU refuses too); remove the device to take snapshots"
    );
}

impl MutEventSubscriber for VhostUserFs {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
        self.calls.watch(ops, "vhost-user-fs");
        if let Some(backend) = &self.backend {
            // Only the hang-up: reading would interleave with the frontend's replies.
            let socket = Events::with_data_raw(backend.as_raw_fd(), SOCKET_DATA, EventSet::HANG_UP);
            if let Err(e) = ops.add(socket) {
                log::error!("vhost-user-fs: cannot watch virtiofsd's socket: {e:?}");
            }
        }
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.is_wake_event(&events) {
            self.stop();
            let serving_errors = self.serving_errors;
            if self.activation.on_wake_watching(ops, |_| serving_errors) {
                if serving_errors {
                    self.fail_requests();
                } else if let Err(e) = self.start() {
                    log::error!("vhost-user-fs {}: cannot start virtiofsd's queues: {e}", self.tag);
                    if let Some(ctx) = &self.activation.active {
                        ctx.interrupt.signal_needs_reset();
                    }
                }
            }
            return;
        }
        match events.data() {
            SOCKET_DATA => self.backend_gone(ops),
            _ if self.calls.relay(&events, &self.activation) => {}
            queue => {
                if let Some(ctx) = &self.activation.active {
                    if let Some(evt) = ctx.queue_events.get(queue as usize) {
                        let _ = evt.read();
                    }
                }
                self.fail_requests();
            }
        }
    }
}

#[cfg(test)]
mod tests;
