//! virtio-9p (`-device virtio-9p-device`): a host folder shared with the guest over
//! 9P2000.L, served by the `p9` crate (crosvm's server) on a thread of its own
//! ([`worker`]), kept inside the folder by [`confine`] and Landlock.
//!
//! One queue of requests: each chain is a T-message in its device-readable descriptors and
//! room for the R-message in its writable ones. The config space is the mount tag the
//! guest mounts by (`mount -t 9p -o trans=virtio TAG DIR`).

pub mod confine;
pub mod creds;
pub mod mapped;
mod msg;
mod nodes;
mod paths;
pub mod worker;

use super::{come_back_later, ActivateContext, ActivateError, Activation, VirtioDevice, CHAINS_PER_TURN};
use super::{read_config_bytes, VIRTIO_F_VERSION_1};
use crate::guest_memory::GuestMemoryMmap;
use crate::guest_warn;
use crate::noise::LineBudget;
use crate::virtio::queue::Chain;
use event_manager::{EventOps, Events, MutEventSubscriber};

use vm_memory::Bytes;
pub use worker::{pair, pair_with, Link, NinepError, Responder, SecurityModel, Worker, MAX_MESSAGE};

/// virtio's device id for 9P transport.
pub const VIRTIO_ID_9P: u32 = 9;
/// The device has a mount tag in its config space (virtio 1.x §5.6 of the 9P draft, Linux's
/// VIRTIO_9P_MOUNT_TAG).
pub const VIRTIO_9P_MOUNT_TAG: u64 = 1;
/// QEMU's queue size for virtio-9p (MAX_REQ).
const QUEUE_SIZE: u16 = 128;
/// The longest mount tag: Linux reads it into a buffer of this size (QEMU's MAX_TAG_LEN).
pub const MAX_TAG_LEN: usize = 255;

pub struct Virtio9p {
    activation: Activation,
    /// `tag_len` (le16) then the tag: the whole config space.
    config: Vec<u8>,
    link: Link,
    broken: bool,
    used_ring_lines: LineBudget,
}

impl Virtio9p {
    /// A device with `tag` whose requests go to the worker at the other end of `link`.
    pub fn new(tag: &str, link: Link) -> std::io::Result<Self> {
        let tag = &tag.as_bytes()[..tag.len().min(MAX_TAG_LEN)];
        let mut config = (tag.len() as u16).to_le_bytes().to_vec();
        config.extend_from_slice(tag);
        Ok(Virtio9p { activation: Activation::new()?, config, link, broken: false, used_ring_lines: LineBudget::new() })
    }

    fn process_queue(&mut self) {
        let Some(ctx) = self.activation.active.as_mut() else { return };
        let mem = ctx.mem.clone();
        let queue = &mut ctx.queues[0];
        let mut used_any = false;
        for served in 0.. {
            if served == CHAINS_PER_TURN {
                come_back_later(&ctx.queue_events[0]);
                break;
            }
            let chain = match queue.iter(&mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    log::warn!("virtio-9p: bad avail ring ({e}); device needs reset");
                    self.broken = true;
                    ctx.interrupt.signal_needs_reset();
                    return;
                }
            };
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            let Some(written) = serve_chain(&mem, chain, &self.link) else {
                // The worker has ended (it failed to confine itself): nothing more is served.
                log::error!("virtio-9p: the 9p server thread has ended; device needs reset");
                self.broken = true;
                ctx.interrupt.signal_needs_reset();
                return;
            };
            if queue.add_used(&mem, head, written).is_err() {
                guest_warn!(self.used_ring_lines, "virtio-9p: used ring is outside guest memory");
                return;
            }
            used_any = true;
        }
        if used_any && queue.needs_notification(&mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
    }
}

/// Copies the request out, asks the server, writes the answer back; returns the bytes
/// written, or `None` if the server is gone. An answer that does not fit the guest's
/// buffers becomes an `Rlerror` (ENOBUFS), and a request that cannot be read from guest
/// memory is answered EFAULT, so the guest's waiting call always completes.
fn serve_chain<M>(mem: &GuestMemoryMmap, chain: Chain<M>, link: &Link) -> Option<u32>
where
    M: std::ops::Deref<Target = GuestMemoryMmap>,
{
    let mut request = Vec::new();
    let mut room = Vec::new();
    let mut readable_ok = true;
    for desc in chain {
        if desc.is_write_only() {
            room.push((desc.addr(), desc.len() as usize));
            continue;
        }
        let len = (desc.len() as usize).min(MAX_MESSAGE - request.len());
        let start = request.len();
        request.resize(start + len, 0);
        if mem.read_slice(&mut request[start..], desc.addr()).is_err() {
            readable_ok = false;
        }
    }
    let tag = confine::tag_of(&request);
    let capacity: usize = room.iter().map(|r| r.1).sum();
    let answer = if readable_ok { link.ask(request)? } else { confine::rlerror(tag, libc::EFAULT as u32) };
    let answer = if answer.len() <= capacity { answer } else { confine::rlerror(tag, libc::ENOBUFS as u32) };
    let mut written = 0usize;
    for (addr, len) in room {
        let part = &answer[written..(written + len).min(answer.len())];
        if part.is_empty() || mem.write_slice(part, addr).is_err() {
            break;
        }
        written += part.len();
    }
    Some(written as u32)
}

impl VirtioDevice for Virtio9p {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_9P
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | VIRTIO_9P_MOUNT_TAG
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&self.config, offset, data);
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.broken = false;
        self.activation.activate(ctx)
    }
    fn reset(&mut self) -> bool {
        self.activation.deactivate();
        true
    }
    fn active_queues_now(&self) -> Option<&[crate::virtio::queue::Virtqueue]> {
        self.activation.queues()
    }
    // The guest's open files are host descriptors in the server's fid table, which a
    // snapshot cannot carry; QEMU likewise refuses to migrate while a 9p export is mounted.
    super::unsaveable!(
        "virtio-9p",
        "the guest's open files are host descriptors of the 9p server (QEMU also refuses to migrate a mounted 9p export)"
    );
}

impl MutEventSubscriber for Virtio9p {
    fn init(&mut self, ops: &mut EventOps) {
        self.activation.watch_wake(ops);
    }

    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if self.activation.single_queue_turn(&events, ops).serves(self.broken) {
            self.process_queue();
        }
    }
}

#[cfg(test)]
mod tests;
