//! `PUT /snapshot/load`: a new, not yet configured Firecracker-mode microvm becomes the
//! VM a snapshot was taken of. The snapshot carries its Firecracker configuration
//! (`GET /vm/config` at `/snapshot/create`); the load's overrides change the host
//! resources in it (tap names, drive paths, the vsock socket), never the machine's shape,
//! and the same `VmConfig` the configuration gives at `InstanceStart` is built, restored
//! from the snapshot instead of booted (`-incoming` underneath).

use super::preboot::{Preboot, Refusal};
use fc_api::model::SnapshotLoadParams;
use serde_json::Value;
use std::path::{Path, PathBuf};
use vmm::config::VmConfig;
use vmm::snapshot::{ClockPolicy, SnapshotSource};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Snapshot(#[from] vmm::snapshot::SnapshotError),
    #[error("{} was taken through QEMU's interface (QMP migrate): restore it with microvm -incoming file:PATH and the same command line", .0.display())]
    NoConfig(PathBuf),
    #[error("the configuration inside the snapshot is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error(transparent)]
    ConfigFile(#[from] fc_api::config_file::ConfigFileError),
    #[error("{what} override names '{id}', which the snapshot does not have (it has: {have})")]
    UnknownOverride { what: &'static str, id: String, have: String },
    #[error("vsock_override: the snapshot has no vsock device")]
    NoVsock,
    #[error("the snapshot's configuration is refused: {0}")]
    Refused(#[source] Refusal),
    #[error(transparent)]
    Config(#[from] super::vm_config::ConfigError),
}

/// Replaces `field` of the entry of `list` whose `id_field` is `id`.
fn override_entry(
    config: &mut Value,
    list: &'static str,
    id_field: &str,
    id: &str,
    field: &str,
    value: &str,
) -> Result<(), RestoreError> {
    let entries = config.get_mut(list).and_then(Value::as_array_mut);
    let mut have = Vec::new();
    for entry in entries.into_iter().flatten() {
        let this = entry.get(id_field).and_then(Value::as_str).unwrap_or_default().to_owned();
        if this == id {
            entry[field] = Value::String(value.to_owned());
            return Ok(());
        }
        have.push(this);
    }
    let have = if have.is_empty() { "none".to_owned() } else { have.join(", ") };
    Err(RestoreError::UnknownOverride { what: list, id: id.to_owned(), have })
}

/// The snapshot's configuration with the load's overrides applied, as config-file JSON.
pub fn overridden_config(stored: &str, params: &SnapshotLoadParams) -> Result<Value, RestoreError> {
    let mut config: Value = serde_json::from_str(stored).map_err(RestoreError::Json)?;
    // The logger and metrics are the new process's own (Firecracker does not save them).
    if let Value::Object(map) = &mut config {
        map.remove("logger");
        map.remove("metrics");
    }
    for net in &params.network_overrides {
        override_entry(
            &mut config,
            "network-interfaces",
            "iface_id",
            &net.iface_id,
            "host_dev_name",
            &net.host_dev_name,
        )?;
    }
    for drive in &params.drive_overrides {
        override_entry(&mut config, "drives", "drive_id", &drive.drive_id, "path_on_host", &drive.path_on_host)?;
    }
    if let Some(vsock) = &params.vsock_override {
        match config.get_mut("vsock") {
            Some(v) if v.is_object() => v["uds_path"] = Value::String(vsock.uds_path.clone()),
            _ => return Err(RestoreError::NoVsock),
        }
    }
    Ok(config)
}

/// The VM a load builds; `preboot` becomes the snapshot's configuration (what
/// `GET /vm/config` answers afterwards).
pub fn load_config(preboot: &mut Preboot, params: &SnapshotLoadParams) -> Result<VmConfig, RestoreError> {
    let path = Path::new(&params.snapshot_path);
    let (_, _, snapshot) = vmm::snapshot::read(path, 0)?;
    let stored = snapshot.front_end_config.ok_or_else(|| RestoreError::NoConfig(path.to_owned()))?;
    let config = overridden_config(&stored, params)?;
    let mut restored = preboot.fresh();
    for request in fc_api::config_file::parse(config.to_string().as_bytes())? {
        restored.apply(request, &|_| Ok(())).map_err(RestoreError::Refused)?;
    }
    // As Firecracker: tracking is what the load asks for, not what the saved VM had.
    restored.machine.track_dirty_pages = params.track_dirty_pages || params.enable_diff_snapshots;
    let mut vm = restored.vm_config()?;
    vm.incoming = Some(SnapshotSource {
        path: path.to_owned(),
        offset: 0,
        memory: vmm::api::snapshot::load_memory_path(params),
        clock: if params.clock_realtime { ClockPolicy::CatchUp } else { ClockPolicy::Continue },
    });
    vm.start_paused = !params.resume_vm;
    // `PUT /metrics` (or --metrics-path) and `PUT /logger` before the load stay.
    restored.keep_process_settings(preboot);
    *preboot = restored;
    Ok(vm)
}
