//! The fuzz targets' bodies. Each takes the fuzzer's bytes and drives one guest- or
//! user-facing input path of microvm with them; any panic, hang or runaway allocation is a
//! finding. `fuzz/` (cargo-fuzz, nightly) wraps each in `fuzz_target!`; `tests/corpus.rs`
//! replays `fuzz/corpus/<target>/*` through them on stable, so CI keeps the corpora passing.

mod bytes;
mod fc_api;
mod legacy;
mod mmds;
mod ninep;
mod queues;

pub use fc_api::fc_api_input;
pub use legacy::legacy_ports;
pub use mmds::mmds_frames;
pub use ninep::{ninep_requests, queue_9p};
pub use queues::{
    queue_balloon, queue_block, queue_console, queue_input, queue_multiport, queue_net, queue_rng, queue_vsock,
    virtio_mmio,
};

use std::sync::atomic::{AtomicU32, Ordering};

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target, by the name of its fuzz target and corpus directory.
pub const TARGETS: &[(&str, Body)] = &[
    ("qmp_input", qmp_input),
    ("cli_args", cli_args),
    ("kernel_loader", kernel_loader),
    ("virtio_mmio", virtio_mmio),
    ("queue_rng", queue_rng),
    ("queue_block", queue_block),
    ("queue_net", queue_net),
    ("queue_console", queue_console),
    ("queue_balloon", queue_balloon),
    ("queue_multiport", queue_multiport),
    ("queue_input", queue_input),
    ("queue_vsock", queue_vsock),
    ("queue_9p", queue_9p),
    ("ninep_requests", ninep_requests),
    ("legacy_ports", legacy_ports),
    ("snapshot_state", snapshot_state),
    ("fc_api_input", fc_api_input),
    ("mmds_frames", mmds_frames),
];

/// A snapshot's state file as `-incoming` reads it: the frame (magic, version, lengths,
/// checksum) on the raw input, then the input as content behind a valid frame, decoded
/// as the VMM's whole `Snapshot` (every vCPU's and the VM's KVM state) and checked
/// against a machine, as a restore does before building anything.
pub fn snapshot_state(data: &[u8]) {
    use vmm::snapshot::{MachineShape, Snapshot};
    let _ = vmm::snapshot::decode(data);
    let (framed, _) = snapshot::frame(data, snapshot::MemoryPlacement::Separate { len: 32 << 20 }, "fuzz");
    // As the current format (the state, then its lineage), and the state alone (what a
    // version 1 file holds: the corpus's contents).
    let _ = vmm::snapshot::decode(&framed);
    if let Ok((_, state)) = snapshot::decode::<Snapshot>(&framed) {
        let shape = MachineShape {
            mem_size: 32 << 20,
            vcpu_count: 1,
            pit: true,
            acpi: false,
            rtc: false,
            i8042: false,
            serial: true,
            vmgenid: false,
            devices: Vec::new(),
        };
        let _ = state.shape.check(&shape);
        let _ = format!("{state:?}");
    }
}

/// QMP input as a client sends it: the streaming decoder, then the dispatcher (with the
/// built-in commands and one that takes arguments) for each value, in both modes.
pub fn qmp_input(data: &[u8]) {
    fn echo(_: &mut (), mut args: qmp::Arguments) -> Result<serde_json::Value, qmp::QmpError> {
        let text: String = args.required("text")?;
        let times: Option<u32> = args.optional("times")?;
        args.finish()?;
        Ok(serde_json::Value::String(
            text.chars().take(64).collect::<String>().repeat(times.unwrap_or(1).min(4) as usize),
        ))
    }
    let mut dispatcher = qmp::Dispatcher::new();
    dispatcher.register("echo", echo).expect("a new name");
    let mut session = qmp::Session::new();
    let mut decoder = qmp::Decoder::new();
    let mut decoded = Vec::new();
    // Split where the input says, so partial reads are exercised too.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for chunk in [&data[..split], &data[split..]] {
        if decoder.feed(chunk, &mut decoded).is_err() {
            break;
        }
    }
    for item in decoded {
        if let qmp::Decoded::Value(request) = item {
            let reply = dispatcher.dispatch(&mut session, &mut (), request);
            let _ = serde_json::to_string(&reply);
        }
    }
}

/// A command line: NUL bytes separate the arguments. Only parsing: nothing is opened.
pub fn cli_args(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = text.split('\0').map(String::from).collect();
    let _ = cli::args::parse(argv);
}

/// A kernel image (ELF or bzImage headers and all) loaded into 64 MiB of guest memory,
/// with a command line taken from the input's first line.
pub fn kernel_loader(data: &[u8]) {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "microvm-fuzz-kernel-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let mem_size = 64 << 20;
    let mem = devices::guest_memory::untracked(&[(vm_memory::GuestAddress(0), mem_size as usize)]);
    let cmdline_text = String::from_utf8_lossy(data.split(|&b| b == b'\n').next().unwrap_or_default());
    if let Ok(cmdline) = vmm::boot::build_cmdline(&cmdline_text.chars().take(256).collect::<String>(), &[]) {
        let kernel = vmm::config::KernelConfig { path: path.clone(), cmdline: String::new(), initrd: None };
        // With and without an ACPI RSDP address, as acpi=on and off boot.
        let rsdp = (data.len() % 2 == 0).then_some(0xe0000);
        let _ = vmm::boot::load_kernel(&mem, mem_size, &kernel, &cmdline, rsdp);
    }
    let _ = std::fs::remove_file(&path);
}
