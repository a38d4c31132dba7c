//! QMP `block_set_io_throttle`: a drive's I/O limits changed at run time, with QEMU's
//! arguments (`BlockIOThrottle`) mapped as `-drive throttling.*` maps them
//! (`devices::virtio::block::qemu_throttle`). The drive is named by its `-drive id=`, as
//! `device` or `id`. The limits apply at once, with full buckets; `group` is accepted and
//! has no effect (microvm's limits are per drive: docs/dropin.md).

use super::vm_control::VmControl;
use devices::virtio::block::qemu_throttle::{modern_name, QemuThrottle, ThrottleError, VALUE_MAX};
use devices::virtio::block::Block;
use qmp::{Arguments, ErrorClass, QmpError};
use serde_json::{json, Value};

/// QEMU's required members, then its optional ones (bursts, their lengths, iops_size).
const REQUIRED: [&str; 6] = ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"];
const OPTIONAL: [&str; 13] = [
    "bps_max",
    "bps_rd_max",
    "bps_wr_max",
    "iops_max",
    "iops_rd_max",
    "iops_wr_max",
    "bps_max_length",
    "bps_rd_max_length",
    "bps_wr_max_length",
    "iops_max_length",
    "iops_rd_max_length",
    "iops_wr_max_length",
    "iops_size",
];

fn set(settings: &mut QemuThrottle, name: &str, value: i64) -> Result<(), QmpError> {
    let bad = || QmpError::generic(format!("bps/iops/max values must be within [0, {VALUE_MAX}]"));
    let value = u64::try_from(value).map_err(|_| bad())?;
    let modern = modern_name(name).unwrap_or_default();
    match settings.set(&modern, value) {
        Ok(_) => Ok(()),
        Err(ThrottleError::TooLarge(_)) => Err(bad()),
        Err(e) => Err(QmpError::generic(e.to_string())),
    }
}

pub fn set_io_throttle(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let device: Option<String> = args.optional("device")?;
    let id: Option<String> = args.optional("id")?;
    let mut settings = QemuThrottle::default();
    for name in REQUIRED {
        let value: i64 = args.required(name)?;
        set(&mut settings, name, value)?;
    }
    for name in OPTIONAL {
        if let Some(value) = args.optional::<i64>(name)? {
            set(&mut settings, name, value)?;
        }
    }
    let _group: Option<String> = args.optional("group")?;
    args.finish()?;
    let name = match (device, id) {
        (Some(name), None) | (None, Some(name)) => name,
        _ => return Err(QmpError::generic("Need exactly one of 'device' and 'id'")),
    };
    let limits = settings.limits().map_err(|e| QmpError::generic(e.to_string()))?;
    let Some(block) = vm.devices.get_as::<Block>(&name) else {
        return Err(QmpError::new(ErrorClass::DeviceNotFound, format!("Device '{name}' not found")));
    };
    block.lock().unwrap_or_else(|p| p.into_inner()).set_limits(&limits);
    Ok(json!({}))
}
