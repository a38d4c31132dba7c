//! The QMP commands microvm answers, with QEMU's argument and reply shapes (QAPI schema).
//! Anything else gets CommandNotFound from the dispatcher, so clients fall back cleanly.

use super::vm_control::{version, VmControl};
use super::{balloon, block, hmp, migration, power};
use crate::device_info::{BlockInfo, ChardevInfo};
use crate::exit::VmExit;
use crate::state::RunState;
use arch::layout::MAX_VCPUS;
use qmp::{Dispatcher, QmpError};
use serde_json::{json, Value};

/// QMP's `target` for every CPU and for `query-target`.
const TARGET: &str = "x86_64";

/// Every command, in `query-commands` order. Those without arguments reject any
/// (QEMU's "Parameter 'x' is unexpected").
const COMMANDS: &[(&str, qmp::Handler<VmControl>)] = &[
    ("query-version", |_, args| args.finish().map(|()| json!(version()))),
    ("query-status", |vm, args| args.finish().map(|()| query_status(vm.machine.state()))),
    ("stop", |vm, args| args.finish().and_then(|()| vm.stop())),
    ("cont", |vm, args| args.finish().and_then(|()| vm.cont())),
    ("quit", |vm, args| args.finish().map(|()| vm.exit(VmExit::Quit))),
    ("system_reset", |vm, args| args.finish().map(|()| vm.exit(VmExit::SystemReset))),
    ("query-cpus-fast", |vm, args| args.finish().map(|()| query_cpus_fast(vm))),
    ("query-name", |vm, args| {
        args.finish().map(|()| vm.facts.name.as_ref().map_or(json!({}), |name| json!({ "name": name })))
    }),
    ("query-uuid", |vm, args| args.finish().map(|()| json!({ "UUID": vm.facts.uuid.as_deref().unwrap_or(NIL_UUID) }))),
    ("query-vm-generation-id", |vm, args| args.finish().and_then(|()| query_vm_generation_id(vm.facts.vmgenid))),
    ("query-kvm", |_, args| args.finish().map(|()| json!({ "enabled": true, "present": true }))),
    ("query-target", |_, args| args.finish().map(|()| json!({ "arch": TARGET }))),
    ("query-machines", |_, args| args.finish().map(|()| query_machines())),
    ("query-chardev", |vm, args| args.finish().map(|()| query_chardev(&vm.facts.chardevs))),
    ("query-block", |vm, args| args.finish().map(|()| query_block(&vm.facts.blocks))),
    ("block_set_io_throttle", block::set_io_throttle),
    ("human-monitor-command", hmp::human_monitor_command),
    ("balloon", balloon::set_target),
    ("query-balloon", balloon::query),
    ("qom-get", balloon::qom_get),
    ("system_powerdown", power::system_powerdown),
    ("send-key", power::send_key),
    ("input-send-event", power::input_send_event),
    ("migrate", migration::migrate),
    ("migrate-incoming", migration::migrate_incoming),
    ("query-migrate", migration::query),
    ("migrate-set-capabilities", migration::set_capabilities),
    ("query-migrate-capabilities", migration::query_capabilities),
];

/// `query-vm-generation-id`: QEMU's shape, and QEMU's error without the device.
fn query_vm_generation_id(guid: Option<crate::vmgenid::Guid>) -> Result<Value, QmpError> {
    match guid {
        Some(guid) => Ok(json!({ "guid": guid.to_string() })),
        None => Err(QmpError::generic("VM Generation ID device not found")),
    }
}

/// `query-uuid` when no `-uuid` was given (QEMU's answer too).
const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

pub fn dispatcher() -> Dispatcher<VmControl> {
    let mut dispatcher = Dispatcher::new();
    for &(name, handler) in COMMANDS {
        dispatcher.register(name, handler).expect("command names are unique and not built in");
    }
    dispatcher
}

pub fn query_status(state: RunState) -> Value {
    json!({ "status": state.name(), "running": state == RunState::Running })
}

fn query_cpus_fast(vm: &VmControl) -> Value {
    let cpus: Vec<Value> = vm
        .machine
        .vcpus()
        .iter()
        .map(|vcpu| {
            let index = vcpu.id();
            json!({
                "cpu-index": index,
                "qom-path": format!("/machine/unattached/device[{index}]"),
                "thread-id": vcpu.thread_id().unwrap_or(0),
                // One socket, one core per vCPU, as the MP table describes them.
                "props": { "core-id": index, "thread-id": 0, "socket-id": 0 },
                "target": TARGET,
            })
        })
        .collect();
    Value::Array(cpus)
}

fn query_machines() -> Value {
    json!([{
        "name": "microvm",
        "cpu-max": MAX_VCPUS,
        "hotpluggable-cpus": false,
        "numa-mem-supported": false,
        "deprecated": false,
        "default-ram-id": "microvm.ram",
        // The machine type supports ACPI (acpi=on), as QEMU's microvm reports.
        "acpi": true,
    }])
}

fn query_chardev(chardevs: &[ChardevInfo]) -> Value {
    let list: Vec<Value> =
        chardevs.iter().map(|c| json!({ "label": c.label, "filename": c.filename, "frontend-open": true })).collect();
    Value::Array(list)
}

fn query_block(blocks: &[BlockInfo]) -> Value {
    let list: Vec<Value> = blocks
        .iter()
        .map(|b| {
            let file = b.path.display().to_string();
            json!({
                "device": b.id,
                "locked": false,
                "removable": false,
                "type": "unknown",
                "inserted": {
                    "file": file,
                    "ro": b.read_only,
                    "drv": "raw",
                    "encrypted": false,
                    "backing_file_depth": 0,
                    "detect_zeroes": "off",
                    "cache": b.cache_info(),
                    "image": { "filename": file, "format": "raw", "virtual-size": b.size },
                },
            })
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmgenid::Guid;

    #[test]
    fn query_vm_generation_id_answers_as_qemu() {
        let guid = Guid::parse("324E6EAF-D1D1-4BF6-BF41-B9BB6C91FB87").unwrap();
        assert_eq!(
            query_vm_generation_id(Some(guid)).unwrap(),
            json!({ "guid": "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87" })
        );
        let error = query_vm_generation_id(None).unwrap_err();
        assert_eq!(
            (error.class, error.desc.as_str()),
            (qmp::ErrorClass::GenericError, "VM Generation ID device not found")
        );
        assert!(COMMANDS.iter().any(|(name, _)| *name == "query-vm-generation-id"));
    }
}
