//! The sections of Firecracker's line for its smaller devices (`mmds`, `vsock`,
//! `entropy`, `balloon`, `i8042`): one group each, every field named as in Firecracker and
//! listed in its order (src/vmm/src/logger/metrics.rs and each device's metrics.rs), including
//! those microvm never moves, so that a consumer finds every field it expects.

use super::{Counter, Group, Metric};

group!(
    /// `mmds`: the MMDS's network stack on the interfaces `PUT /mmds/config` lists.
    MmdsMetrics {
        /// Frames the guest sent that the MMDS took (ARP for its address, IPv4 to it).
        rx_accepted: Counter,
        /// Frames to the MMDS whose IPv4 or TCP header did not parse.
        rx_accepted_err: Counter,
        /// Frames to the MMDS it does not serve: not TCP, fragments, TCP to another port
        /// or to no connection (answered with a reset).
        rx_accepted_unusual: Counter,
        /// Frames offered to the MMDS too short to be Ethernet.
        rx_bad_eth: Counter,
        /// V2 GETs with a token that is unknown or expired.
        rx_invalid_token: Counter,
        /// V2 GETs without a token.
        rx_no_token: Counter,
        /// TCP segments a connection of the MMDS took.
        rx_count: Counter,
        /// Bytes of those frames (Ethernet, without the virtio-net header).
        tx_bytes: Counter,
        /// Frames the stack produced.
        tx_count: Counter,
        /// Frames the stack produced that did not fit the guest's buffer (dropped).
        tx_errors: Counter,
        /// Frames handed to the device's receive path for the guest.
        tx_frames: Counter,
        connections_created: Counter,
        /// Connections closed, reset or evicted for a new one.
        connections_destroyed: Counter,
    }
);

group!(
    /// `vsock`: the hybrid vsock (not vhost-vsock, whose data path is the kernel's).
    VsockMetrics {
        activate_fails: Counter,
        /// Config space writes refused (the config is read-only).
        cfg_fails: Counter,
        rx_queue_event_fails: Counter,
        tx_queue_event_fails: Counter,
        ev_queue_event_fails: Counter,
        /// Accepting on the `uds_path` listener failed.
        muxer_event_fails: Counter,
        /// A host stream could not be watched.
        conn_event_fails: Counter,
        rx_queue_event_count: Counter,
        tx_queue_event_count: Counter,
        /// Payload bytes read from host streams for the guest.
        rx_bytes_count: Counter,
        /// Payload bytes of the guest written to host streams.
        tx_bytes_count: Counter,
        /// Packets put in the guest's rx buffers.
        rx_packets_count: Counter,
        /// Packets taken from the guest's tx queue.
        tx_packets_count: Counter,
        /// Connections made, from either side.
        conns_added: Counter,
        /// Connections reset by the device (a broken peer, a bad packet, a full table).
        conns_killed: Counter,
        /// Connections that ended, however.
        conns_removed: Counter,
        /// Firecracker's kill-queue rescans: microvm has no kill queue (always 0).
        killq_resync: Counter,
        /// A write of buffered guest data to its host peer failed.
        tx_flush_fails: Counter,
        tx_write_fails: Counter,
        rx_read_fails: Counter,
    }
);

group!(
    /// `entropy`: the virtio-rng device.
    EntropyMetrics {
        activate_fails: Counter,
        /// Requests that could not be served (a buffer outside guest memory, a used ring
        /// outside it).
        entropy_event_fails: Counter,
        /// Requests served.
        entropy_event_count: Counter,
        /// Random bytes given to the guest.
        entropy_bytes: Counter,
        /// getrandom() failed.
        host_rng_fails: Counter,
        /// Requests held back by the rate limiter.
        entropy_rate_limiter_throttled: Counter,
        /// The rate limiter's refill timer fired.
        rate_limiter_event_count: Counter,
    }
);

group!(
    /// `balloon`: the virtio-balloon device.
    BalloonMetrics {
        activate_fails: Counter,
        /// Inflate queue kicks served.
        inflate_count: Counter,
        /// Statistics buffers the guest returned.
        stats_updates_count: Counter,
        stats_update_fails: Counter,
        /// Deflate queue kicks served.
        deflate_count: Counter,
        event_fails: Counter,
        /// Free page reporting buffers served, and the bytes they gave back.
        free_page_report_count: Counter,
        free_page_report_freed: Counter,
        free_page_report_fails: Counter,
        /// Free page hinting: microvm does not offer it (always 0).
        free_page_hint_count: Counter,
        free_page_hint_freed: Counter,
        free_page_hint_fails: Counter,
    }
);

group!(
    /// `i8042`: the keyboard controller's ports 0x60 and 0x64.
    I8042Metrics {
        /// The reset event could not be signalled.
        error_count: Counter,
        /// Reads that were not one byte wide.
        missed_read_count: Counter,
        /// Writes that were not one byte wide.
        missed_write_count: Counter,
        /// Bytes the guest read.
        read_count: Counter,
        /// CPU resets the guest asked for (command 0xFE).
        reset_count: Counter,
        /// Bytes the guest wrote.
        write_count: Counter,
    }
);
