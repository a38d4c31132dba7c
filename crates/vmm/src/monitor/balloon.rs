//! QMP `balloon` and `query-balloon`, and `qom-get`'s `guest-stats` of the balloon, in
//! QEMU's shapes. Sizes are bytes of guest memory the guest may use: `balloon` sets the
//! target (guest RAM minus what the balloon should hold), `query-balloon` reports what
//! the guest says it has left.

use super::vm_control::VmControl;
use devices::virtio::balloon::{BalloonState, PAGE_SIZE, STAT_NAMES};
use qmp::{Arguments, ErrorClass, QmpError};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};

fn no_balloon() -> QmpError {
    QmpError::new(ErrorClass::DeviceNotActive, "No balloon device has been activated")
}

fn balloon(vm: &VmControl) -> Result<Arc<Mutex<devices::virtio::balloon::Balloon>>, QmpError> {
    vm.devices.balloon().ok_or_else(no_balloon)
}

fn state(vm: &VmControl) -> Result<BalloonState, QmpError> {
    let balloon = balloon(vm)?.lock().unwrap_or_else(|p| p.into_inner()).state();
    let state = balloon.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(state)
}

/// `balloon value=BYTES`: the guest should be left with `value` bytes of its RAM.
pub fn set_target(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let value: i64 = args.required("value")?;
    args.finish()?;
    let balloon = balloon(vm)?;
    if value <= 0 {
        return Err(QmpError::generic("Parameter 'value' expects a size"));
    }
    // More than the guest has means an empty balloon, as in QEMU.
    let keep = (value as u64).min(vm.facts.mem_size);
    let pages = ((vm.facts.mem_size - keep) / PAGE_SIZE) as u32;
    balloon.lock().unwrap_or_else(|p| p.into_inner()).set_target(pages);
    Ok(json!({}))
}

/// `query-balloon`: `actual`, the bytes the guest has left (RAM minus what it holds in
/// the balloon), as the guest last reported it.
pub fn query(vm: &mut VmControl, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    let held = u64::from(state(vm)?.actual_pages) * PAGE_SIZE;
    Ok(json!({ "actual": vm.facts.mem_size.saturating_sub(held) }))
}

/// `qom-get path=... property=guest-stats` on the balloon: its latest statistics, in
/// QEMU's shape; asking also requests fresh ones from the guest (they show on the next
/// call). Any other path or property: DeviceNotFound / GenericError, as QEMU answers.
pub fn qom_get(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let path: String = args.required("path")?;
    let property: String = args.required("property")?;
    args.finish()?;
    let is_balloon = vm.devices.iter().any(|d| {
        d.handle.get::<devices::virtio::balloon::Balloon>().is_some()
            && d.id.as_deref().is_some_and(|id| path == id || path == format!("/machine/peripheral/{id}"))
    });
    if !is_balloon {
        return Err(QmpError::new(ErrorClass::DeviceNotFound, format!("Device '{path}' not found")));
    }
    if property != "guest-stats" {
        return Err(QmpError::generic(format!("Property 'virtio-balloon-device.{property}' not found")));
    }
    let state = state(vm)?;
    balloon(vm)?.lock().unwrap_or_else(|p| p.into_inner()).request_stats();
    let mut stats = Map::new();
    for (name, value) in STAT_NAMES.iter().zip(state.stats) {
        // QEMU reports a statistic the guest never sent as (u64)-1.
        stats.insert((*name).to_owned(), json!(value.unwrap_or(u64::MAX)));
    }
    Ok(json!({ "stats": stats, "last-update": state.stats_updated_at }))
}
