//! `human-monitor-command`: the few human-monitor commands tools send through QMP, run
//! on the same handlers as their QMP twins and printed as QEMU prints them (lines end
//! in `\r\n`, as QEMU's monitor output does).

use super::vm_control::{version, VmControl};
use crate::exit::VmExit;
use crate::state::RunState;
use qmp::{Arguments, QmpError};
use serde_json::Value;

pub fn human_monitor_command(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let line: String = args.required("command-line")?;
    // Which CPU `info registers` and friends would look at; none of ours needs one.
    let _cpu_index: Option<i64> = args.optional("cpu-index")?;
    args.finish()?;
    Ok(Value::String(run_line(vm, &line)))
}

/// The commands `help` lists, as QEMU's help prints them.
const HELP: &[(&str, &str)] = &[
    ("cont|c", "resume emulation"),
    ("help|? [cmd]", "show the help"),
    ("info [subcommand]", "show various information about the system state"),
    ("quit|q", "quit the emulator"),
    (
        "sendkey keys",
        "send keys to the VM (e.g. 'sendkey ctrl-alt-delete'; needs -device i8042 or virtio-keyboard-device)",
    ),
    ("stop|s", "stop emulation"),
    ("system_powerdown", "send system power down event"),
    ("system_reset", "reset the system"),
];

/// `info` items, for `info` and `help info`.
const INFO_ITEMS: &[(&str, &str)] = &[
    ("block", "show the block devices"),
    ("chardev", "show the character devices"),
    ("cpus", "show infos for each CPU"),
    ("migrate", "show migration status"),
    ("mtree", "show memory tree"),
    ("qtree", "show device tree"),
    ("status", "show the current VM status (running|paused)"),
    ("version", "show the version of QEMU"),
    ("vm-generation-id", "show the VM Generation ID"),
];

fn listing(prefix: &str, items: &[(&str, &str)]) -> String {
    items.iter().map(|(name, what)| format!("{prefix}{name} -- {what}\r\n")).collect()
}

/// Runs one human-monitor line (from `human-monitor-command` or the readline
/// monitor) and returns what it prints, lines ending in `\r\n`.
pub fn run_line(vm: &mut VmControl, line: &str) -> String {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (None, _) => String::new(),
        (Some("help" | "?"), Some("info")) => listing("info ", INFO_ITEMS),
        (Some("help" | "?"), _) => listing("", HELP),
        (Some("info"), Some("chardev")) => {
            vm.facts.chardevs.iter().map(|c| format!("{}: filename={}\r\n", c.label, c.filename)).collect()
        }
        (Some("info"), Some("block")) => info_block(vm),
        (Some("info"), Some("status")) => info_status(vm.machine.state()),
        (Some("info"), Some("cpus")) => info_cpus(vm),
        (Some("info"), Some("version")) => {
            let v = version();
            format!("{}.{}.{}{}\r\n", v.qemu.major, v.qemu.minor, v.qemu.micro, v.package)
        }
        (Some("info"), Some("mtree")) => vm.facts.mtree.replace('\n', "\r\n"),
        (Some("info"), Some("qtree")) => info_qtree(vm),
        (Some("info"), Some("migrate")) => super::migration::info(vm),
        // QEMU's `hmp_info_vm_generation_id`: the GUID, or the QMP command's error.
        (Some("info"), Some("vm-generation-id")) => match vm.facts.vmgenid {
            Some(guid) => format!("{guid}\r\n"),
            None => "Error: VM Generation ID device not found\r\n".to_owned(),
        },
        (Some("info"), Some(other)) => format!("info: unknown or unsupported item '{other}'\r\n"),
        (Some("info"), None) => listing("info ", INFO_ITEMS),
        (Some(name @ ("stop" | "s" | "cont" | "quit" | "c" | "q" | "system_reset")), None) => {
            let command = match name {
                "c" => "cont",
                "q" => "quit",
                "s" => "stop",
                other => other,
            };
            let done = match command {
                "stop" => vm.stop(),
                "cont" => vm.cont(),
                "quit" => Ok(vm.exit(VmExit::Quit)),
                _ => Ok(vm.exit(VmExit::SystemReset)),
            };
            match done {
                Ok(_) => String::new(),
                Err(e) => format!("Error: {}\r\n", e.desc),
            }
        }
        (Some("system_powerdown"), None) => {
            match super::power::system_powerdown(vm, Arguments::new(serde_json::Map::new())) {
                Ok(_) => String::new(),
                Err(e) => format!("Error: {}\r\n", e.desc),
            }
        }
        (Some("sendkey"), Some(keys)) => super::power::hmp_sendkey(vm, keys),
        // QEMU answers an unknown command with text, not a QMP error.
        (Some(other), _) => format!("unknown command: '{other}'\r\n"),
    }
}

/// QEMU's `info block` lines: `ID: PATH (raw[, read-only])` and the cache mode.
fn info_block(vm: &VmControl) -> String {
    vm.facts
        .blocks
        .iter()
        .map(|b| {
            let ro = if b.read_only { ", read-only" } else { "" };
            let cache = format!("{:?}", b.cache).to_lowercase();
            format!("{}: {} (raw{ro})\r\n    Cache mode:       {cache}\r\n", b.id, b.path.display())
        })
        .collect()
}

fn info_status(state: RunState) -> String {
    let status = match state {
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Prelaunch => "paused (prelaunch)",
        RunState::Shutdown | RunState::GuestShutdown => "paused (shutdown)",
        RunState::Postmigrate => "paused (postmigrate)",
        RunState::Inmigrate => "paused (inmigrate)",
    };
    format!("VM status: {status}\r\n")
}

/// The devices, one line each, in the shape of QEMU's `info qtree` device lines (flat:
/// microvm has no buses to nest them under).
fn info_qtree(vm: &VmControl) -> String {
    vm.devices
        .iter()
        .map(|d| {
            let id = d.id.as_deref().map(|id| format!(", id \"{id}\"")).unwrap_or_default();
            let slot = d.slot.map(|s| format!("\r\n    mmio {:016x}/0000000000000200, gsi {}", s.addr, s.irq));
            format!("  dev: {}{id}{}\r\n", d.handle.type_name(), slot.unwrap_or_default())
        })
        .collect()
}

fn info_cpus(vm: &VmControl) -> String {
    vm.machine
        .vcpus()
        .iter()
        .map(|vcpu| {
            // QEMU marks the monitor's current CPU, the first one, with '*'.
            let mark = if vcpu.id() == 0 { '*' } else { ' ' };
            format!("{mark} CPU #{}: thread_id={}\r\n", vcpu.id(), vcpu.thread_id().unwrap_or(0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_qemus() {
        assert_eq!(info_status(RunState::Running), "VM status: running\r\n");
        assert_eq!(info_status(RunState::Paused), "VM status: paused\r\n");
        assert_eq!(info_status(RunState::Prelaunch), "VM status: paused (prelaunch)\r\n");
    }
}
