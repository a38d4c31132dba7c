//! The counters behind Firecracker's metrics (`--metrics-path`, `PUT /metrics`): one static
//! group per section of Firecracker's JSON line (`vcpu`, `block`, `net`, `uart`, the API's
//! `get_api_requests`/`put_api_requests`/`patch_api_requests`, `vmm`, `seccomp`, `logger`),
//! each field named as Firecracker names it. The crate has no dependency, so the devices,
//! the vCPU threads, the API and the sandbox all increment the same statics without a
//! module cycle; `vmm::api::metrics` writes them out.
//!
//! A [`Counter`] is two relaxed atomics, as Firecracker's `SharedIncMetric`: the running
//! count and the count at the last flush; a flush reports the difference (Firecracker's
//! counters are deltas since the previous line). Relaxed is enough: each counter is read on
//! its own and nothing else is ordered by it. The increment is one uncontended `lock add`
//! on the thread that already does the work. A [`Gauge`] (`SharedStoreMetric`) reports its
//! value as it is.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};

/// A count reported as the difference since the previous flush.
#[derive(Debug, Default)]
pub struct Counter {
    now: AtomicU64,
    flushed: AtomicU64,
}

impl Counter {
    pub const fn new() -> Counter {
        Counter { now: AtomicU64::new(0), flushed: AtomicU64::new(0) }
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.now.fetch_add(n, Relaxed);
    }

    /// The total since the process started.
    pub fn total(&self) -> u64 {
        self.now.load(Relaxed)
    }

    /// What was added since the previous call, which starts the next period. One flusher
    /// calls this (the main thread), so the swap needs no stronger ordering.
    pub fn take_delta(&self) -> u64 {
        let now = self.now.load(Relaxed);
        now.wrapping_sub(self.flushed.swap(now, Relaxed))
    }
}

/// A value reported as it is at each flush.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicU64::new(0))
    }

    pub fn set(&self, value: u64) {
        self.0.store(value, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A field's value in one flush: a counter's delta or a gauge's value.
pub trait Metric {
    fn flush_value(&self) -> u64;
}

impl Metric for Counter {
    fn flush_value(&self) -> u64 {
        self.take_delta()
    }
}

impl Metric for Gauge {
    fn flush_value(&self) -> u64 {
        self.get()
    }
}

/// One section of the line: a struct of named metrics, listed once for the flush.
macro_rules! group {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $kind:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $kind,)*
        }

        impl $name {
            pub const fn new() -> $name {
                $name { $($field: $kind::new(),)* }
            }

            /// Every field with its name, in Firecracker's order.
            pub fn fields(&self) -> Vec<(&'static str, &dyn Metric)> {
                vec![$((stringify!($field), &self.$field as &dyn Metric),)*]
            }
        }
    };
}

group!(
    /// `vcpu`: exits handled by the VMM, counted on the vCPU threads.
    VcpuMetrics {
        exit_io_in: Counter,
        exit_io_out: Counter,
        exit_mmio_read: Counter,
        exit_mmio_write: Counter,
        /// Exits that end the VM with an error (failed entry, emulation failure...).
        failures: Counter,
        /// KVM_KVMCLOCK_CTRL refused when pausing (a guest without kvmclock).
        kvmclock_ctrl_fails: Counter,
    }
);

group!(
    /// `block`: every virtio-blk device together.
    BlockMetrics {
        activate_fails: Counter,
        /// Requests the device could not parse (bad chain, direction, range, type).
        invalid_reqs_count: Counter,
        /// Requests the host's I/O failed.
        execute_fails: Counter,
        flush_count: Counter,
        queue_event_count: Counter,
        read_bytes: Counter,
        write_bytes: Counter,
        read_count: Counter,
        write_count: Counter,
    }
);

group!(
    /// `net`: every virtio-net device together (not vhost-net, whose data path is the
    /// kernel's).
    NetMetrics {
        activate_fails: Counter,
        rx_queue_event_count: Counter,
        rx_tap_event_count: Counter,
        rx_bytes_count: Counter,
        rx_packets_count: Counter,
        rx_fails: Counter,
        rx_count: Counter,
        tap_read_fails: Counter,
        tap_write_fails: Counter,
        tx_bytes_count: Counter,
        tx_malformed_frames: Counter,
        tx_fails: Counter,
        tx_count: Counter,
        tx_packets_count: Counter,
        tx_queue_event_count: Counter,
    }
);

group!(
    /// `uart`: the 16550A serial port.
    UartMetrics {
        /// Bytes the guest read from the receive buffer.
        read_count: Counter,
        /// Bytes the guest wrote to the transmitter.
        write_count: Counter,
        /// Guest output the backend could not take (dropped).
        missed_write_count: Counter,
    }
);

group!(
    /// `get_api_requests`.
    GetRequestsMetrics {
        instance_info_count: Counter,
        machine_cfg_count: Counter,
        mmds_count: Counter,
        vmm_version_count: Counter,
    }
);

group!(
    /// `put_api_requests`: each endpoint's requests and refusals.
    PutRequestsMetrics {
        actions_count: Counter,
        actions_fails: Counter,
        boot_source_count: Counter,
        boot_source_fails: Counter,
        drive_count: Counter,
        drive_fails: Counter,
        logger_count: Counter,
        logger_fails: Counter,
        machine_cfg_count: Counter,
        machine_cfg_fails: Counter,
        cpu_cfg_count: Counter,
        cpu_cfg_fails: Counter,
        metrics_count: Counter,
        metrics_fails: Counter,
        network_count: Counter,
        network_fails: Counter,
        mmds_count: Counter,
        mmds_fails: Counter,
        vsock_count: Counter,
        vsock_fails: Counter,
    }
);

group!(
    /// `patch_api_requests`.
    PatchRequestsMetrics {
        drive_count: Counter,
        drive_fails: Counter,
        network_count: Counter,
        network_fails: Counter,
        machine_cfg_count: Counter,
        machine_cfg_fails: Counter,
        mmds_count: Counter,
        mmds_fails: Counter,
    }
);

group!(
    /// `vmm`.
    VmmMetrics {
        /// Threads that panicked (each ends the VM).
        panic_count: Gauge,
    }
);

group!(
    /// `seccomp`.
    SeccompMetrics {
        /// System calls outside a thread's list. The first one ends the process (SIGSYS),
        /// so only the line written on the way out can show it.
        num_faults: Gauge,
    }
);

group!(
    /// `logger`: the metrics writer's own health.
    LoggerMetrics {
        /// Lines dropped because the destination (a full pipe) would block.
        missed_metrics_count: Counter,
        /// Lines that failed to be written.
        metrics_fails: Counter,
    }
);

pub static VCPU: VcpuMetrics = VcpuMetrics::new();
pub static BLOCK: BlockMetrics = BlockMetrics::new();
pub static NET: NetMetrics = NetMetrics::new();
pub static UART: UartMetrics = UartMetrics::new();
pub static GET_API: GetRequestsMetrics = GetRequestsMetrics::new();
pub static PUT_API: PutRequestsMetrics = PutRequestsMetrics::new();
pub static PATCH_API: PatchRequestsMetrics = PatchRequestsMetrics::new();
pub static VMM: VmmMetrics = VmmMetrics::new();
pub static SECCOMP: SeccompMetrics = SeccompMetrics::new();
pub static LOGGER: LoggerMetrics = LoggerMetrics::new();

/// The metrics destination's descriptor (-1: none), for the one line a process that a
/// seccomp filter kills writes on its way out (the SIGSYS handler cannot reach the writer).
static LAST_LINE_FD: AtomicI32 = AtomicI32::new(-1);

/// Records (or with `None`, forgets) the descriptor the dying line goes to.
pub fn set_last_line_fd(fd: Option<i32>) {
    LAST_LINE_FD.store(fd.unwrap_or(-1), Relaxed);
}

/// The descriptor of [`set_last_line_fd`], if any; read in a signal handler (a plain load).
pub fn last_line_fd() -> Option<i32> {
    Some(LAST_LINE_FD.load(Relaxed)).filter(|&fd| fd >= 0)
}

/// A section's fields: each name with its metric.
pub type Fields = Vec<(&'static str, &'static dyn Metric)>;

/// The sections of the line, named as in Firecracker's JSON, in its order.
pub fn sections() -> [(&'static str, Fields); 10] {
    [
        ("block", BLOCK.fields()),
        ("get_api_requests", GET_API.fields()),
        ("logger", LOGGER.fields()),
        ("net", NET.fields()),
        ("patch_api_requests", PATCH_API.fields()),
        ("put_api_requests", PUT_API.fields()),
        ("seccomp", SECCOMP.fields()),
        ("uart", UART.fields()),
        ("vcpu", VCPU.fields()),
        ("vmm", VMM.fields()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_reports_what_was_added_since_the_last_flush() {
        let c = Counter::new();
        c.add(5);
        c.inc();
        assert_eq!(c.take_delta(), 6);
        assert_eq!(c.take_delta(), 0);
        c.add(3);
        assert_eq!(c.take_delta(), 3);
        assert_eq!(c.total(), 9);
    }

    #[test]
    fn a_gauge_reports_its_value_every_time() {
        let g = Gauge::new();
        g.set(2);
        assert_eq!(g.flush_value(), 2);
        assert_eq!(g.flush_value(), 2);
    }

    #[test]
    fn fields_carry_firecrackers_names() {
        let names: Vec<&str> = VCPU.fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(&names[..5], ["exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures"]);
        assert!(BLOCK.fields().iter().any(|(n, _)| *n == "read_bytes"));
        assert!(NET.fields().iter().any(|(n, _)| *n == "tx_packets_count"));
    }
}
