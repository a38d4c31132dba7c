//! The vsock event queue, which both vsock devices (kernel vhost-vsock and the hybrid one)
//! serve themselves: its one event, the transport reset a restored device owes the guest so
//! that it drops the connections of the saved VM (their host ends are gone) and reads its
//! CID again (virtio 1.2 §5.10.6.7).

use super::ActivateContext;

use vm_memory::Bytes;

/// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, the event's le32 id.
pub const EVENT_TRANSPORT_RESET: u32 = 0;

/// Posts a transport reset in the guest's next buffer of queue `index`. False when the
/// guest has not posted one yet: the reset stays owed until it does.
pub fn post_transport_reset(ctx: &mut ActivateContext, index: usize, device: &str) -> bool {
    let mem = &ctx.mem;
    let Some(queue) = ctx.queues.get_mut(index) else { return false };
    let Some(chain) = queue.pop_descriptor_chain(mem) else { return false };
    let head = chain.head_index();
    let event = EVENT_TRANSPORT_RESET.to_le_bytes();
    let written = chain
        .writable()
        .find(|d| d.len() as usize >= event.len())
        .is_some_and(|d| mem.write_slice(&event, d.addr()).is_ok());
    if !written {
        log::warn!("{device}: the guest's event buffer cannot hold the transport reset; it was not sent");
    }
    let len = if written { event.len() as u32 } else { 0 };
    if queue.add_used(mem, head, len).is_err() {
        log::warn!("{device}: the event queue's used ring is outside guest memory");
        return true;
    }
    if queue.needs_notification(mem).unwrap_or(true) {
        ctx.interrupt.signal_used_queue();
    }
    true
}
