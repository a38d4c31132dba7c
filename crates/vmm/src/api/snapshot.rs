//! `PUT /snapshot/create` and the checks of `PUT /snapshot/load`, on the same snapshot
//! code as QMP's `migrate` and `-incoming` (docs/snapshot.md). Firecracker's rules stay
//! here: create needs a paused VM, load is pre-boot only (the router has already checked
//! the body: exactly one of `mem_backend` and `mem_file_path`). The load itself builds a
//! VM, so the Firecracker front end does it (`cli::firecracker::restore`), with dirty-page
//! tracking when the load asks for it (`track_dirty_pages`, or the older
//! `enable_diff_snapshots`).

use crate::monitor::VmControl;
use crate::snapshot::{MemoryTarget, SnapshotTarget};
use crate::state::RunState;
use fc_api::model::{MemBackendType, SnapshotCreateParams, SnapshotHugePages, SnapshotLoadParams, SnapshotType};
use fc_api::Response;
use std::path::PathBuf;

/// `PUT /snapshot/create` on a running VM: state to `snapshot_path`, memory to
/// `mem_file_path`, and the configuration (`GET /vm/config`) inside the state so that
/// `/snapshot/load` can build the same machine. The VM stays paused.
pub fn create(vm: &mut VmControl, vm_config: &serde_json::Value, params: &SnapshotCreateParams) -> Response {
    if !matches!(vm.machine.state(), RunState::Paused | RunState::Postmigrate) {
        // Firecracker's condition, checked first so clients see the same order of errors.
        return Response::bad_request(
            "Create snapshot error: Cannot create a snapshot of a microVM that is not paused.",
        );
    }
    let target = SnapshotTarget {
        path: PathBuf::from(&params.snapshot_path),
        offset: 0,
        memory: MemoryTarget::File(PathBuf::from(&params.mem_file_path)),
        front_end_config: Some(vm_config.to_string()),
        diff: params.snapshot_type == SnapshotType::Diff,
    };
    let started = std::time::Instant::now();
    let saved = vm.machine.save(&target);
    let latencies = &metrics::LATENCIES;
    let latency = if target.diff { &latencies.vmm_diff_create_snapshot } else { &latencies.vmm_full_create_snapshot };
    metrics::record_latency(latency, started);
    match saved {
        Ok(_) => Response::no_content(),
        Err(e) => Response::bad_request(format!("Create snapshot error: {e}")),
    }
}

/// What `/snapshot/load` asks that microvm refuses, checked before anything is read.
pub fn check_load(params: &SnapshotLoadParams) -> Result<(), Response> {
    let refuse = |what: &str| Err(Response::bad_request(format!("Load snapshot error: {what}")));
    if params.mem_backend.as_ref().is_some_and(|b| b.backend_type == MemBackendType::Uffd) {
        return refuse("the Uffd memory backend is not supported by microvm: use backend_type File (the file is mapped MAP_PRIVATE, so pages load as the guest touches them)");
    }
    if !matches!(params.huge_pages, SnapshotHugePages::Snapshot | SnapshotHugePages::None) {
        return refuse("huge pages are not supported by microvm's snapshots yet");
    }
    Ok(())
}

/// The memory file a load names (`mem_file_path`, or a File backend's path).
pub fn load_memory_path(params: &SnapshotLoadParams) -> Option<PathBuf> {
    params.mem_file_path.as_ref().or(params.mem_backend.as_ref().map(|b| &b.backend_path)).map(PathBuf::from)
}
