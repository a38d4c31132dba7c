//! What each Firecracker request does to a running VM, on the handlers the QMP commands
//! use: `PATCH /vm` is `stop`/`cont`, `SendCtrlAltDel` is `send-key ctrl-alt-delete` on the
//! i8042 the Firecracker front end always adds, the balloon requests are `balloon` and the
//! balloon's statistics. Pre-boot-only requests (their `Verb` row in fc-api's route.rs)
//! get Firecracker's post-boot refusal.

use super::{rate_limits, snapshot, ApiFacts};
use crate::monitor::VmControl;
use crate::state::RunState;
use devices::legacy::Key;
use devices::virtio::balloon::{BalloonState, PAGE_SIZE, STAT_NAMES};
use fc_api::model::{
    ActionType, BalloonStats, FirecrackerVersion, InstanceInfo, InstanceState, VmState, FIRECRACKER_VERSION,
};
use fc_api::{ApiRequest, Response, NOT_SUPPORTED_POST_BOOT};

/// 4 KiB pages per MiB: Firecracker sizes the balloon in MiB, virtio in pages.
const PAGES_PER_MIB: u64 = (1 << 20) / PAGE_SIZE;

/// Firecracker's balloon statistics names, in the order of `STAT_NAMES` (QEMU's).
const FC_STAT_NAMES: [&str; STAT_NAMES.len()] = [
    "swap_in",
    "swap_out",
    "major_faults",
    "minor_faults",
    "free_memory",
    "total_memory",
    "available_memory",
    "disk_caches",
    "hugetlb_allocations",
    "hugetlb_failures",
];

pub fn handle(request: ApiRequest, vm: &mut VmControl, facts: &mut ApiFacts) -> Response {
    use ApiRequest as R;
    if let Some(refusal) = request.verb().refusal(true) {
        return Response::bad_request(refusal);
    }
    match request {
        R::GetInstanceInfo => Response::ok(&instance_info(&facts.id, Some(vm.machine.state()))),
        R::GetVersion => Response::ok(&version()),
        R::GetVmConfig => Response::ok(&facts.vm_config),
        R::GetMachineConfig => Response::ok(&facts.machine_config),
        R::PatchVm(VmState::Paused) => {
            let started = std::time::Instant::now();
            let result = vm.machine.pause();
            metrics::record_latency(&metrics::LATENCIES.vmm_pause_vm, started);
            control(result)
        }
        R::PatchVm(VmState::Resumed) => {
            let started = std::time::Instant::now();
            let result = vm.machine.resume();
            metrics::record_latency(&metrics::LATENCIES.vmm_resume_vm, started);
            control(result)
        }
        R::Action(ActionType::SendCtrlAltDel) => {
            send_ctrl_alt_del(vm);
            Response::no_content()
        }
        R::Action(ActionType::FlushMetrics) => match facts.metrics.as_mut().map(super::MetricsSink::flush) {
            Some(Ok(())) => Response::no_content(),
            Some(Err(e)) => Response::bad_request(format!("Metrics error: cannot write the metrics: {e}")),
            None => Response::bad_request("Metrics error: no metrics destination; PUT /metrics first."),
        },
        R::GetBalloon => match (&facts.balloon, balloon_state(vm)) {
            (Some(config), Some(_)) => Response::ok(config),
            _ => Response::bad_request(NO_BALLOON),
        },
        R::PatchBalloon(update) => set_balloon(vm, facts, update.amount_mib),
        R::GetBalloonStats => balloon_stats(vm, facts),
        R::PatchBalloonStats(update) => match &mut facts.balloon {
            Some(config) if config.stats_polling_interval_s == 0 || update.stats_polling_interval_s == 0 => {
                Response::bad_request("Balloon update error: Cannot enable or disable the statistics after boot.")
            }
            Some(config) => {
                config.stats_polling_interval_s = update.stats_polling_interval_s;
                Response::no_content()
            }
            None => Response::bad_request(NO_BALLOON),
        },
        R::GetMmds => Response::ok(&facts.mmds.get()),
        R::PutMmds(value) => mmds(facts.mmds.put(value)),
        R::PatchMmds(value) => mmds(facts.mmds.patch(value)),
        R::PatchDrive(patch) => rate_limits::patch_drive(vm, facts, patch),
        R::PatchNetworkInterface(patch) => rate_limits::patch_net(vm, facts, patch),
        R::CreateSnapshot(params) => snapshot::create(vm, &facts.vm_config, &params),
        // Taken only before boot: refused above by its `Verb` row.
        _ => Response::bad_request(NOT_SUPPORTED_POST_BOOT),
    }
}

const NO_BALLOON: &str = "Balloon config error: No balloon device found.";

/// `GET /`: the state as Firecracker names it (`None`: before boot).
pub fn instance_info(id: &str, state: Option<RunState>) -> InstanceInfo {
    let state = match state {
        None => InstanceState::NotStarted,
        Some(RunState::Running) => InstanceState::Running,
        Some(_) => InstanceState::Paused,
    };
    InstanceInfo {
        id: id.to_owned(),
        state,
        vmm_version: FIRECRACKER_VERSION.to_owned(),
        app_name: "Firecracker".to_owned(),
    }
}

pub fn version() -> FirecrackerVersion {
    FirecrackerVersion { firecracker_version: FIRECRACKER_VERSION.to_owned() }
}

fn control(result: Result<(), crate::control::ControlError>) -> Response {
    match result {
        Ok(()) => Response::no_content(),
        Err(e) => Response::bad_request(format!("Internal VMM error: {e}")),
    }
}

fn mmds(result: Result<(), fc_api::mmds::MmdsError>) -> Response {
    match result {
        Ok(()) => Response::no_content(),
        Err(e @ fc_api::mmds::MmdsError::TooLarge) => Response::fault(413, e),
        Err(e) => Response::bad_request(e),
    }
}

/// Ctrl-Alt-Delete pressed and released, as QMP's `send-key` does it.
fn send_ctrl_alt_del(vm: &VmControl) {
    let keys: Vec<Key> = ["ctrl", "alt", "delete"].iter().filter_map(|q| Key::by_qcode(q)).collect();
    for key in &keys {
        vm.power.key_event(*key, true);
    }
    for key in keys.iter().rev() {
        vm.power.key_event(*key, false);
    }
}

fn balloon_state(vm: &VmControl) -> Option<BalloonState> {
    let balloon = vm.devices.balloon()?.lock().unwrap_or_else(|p| p.into_inner()).state();
    let state = balloon.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Some(state)
}

/// The balloon's size at boot (`PUT /balloon`'s `amount_mib`), set before the driver reads it.
pub fn apply_boot_balloon(vm: &mut VmControl, facts: &ApiFacts) {
    if let Some(config) = facts.balloon.as_ref().filter(|c| c.amount_mib > 0) {
        set_target_pages(vm, u64::from(config.amount_mib) * PAGES_PER_MIB);
    }
}

fn set_target_pages(vm: &VmControl, pages: u64) {
    if let Some(balloon) = vm.devices.balloon() {
        let pages = u32::try_from(pages).unwrap_or(u32::MAX);
        balloon.lock().unwrap_or_else(|p| p.into_inner()).set_target(pages);
    }
}

/// `PATCH /balloon`: Firecracker's size is what the balloon holds (QEMU's is what the guest keeps).
fn set_balloon(vm: &mut VmControl, facts: &mut ApiFacts, amount_mib: u32) -> Response {
    let Some(config) = facts.balloon.as_mut().filter(|_| vm.devices.balloon().is_some()) else {
        return Response::bad_request(NO_BALLOON);
    };
    if u64::from(amount_mib) << 20 > vm.facts.mem_size {
        return Response::bad_request(
            "Balloon update error: Amount of pages requested cannot be greater than the amount of guest memory.",
        );
    }
    config.amount_mib = amount_mib;
    // GET /vm/config shows the balloon as it is now, as Firecracker's does.
    if let Some(balloon) = facts.vm_config.get_mut("balloon").and_then(|b| b.as_object_mut()) {
        balloon.insert("amount_mib".into(), amount_mib.into());
    }
    set_target_pages(vm, u64::from(amount_mib) * PAGES_PER_MIB);
    Response::no_content()
}

/// `GET /balloon/statistics`: the sizes, and the guest's latest statistics (asking for
/// fresh ones, which the next call shows: microvm polls on request, not on a timer).
fn balloon_stats(vm: &VmControl, facts: &ApiFacts) -> Response {
    let (Some(config), Some(state)) = (&facts.balloon, balloon_state(vm)) else {
        return Response::bad_request(NO_BALLOON);
    };
    if config.stats_polling_interval_s == 0 {
        return Response::bad_request("Balloon config error: Statistics for the balloon device are not enabled.");
    }
    if let Some(balloon) = vm.devices.balloon() {
        balloon.lock().unwrap_or_else(|p| p.into_inner()).request_stats();
    }
    let mut stats = BalloonStats {
        target_pages: state.target_pages,
        actual_pages: state.actual_pages,
        target_mib: (u64::from(state.target_pages) / PAGES_PER_MIB) as u32,
        actual_mib: (u64::from(state.actual_pages) / PAGES_PER_MIB) as u32,
        stats: Default::default(),
    };
    for (name, value) in FC_STAT_NAMES.iter().zip(state.stats) {
        if let Some(value) = value {
            stats.stats.insert((*name).to_owned(), value);
        }
    }
    Response::ok(&stats)
}

#[cfg(test)]
#[path = "handlers_tests.rs"]
mod tests;
