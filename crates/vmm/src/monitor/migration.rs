//! QEMU's migration commands, for the one migration microvm does: to a file
//! (`migrate file:PATH[,offset=N]`, QEMU 8.2's URI), which is a snapshot. The VM is saved
//! at once, paused, and left in `postmigrate` until `cont`, as QEMU's source is after a
//! migration; `query-migrate` and the `MIGRATION` event (with the `events` capability)
//! report it in QEMU's shapes.

use super::vm_control::{Outcome, VmControl};
use crate::control::VmEventKind;
use crate::snapshot::{parse_file_uri, ClockPolicy, MemoryTarget, SnapshotSource, SnapshotTarget};
use qmp::{Arguments, QmpError};
use serde_json::{json, Map, Value};

/// The capabilities microvm knows; `migrate-set-capabilities` refuses the others by name.
/// `x-diff-snapshot` is microvm's own (QEMU's migration has no diff): with
/// `-M microvm,track-dirty-pages=on`, `migrate` writes only the pages written since the
/// last snapshot (docs/snapshot.md, "Diff snapshots").
const CAPABILITIES: [&str; 3] = ["events", "x-ignore-shared", "x-diff-snapshot"];

/// `migrate uri=file:PATH[,offset=N]`.
pub fn migrate(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let uri: Option<String> = args.optional("uri")?;
    if args.optional::<Value>("channels")?.is_some() {
        return Err(QmpError::generic("microvm takes the migration target as 'uri' (file:PATH), not 'channels'"));
    }
    // Accepted for compatibility; a file migration is neither detached nor resumable.
    let _: Option<bool> = args.optional("detach")?;
    let resume: Option<bool> = args.optional("resume")?;
    args.finish()?;
    if resume == Some(true) {
        return Err(QmpError::generic("a migration to a file cannot be resumed: start it again"));
    }
    let uri = uri.ok_or_else(|| QmpError::generic("Parameter 'uri' is missing"))?;
    let (path, offset) = parse_file_uri(&uri).map_err(|e| QmpError::generic(e.to_string()))?;
    let memory = if vm.migration.ignore_shared && vm.machine.memory_is_shared() {
        MemoryTarget::Shared
    } else {
        MemoryTarget::Inline
    };
    let target = SnapshotTarget { path, offset, memory, front_end_config: None, diff: vm.migration.diff };
    announce(vm, "setup");
    announce(vm, "active");
    match vm.machine.save(&target) {
        Ok(report) => {
            vm.migration.last = Some(Outcome::Completed(report));
            announce(vm, "completed");
            Ok(json!({}))
        }
        Err(e) => {
            let message = e.to_string();
            log::error!("migrate: {message}");
            vm.migration.last = Some(Outcome::Failed(message.clone()));
            announce(vm, "failed");
            Err(QmpError::generic(message))
        }
    }
}

fn announce(vm: &mut VmControl, status: &'static str) {
    if vm.migration.events {
        vm.machine.announce(VmEventKind::Migration { status });
    }
}

/// `migrate-incoming uri=file:PATH[,offset=N]`: with `-incoming defer`, loads the snapshot
/// into this waiting VM (checked as a restore at start is), then runs it unless `-S`
/// (a `cont` meanwhile runs it too, as QEMU's autostart).
pub fn migrate_incoming(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let uri: Option<String> = args.optional("uri")?;
    if args.optional::<Value>("channels")?.is_some() {
        return Err(QmpError::generic("microvm takes the migration source as 'uri' (file:PATH), not 'channels'"));
    }
    // QEMU 9.1's: whether a failed incoming migration ends QEMU. microvm never ends on
    // it: the VM stays in inmigrate and the command reports the error.
    let _: Option<bool> = args.optional("exit-on-error")?;
    args.finish()?;
    let uri = uri.ok_or_else(|| QmpError::generic("Parameter 'uri' is missing"))?;
    let (path, offset) = parse_file_uri(&uri).map_err(|e| QmpError::generic(e.to_string()))?;
    if vm.machine.state() != crate::state::RunState::Inmigrate {
        return Err(QmpError::generic(crate::control::ControlError::NotIncoming.to_string()));
    }
    let (Some(shape), file_backend) = (vm.machine.shape().cloned(), vm.machine.file_backend()) else {
        return Err(QmpError::generic(crate::control::ControlError::NoSnapshotter.to_string()));
    };
    announce(vm, "setup");
    let source = SnapshotSource { path, offset, memory: None, clock: ClockPolicy::Continue };
    let loaded = crate::snapshot::load(&source, &shape, file_backend).map_err(crate::control::ControlError::from);
    announce(vm, "active");
    match loaded.and_then(|loaded| vm.machine.restore_incoming(loaded)) {
        Ok(()) => {
            announce(vm, "completed");
            Ok(json!({}))
        }
        Err(e) => {
            let message = e.to_string();
            log::error!("migrate-incoming: {message}");
            announce(vm, "failed");
            Err(QmpError::generic(message))
        }
    }
}

/// `query-migrate`: `{}` before any migration, then the last one's outcome.
pub fn query(vm: &mut VmControl, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    Ok(match &vm.migration.last {
        None => json!({}),
        Some(Outcome::Failed(message)) => json!({ "status": "failed", "error-desc": message }),
        Some(Outcome::Completed(report)) => {
            let ms = report.took.as_millis() as u64;
            let page = 4096;
            let transferred = report.state_bytes + report.memory.data;
            let mbps = if ms == 0 { 0.0 } else { (transferred * 8) as f64 / 1000.0 / ms as f64 };
            json!({
                "status": "completed",
                "total-time": ms,
                "downtime": ms,
                "setup-time": 0,
                "ram": {
                    "transferred": transferred,
                    "remaining": 0,
                    "total": vm.facts.mem_size,
                    "duplicate": report.memory.zero / page,
                    "normal": report.memory.data / page,
                    "normal-bytes": report.memory.data,
                    "page-size": page,
                    "mbps": mbps,
                    "dirty-sync-count": 1,
                    "postcopy-requests": 0,
                    "multifd-bytes": 0,
                    "pages-per-second": 0,
                    "precopy-bytes": report.memory.data,
                    "downtime-bytes": 0,
                    "postcopy-bytes": 0,
                    "dirty-sync-missed-zero-copy": 0,
                },
            })
        }
    })
}

/// `migrate-set-capabilities capabilities=[{capability, state}]`.
pub fn set_capabilities(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let list: Vec<Map<String, Value>> = args.required("capabilities")?;
    args.finish()?;
    let mut changes = Vec::with_capacity(list.len());
    for (i, entry) in list.into_iter().enumerate() {
        let mut entry = Arguments::new(entry);
        let name: String = entry.required("capability")?;
        let state: bool = entry.required("state")?;
        entry.finish()?;
        if !CAPABILITIES.contains(&name.as_str()) {
            // Asking for a capability off is harmless: it is off.
            if !state {
                continue;
            }
            return Err(QmpError::generic(format!(
                "capabilities[{i}]: microvm has no migration capability '{name}' (it knows {})",
                CAPABILITIES.join(", ")
            )));
        }
        changes.push((name, state));
    }
    for (name, state) in changes {
        match name.as_str() {
            "events" => vm.migration.events = state,
            "x-diff-snapshot" => vm.migration.diff = state,
            _ => vm.migration.ignore_shared = state,
        }
    }
    Ok(json!({}))
}

/// `query-migrate-capabilities`.
pub fn query_capabilities(vm: &mut VmControl, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    Ok(json!([
        { "capability": "events", "state": vm.migration.events },
        { "capability": "x-ignore-shared", "state": vm.migration.ignore_shared },
        { "capability": "x-diff-snapshot", "state": vm.migration.diff },
    ]))
}

/// HMP `info migrate`, in QEMU's words.
pub fn info(vm: &VmControl) -> String {
    match &vm.migration.last {
        None => String::new(),
        Some(Outcome::Failed(message)) => format!("Migration status: failed ({message})\r\n"),
        Some(Outcome::Completed(report)) => format!(
            "Migration status: completed\r\ntotal time: {} ms\r\ntransferred ram: {} kbytes\r\ntotal ram: {} kbytes\r\nduplicate: {} pages\r\nnormal: {} pages\r\n",
            report.took.as_millis(),
            (report.state_bytes + report.memory.data) / 1024,
            vm.facts.mem_size / 1024,
            report.memory.zero / 4096,
            report.memory.data / 4096,
        ),
    }
}
