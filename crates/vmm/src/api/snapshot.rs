//! `PUT /snapshot/create` and `PUT /snapshot/load`.
//!
//! SNAPSHOTS: THE ONE PLACE TO WIRE THEM.
//! Until the vmm's snapshot/restore lands, both answer 400 with [`UNAVAILABLE`]; the
//! Firecracker front end's pre-boot loop calls [`load`] too, so wiring these two functions
//! to the vmm's snapshot code is all the API needs. Firecracker's own rules stay here:
//! create needs a paused VM, load is pre-boot only (the router has already checked the
//! body: exactly one of `mem_backend` and `mem_file_path`).

use crate::monitor::VmControl;
use crate::state::RunState;
use fc_api::model::{SnapshotCreateParams, SnapshotLoadParams};
use fc_api::Response;

pub const UNAVAILABLE: &str = "snapshots are not available yet in this build";

/// `PUT /snapshot/create` on a running VM.
pub fn create(vm: &mut VmControl, _params: &SnapshotCreateParams) -> Response {
    if vm.machine.state() != RunState::Paused {
        // Firecracker's condition, checked first so clients see the same order of errors.
        return Response::bad_request(
            "Create snapshot error: Cannot create a snapshot of a microVM that is not paused.",
        );
    }
    Response::bad_request(UNAVAILABLE)
}

/// `PUT /snapshot/load` before boot. On success the front end would run the restored VM.
pub fn load(_params: &SnapshotLoadParams) -> Response {
    Response::bad_request(UNAVAILABLE)
}
