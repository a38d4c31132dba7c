//! `microvm snapshot-info FILE [--check]`: what a snapshot needs of the machine and the
//! host (format and writer version, RAM, vCPUs, devices, CPU features, TSC frequency),
//! and with `--check` whether this host can restore it, without building anything.

use crate::entry::ExitCode;
use std::fmt::Write;
use std::path::Path;
use vmm::snapshot::{MachineShape, Snapshot};

pub const USAGE: &str = "usage: microvm snapshot-info FILE[,offset=N] [--check]";

/// Runs the subcommand with the arguments after its name.
pub fn main(args: &[String]) -> ExitCode {
    let (check, files): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| *a == "--check");
    let [file] = files.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (path, offset) = match file.rsplit_once(",offset=") {
        Some((path, offset)) => match vmm::snapshot::parse_file_uri(&format!("file:x,offset={offset}")) {
            Ok((_, offset)) => (path, offset),
            Err(e) => return fail(&e),
        },
        None => (file.as_str(), 0),
    };
    let (file, header, snapshot) = match vmm::snapshot::read(Path::new(path), offset) {
        Ok(read) => read,
        Err(e) => return fail(&e),
    };
    let allocated = file.metadata().map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).unwrap_or(0);
    print!("{}", describe(path, &header, &snapshot, allocated));
    if check.is_empty() {
        return ExitCode::SUCCESS;
    }
    match vmm::snapshot::check_this_host(&snapshot) {
        Ok(()) => {
            println!("this host can restore it");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("microvm: snapshot-info: {e}");
    ExitCode::from(1)
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The report, one fact a line.
pub fn describe(path: &str, header: &vmm::snapshot::Header, snapshot: &Snapshot, allocated: u64) -> String {
    let MachineShape { mem_size, vcpu_count, pit, acpi, rtc, i8042, serial, vmgenid, devices } = &snapshot.shape;
    let mut out = String::new();
    let _ = writeln!(out, "snapshot: {path}");
    let _ = writeln!(out, "format version: {} (written by microvm {})", header.format_version, header.writer);
    let memory = match header.memory_offset {
        Some(off) => format!("in this file at offset {off:#x}"),
        None => "not in this file (a memory file of its own, or a shared backend)".into(),
    };
    let _ =
        writeln!(out, "RAM: {} MiB, {memory}; {} KiB of the file allocated on disk", mem_size >> 20, allocated >> 10);
    let kind = match snapshot.lineage.diff_of {
        Some(base) => {
            format!("diff of snapshot {base:08x}: its memory must be merged into that one's (microvm rebase-snap)")
        }
        None => "full".into(),
    };
    let _ = writeln!(out, "type: {kind}");
    let _ = writeln!(out, "vCPUs: {vcpu_count}");
    let _ = writeln!(
        out,
        "machine: pit={} acpi={} rtc={} i8042={} serial={} vmgenid={}",
        on_off(*pit),
        on_off(*acpi),
        on_off(*rtc),
        on_off(*i8042),
        on_off(*serial),
        on_off(*vmgenid)
    );
    let devices = if devices.is_empty() { "none".to_string() } else { devices.join(", ") };
    let _ = writeln!(out, "devices: {devices}");
    if let Some(vcpu) = snapshot.vcpus.first() {
        let _ = writeln!(out, "CPU features: {}", vcpu.feature_names().join(" "));
        let tsc = vcpu.tsc_khz.map_or("unknown".to_string(), |khz| format!("{khz} kHz"));
        let _ = writeln!(out, "TSC: {tsc}");
        let wall = if snapshot.vm.has_wall_clock() {
            "with the wall-clock time it was saved at (clock=realtime can catch up)"
        } else {
            "without a wall-clock time (clock=realtime cannot catch up: the guest clock goes on from the saved instant)"
        };
        let _ = writeln!(out, "KVM clock: {wall}");
    }
    out
}
