//! `human-monitor-command`: the few human-monitor commands tools send through QMP, run
//! on the same handlers as their QMP twins and printed as QEMU prints them (lines end
//! in `\r\n`, as QEMU's monitor output does).

use super::commands::{self, VmControl};
use crate::state::RunState;
use qmp::{Arguments, QmpError};
use serde_json::Value;

pub fn human_monitor_command(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let line: String = args.required("command-line")?;
    // Which CPU `info registers` and friends would look at; none of ours needs one.
    let _cpu_index: Option<i64> = args.optional("cpu-index")?;
    args.finish()?;
    let mut words = line.split_whitespace();
    let output = match (words.next(), words.next()) {
        (None, _) => String::new(),
        (Some("info"), Some("status")) => info_status(vm.machine.state()),
        (Some("info"), Some("cpus")) => info_cpus(vm),
        (Some("info"), Some("version")) => {
            let v = commands::version();
            format!("{}.{}.{}{}\r\n", v.qemu.major, v.qemu.minor, v.qemu.micro, v.package)
        }
        (Some("info"), Some("mtree")) => vm.facts.mtree.replace('\n', "\r\n"),
        (Some("info"), Some("qtree")) => info_qtree(vm),
        (Some("info"), Some(other)) => format!("info: unknown or unsupported item '{other}'\r\n"),
        (Some("info"), None) => "info: give an item: status, cpus, version, mtree, qtree\r\n".to_owned(),
        (Some(name @ ("stop" | "cont" | "quit" | "c" | "q")), None) => {
            let command = match name {
                "c" => "cont",
                "q" => "quit",
                other => other,
            };
            match commands::run(vm, command) {
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
    };
    Ok(Value::String(output))
}

fn info_status(state: RunState) -> String {
    let status = match state {
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Prelaunch => "paused (prelaunch)",
        RunState::Shutdown | RunState::GuestShutdown => "paused (shutdown)",
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
