//! The counters behind Firecracker's metrics (`--metrics-path`, `PUT /metrics`): one static
//! group per section of Firecracker's JSON line (`vcpu`, `block`, `net`, `uart`, the API's
//! `get_api_requests`/`put_api_requests`/`patch_api_requests`, `vmm`, `seccomp`, `logger`,
//! `signals`, `latencies_us`, `api_server`, and in `devices` `mmds`, `vsock`, `entropy`, `balloon`,
//! `i8042`),
//! each field named as Firecracker names it. The crate has no dependency, so the devices,
//! the vCPU threads, the API and the sandbox all increment the same statics without a
//! module cycle; `vmm::api::metrics` writes them out.
//!
//! `block` and `net` are per device as in Firecracker: each device counts into its own group,
//! registered under its id in [`BLOCK_DEVICES`] / [`NET_DEVICES`], and a line carries one
//! section per named device (`block_<drive_id>`, `net_<iface_id>`) beside the aggregate
//! (`block`, `net`), which is their sum: the hot path stays one atomic add.
//!
//! A [`Counter`] is two relaxed atomics, as Firecracker's `SharedIncMetric`: the running
//! count and the count at the last flush; a flush reports the difference (Firecracker's
//! counters are deltas since the previous line). Relaxed is enough: each counter is read on
//! its own and nothing else is ordered by it. The increment is one uncontended `lock add`
//! on the thread that already does the work. A [`Gauge`] (`SharedStoreMetric`) reports its
//! value as it is.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

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

/// A section's struct, as [`PerDevice`] needs it.
pub trait Group {
    fn fresh() -> Self;
    fn fields(&self) -> Vec<(&'static str, &dyn Metric)>;
}

/// The groups of one device kind, each under its device's id (`""`: a device without one,
/// counted in the aggregate only).
pub struct PerDevice<G> {
    devices: Mutex<Vec<(String, Arc<G>)>>,
}

impl<G: Group> Default for PerDevice<G> {
    fn default() -> Self {
        PerDevice::new()
    }
}

impl<G: Group> PerDevice<G> {
    pub const fn new() -> PerDevice<G> {
        PerDevice { devices: Mutex::new(Vec::new()) }
    }

    /// The group a device with `id` counts into: the one registered before under the same
    /// id (a device built again, as on restore, goes on counting), else a new one.
    pub fn register(&self, id: &str) -> Arc<G> {
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, group)) = devices.iter().find(|(name, _)| name == id) {
            return group.clone();
        }
        let group = Arc::new(G::fresh());
        devices.push((id.to_owned(), group.clone()));
        group
    }

    /// This flush's values: the aggregate section `kind` (the sum over every device), then
    /// `kind_<id>` for each named device. Each counter's delta is taken once.
    fn flush(&self, kind: &str) -> Vec<(String, Values)> {
        let devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total: Values = G::fresh().fields().iter().map(|(name, _)| (*name, 0)).collect();
        let mut sections = vec![];
        for (id, group) in devices.iter() {
            let values: Values = group.fields().iter().map(|(name, metric)| (*name, metric.flush_value())).collect();
            for (sum, (_, value)) in total.iter_mut().zip(&values) {
                sum.1 = sum.1.saturating_add(*value);
            }
            if !id.is_empty() {
                sections.push((format!("{kind}_{id}"), values));
            }
        }
        sections.insert(0, (kind.to_owned(), total));
        sections
    }
}

/// One section's fields and their values in this flush.
pub type Values = Vec<(&'static str, u64)>;

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

        impl Group for $name {
            fn fresh() -> $name {
                $name::new()
            }

            fn fields(&self) -> Vec<(&'static str, &dyn Metric)> {
                $name::fields(self)
            }
        }
    };
}

// After the macro, which it uses: the devices' sections Firecracker keeps beside them.
mod devices;
pub use devices::{BalloonMetrics, EntropyMetrics, I8042Metrics, MmdsMetrics, VsockMetrics};

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
    /// `block` / `block_<drive_id>`: one virtio-blk device, or all of them together.
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
    /// `net` / `net_<iface_id>`: one virtio-net device, or all of them together (not
    /// vhost-net, whose data path is the kernel's).
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

group!(
    /// `signals`: the signals microvm handles. The deadly ones are gauges, 0 or 1 (the
    /// process ends at the first), as in Firecracker.
    SignalMetrics {
        sigbus: Gauge,
        sigsegv: Gauge,
        sigxfsz: Gauge,
        sigxcpu: Gauge,
        /// Always 0: microvm ignores SIGPIPE (a write to a closed pipe or socket fails with
        /// EPIPE instead), so none is ever delivered.
        sigpipe: Counter,
        /// SIGHUP received (it ends the VM in an orderly way).
        sighup: Gauge,
        sigill: Gauge,
    }
);

group!(
    /// `latencies_us`: how long the last of each operation took, in microseconds (values,
    /// as Firecracker's SharedStoreMetric: a line shows the last one, however old). The
    /// API level runs from the parsed request to its answer; `vmm_` is the VMM's own part
    /// (the pause, the snapshot written, the VM rebuilt from the snapshot).
    LatencyMetrics {
        full_create_snapshot: Gauge,
        diff_create_snapshot: Gauge,
        load_snapshot: Gauge,
        pause_vm: Gauge,
        resume_vm: Gauge,
        vmm_full_create_snapshot: Gauge,
        vmm_diff_create_snapshot: Gauge,
        vmm_load_snapshot: Gauge,
        vmm_pause_vm: Gauge,
        vmm_resume_vm: Gauge,
    }
);

group!(
    /// `api_server`: how long the process took to serve its API socket, from the jailer's
    /// `--start-time-us` (wall, CLOCK_MONOTONIC) and `--start-time-cpu-us` plus
    /// `--parent-cpu-time-us` (CPU). Values; 0 without those flags, as in Firecracker.
    ApiServerMetrics {
        process_startup_time_us: Gauge,
        process_startup_time_cpu_us: Gauge,
    }
);

/// Sets `gauge` to the microseconds since `since` (a `latencies_us` field).
pub fn record_latency(gauge: &Gauge, since: std::time::Instant) {
    gauge.set(u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX));
}

pub static VCPU: VcpuMetrics = VcpuMetrics::new();
pub static BLOCK_DEVICES: PerDevice<BlockMetrics> = PerDevice::new();
pub static NET_DEVICES: PerDevice<NetMetrics> = PerDevice::new();
pub static UART: UartMetrics = UartMetrics::new();
pub static GET_API: GetRequestsMetrics = GetRequestsMetrics::new();
pub static PUT_API: PutRequestsMetrics = PutRequestsMetrics::new();
pub static PATCH_API: PatchRequestsMetrics = PatchRequestsMetrics::new();
pub static VMM: VmmMetrics = VmmMetrics::new();
pub static SECCOMP: SeccompMetrics = SeccompMetrics::new();
pub static LOGGER: LoggerMetrics = LoggerMetrics::new();
pub static MMDS: MmdsMetrics = MmdsMetrics::new();
pub static VSOCK: VsockMetrics = VsockMetrics::new();
pub static ENTROPY: EntropyMetrics = EntropyMetrics::new();
pub static BALLOON: BalloonMetrics = BalloonMetrics::new();
pub static I8042: I8042Metrics = I8042Metrics::new();
pub static SIGNALS: SignalMetrics = SignalMetrics::new();
pub static LATENCIES: LatencyMetrics = LatencyMetrics::new();
pub static API_SERVER: ApiServerMetrics = ApiServerMetrics::new();

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

/// The sections of one line with their values, named as in Firecracker's JSON, in its
/// order (each device's own section after its kind's aggregate). Counters' deltas are
/// taken: one flusher calls this.
pub fn flush() -> Vec<(String, Values)> {
    fn values(fields: Vec<(&'static str, &dyn Metric)>) -> Values {
        fields.into_iter().map(|(name, metric)| (name, metric.flush_value())).collect()
    }
    let mut line = vec![("api_server".into(), values(API_SERVER.fields()))];
    line.push(("balloon".into(), values(BALLOON.fields())));
    line.extend(BLOCK_DEVICES.flush("block"));
    line.push(("entropy".into(), values(ENTROPY.fields())));
    line.push(("get_api_requests".into(), values(GET_API.fields())));
    line.push(("i8042".into(), values(I8042.fields())));
    line.push(("latencies_us".into(), values(LATENCIES.fields())));
    line.push(("logger".into(), values(LOGGER.fields())));
    line.push(("mmds".into(), values(MMDS.fields())));
    line.extend(NET_DEVICES.flush("net"));
    line.push(("patch_api_requests".into(), values(PATCH_API.fields())));
    line.push(("put_api_requests".into(), values(PUT_API.fields())));
    line.push(("seccomp".into(), values(SECCOMP.fields())));
    line.push(("signals".into(), values(SIGNALS.fields())));
    line.push(("uart".into(), values(UART.fields())));
    line.push(("vcpu".into(), values(VCPU.fields())));
    line.push(("vmm".into(), values(VMM.fields())));
    line.push(("vsock".into(), values(VSOCK.fields())));
    line
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
        assert!(BlockMetrics::new().fields().iter().any(|(n, _)| *n == "read_bytes"));
        assert!(NetMetrics::new().fields().iter().any(|(n, _)| *n == "tx_packets_count"));
    }

    #[test]
    fn the_line_has_firecrackers_sections_and_fields() {
        let line = flush();
        let names: Vec<&str> = line.iter().map(|(n, _)| n.as_str()).collect();
        for section in
            ["api_server", "balloon", "entropy", "i8042", "latencies_us", "mmds", "signals", "vsock", "uart", "vcpu"]
        {
            assert!(names.contains(&section), "{section} missing from {names:?}");
        }
        let fields = |section: &str| -> Vec<&str> {
            line.iter().find(|(n, _)| n == section).unwrap().1.iter().map(|(f, _)| *f).collect()
        };
        assert_eq!(
            fields("mmds"),
            [
                "rx_accepted",
                "rx_accepted_err",
                "rx_accepted_unusual",
                "rx_bad_eth",
                "rx_invalid_token",
                "rx_no_token",
                "rx_count",
                "tx_bytes",
                "tx_count",
                "tx_errors",
                "tx_frames",
                "connections_created",
                "connections_destroyed"
            ]
        );
        assert_eq!(fields("signals"), ["sigbus", "sigsegv", "sigxfsz", "sigxcpu", "sigpipe", "sighup", "sigill"]);
        assert_eq!(
            fields("i8042"),
            ["error_count", "missed_read_count", "missed_write_count", "read_count", "reset_count", "write_count"]
        );
        assert_eq!(fields("vsock").len(), 20);
        assert_eq!(fields("entropy").len(), 7);
        assert_eq!(fields("balloon").len(), 12);
        assert_eq!(fields("latencies_us").len(), 10);
    }

    #[test]
    fn each_named_device_has_its_section_and_the_aggregate_is_their_sum() {
        let kinds: PerDevice<BlockMetrics> = PerDevice::new();
        let (a, b, anonymous) = (kinds.register("rootfs"), kinds.register("scratch"), kinds.register(""));
        a.read_bytes.add(512);
        b.read_bytes.add(4096);
        anonymous.read_bytes.add(1);
        assert!(Arc::ptr_eq(&a, &kinds.register("rootfs")), "one group per id");
        let line = kinds.flush("block");
        let names: Vec<&str> = line.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["block", "block_rootfs", "block_scratch"]);
        let read_bytes = |i: usize| line[i].1.iter().find(|(n, _)| *n == "read_bytes").unwrap().1;
        assert_eq!((read_bytes(0), read_bytes(1), read_bytes(2)), (4609, 512, 4096));
        // Deltas: the next flush starts from zero.
        assert!(kinds.flush("block").iter().all(|(_, values)| values.iter().all(|(_, v)| *v == 0)));
    }
}
