//! One queue pair's data path: the frames of its transmit queue to its tap, and its
//! tap's frames (with the MMDS's answers on pair 0) into its receive queue. The rate
//! limits and the MMDS are the device's, shared by every pair.

use super::device::{first_time, Complaint, Net, RX_BUDGET, RX_QUEUE, TX_QUEUE};
use super::fault::QueueFault;
use super::pair::Pair;
use super::rx::{self, Delivery};
use super::tap::VNET_HDR_LEN;
use super::tx;
use crate::virtio::{come_back_later, CHAINS_PER_TURN};

impl Net {
    /// Sends pair `k`'s transmit queue to its tap.
    pub(super) fn process_tx(&mut self, k: usize) {
        let Net { activation, pairs, tx_buf, complained, tx_gate, mmds, metrics, .. } = self;
        let Some(ctx) = activation.active.as_mut() else { return };
        let Some(Pair { tap, tx_broken, .. }) = pairs.get_mut(k) else { return };
        if *tx_broken || tx_gate.blocked() {
            return;
        }
        let mem = &ctx.mem;
        let tx_index = 2 * k + TX_QUEUE;
        let queue = &mut ctx.queues[tx_index];
        let mut used = false;
        let mut failure = None;
        let mut served = 0;
        let _ = queue.disable_notification(mem);
        loop {
            if tap.tx_blocked() {
                // The socket is full: the chains wait in the ring (kicks
                // stay off) until it is writable again.
                break;
            }
            if served == CHAINS_PER_TURN {
                // Kicks stay off: the device comes back for the rest on the next turn.
                come_back_later(&ctx.queue_events[tx_index]);
                break;
            }
            let chain = match queue.iter(mem) {
                Ok(mut iter) => iter.next(),
                Err(e) => {
                    failure = Some(QueueFault::TxAvail(e));
                    break;
                }
            };
            let Some(chain) = chain else {
                // Re-enable notifications, and look again: the guest may have
                // added a chain while they were off.
                match queue.enable_notification(mem) {
                    Ok(true) => {
                        let _ = queue.disable_notification(mem);
                        continue;
                    }
                    Ok(false) => break,
                    Err(e) => {
                        failure = Some(QueueFault::TxNotifications(e));
                        break;
                    }
                }
            };
            let head = chain.head_index();
            if !tx_gate.admit(1, || tx::frame_len(&chain)) {
                // Left in the ring, kicks off, until the gate's timer fires.
                queue.go_to_previous_position();
                break;
            }
            served += 1;
            match tx::gather(mem, chain, tx_buf) {
                Ok(()) if mmds.as_mut().is_some_and(|m| m.take(tx_buf)) => {}
                Ok(()) => {
                    metrics.tx_count.inc();
                    if let Err(e) = tap.write(tx_buf) {
                        metrics.tap_write_fails.inc();
                        metrics.tx_fails.inc();
                        if first_time(complained, Complaint::TxWrite) {
                            log::warn!(
                                "virtio-net {}: writing to the tap failed ({e}); frame dropped (further failures are not logged)",
                                tap.name()
                            );
                        }
                    } else {
                        // The frame without its virtio-net header, as the guest sent it.
                        metrics.tx_packets_count.inc();
                        metrics.tx_bytes_count.add(tx_buf.len().saturating_sub(VNET_HDR_LEN) as u64);
                    }
                }
                Err(why) => {
                    metrics.tx_malformed_frames.inc();
                    if first_time(complained, Complaint::TxMalformed) {
                        log::warn!(
                            "virtio-net {}: malformed TX chain ({why}); dropped (further malformed chains are not logged)",
                            tap.name()
                        );
                    }
                }
            }
            if let Err(source) = queue.add_used(mem, head, 0) {
                failure = Some(QueueFault::TxReturn { head, source });
                break;
            }
            used = true;
        }
        if used && queue.needs_notification(mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
        if let Some(why) = failure {
            // The guest's ring is corrupt: stop serving TX until a reset.
            log::warn!("virtio-net {}: {why}; TX stopped, the device needs a reset", tap.name());
            *tx_broken = true;
            ctx.interrupt.signal_needs_reset();
        }
    }

    /// Delivers what pair `k`'s tap (and, on pair 0, the MMDS) has for the guest.
    pub(super) fn process_rx(&mut self, k: usize) {
        let Net { activation, pairs, mergeable, rx_gate, rx_scratch, complained, mmds, metrics, .. } = self;
        let Some(ctx) = activation.active.as_mut() else { return };
        let Some(Pair { tap, rx_buf, rx_pending, rx_paid, rx_broken, failed: tap_failed, .. }) = pairs.get_mut(k)
        else {
            return;
        };
        if *rx_broken {
            return;
        }
        // The MMDS answers on the first pair, the one every driver uses.
        let mut mmds = mmds.as_mut().filter(|_| k == 0);
        let mem = &ctx.mem;
        let queue = &mut ctx.queues[2 * k + RX_QUEUE];
        let mut used = false;
        let mut failure = None;
        let mut budget = RX_BUDGET;
        loop {
            if rx_pending.is_none() {
                // The MMDS's answers first: they wait in the VMM, not in the tap.
                *rx_pending = mmds.as_mut().and_then(|m| m.next_rx(rx_buf));
            }
            let len = match *rx_pending {
                Some(len) => len,
                None => {
                    // Frames a stream socket's reader already holds are taken
                    // past the budget (at most a buffer's worth): no readable
                    // event would bring the device back for them.
                    if (budget == 0 && !tap.has_buffered_frame()) || *tap_failed {
                        break;
                    }
                    budget = budget.saturating_sub(1);
                    match tap.read(rx_buf) {
                        Ok(n) if n < VNET_HDR_LEN + 14 || n > rx_buf.len() => {
                            if first_time(complained, Complaint::RxBadFrame) {
                                log::warn!(
                                    "virtio-net {}: the tap gave a frame of {n} bytes; dropped (further such frames are not logged)",
                                    tap.name()
                                );
                            }
                            continue;
                        }
                        Ok(n) => {
                            *rx_pending = Some(n);
                            n
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            metrics.tap_read_fails.inc();
                            log::error!(
                                "virtio-net {}: reading the tap failed ({e}); the guest receives nothing more",
                                tap.name()
                            );
                            *tap_failed = true;
                            break;
                        }
                    }
                }
            };
            if !*rx_paid {
                if !rx_gate.admit(1, || len.saturating_sub(VNET_HDR_LEN) as u64) {
                    // Pending, the tap unwatched, until the gate's timer fires.
                    break;
                }
                *rx_paid = true;
            }
            let mut malformed = 0;
            let delivery = rx::deliver(mem, queue, &mut rx_buf[..len], *mergeable, rx_scratch, &mut malformed);
            if malformed > 0 {
                used = true;
                if first_time(complained, Complaint::RxMalformed) {
                    log::warn!(
                        "virtio-net {}: malformed RX chain (device-readable buffer, outside guest memory, looping, or \
                         smaller than the {VNET_HDR_LEN}-byte header); returned empty (further ones are not logged)",
                        tap.name()
                    );
                }
            }
            match delivery {
                Delivery::Delivered => {
                    metrics.rx_count.inc();
                    metrics.rx_packets_count.inc();
                    metrics.rx_bytes_count.add(len.saturating_sub(VNET_HDR_LEN) as u64);
                    *rx_pending = None;
                    *rx_paid = false;
                    used = true;
                }
                Delivery::TooBig { capacity } => {
                    metrics.rx_fails.inc();
                    *rx_pending = None;
                    *rx_paid = false;
                    if first_time(complained, Complaint::RxTooBig) {
                        let how = if *mergeable { "the RX ring holds" } else { "an RX chain holds (no MRG_RXBUF)" };
                        log::warn!(
                            "virtio-net {}: a {len}-byte frame does not fit: {how} {capacity} bytes; dropped (further drops are not logged)",
                            tap.name()
                        );
                    }
                }
                Delivery::NoBuffers { seen_avail } => match rx::wait_for_buffers(mem, queue, seen_avail) {
                    Ok(true) => continue,
                    // The frame stays pending and the tap unwatched until the
                    // guest posts buffers and notifies.
                    Ok(false) => break,
                    Err(why) => {
                        failure = Some(why);
                        break;
                    }
                },
                Delivery::Broken(why) => {
                    failure = Some(*why);
                    break;
                }
            }
        }
        if used && queue.needs_notification(mem).unwrap_or(true) {
            ctx.interrupt.signal_used_queue();
        }
        if let Some(why) = failure {
            log::warn!("virtio-net {}: {why}; RX stopped, the device needs a reset", tap.name());
            *rx_broken = true;
            ctx.interrupt.signal_needs_reset();
        }
    }
}
