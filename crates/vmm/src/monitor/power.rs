//! The commands that reach the guest's power button and keyboard: `system_powerdown`,
//! `send-key`, `input-send-event`, with QEMU's argument shapes (QAPI `KeyValue`,
//! `InputEvent`), and their HMP forms (`system_powerdown`, `sendkey ctrl-alt-delete`).

use super::vm_control::VmControl;
use crate::control::VmEventKind;
use devices::legacy::Key;
use qmp::{Arguments, QmpError};
use serde_json::{json, Map, Value};

/// `system_powerdown`: POWERDOWN first, then the power button (acpi=on), else
/// Ctrl-Alt-Delete (-device i8042), else nothing, as QEMU when no device listens.
pub fn system_powerdown(vm: &mut VmControl, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    vm.machine.announce(VmEventKind::Powerdown);
    vm.power.powerdown();
    Ok(json!({}))
}

/// `send-key`: presses the keys in order, then releases them in reverse. `hold-time` is
/// accepted; the releases follow at once (the guest sees the keys held together, which is
/// what chords such as Ctrl-Alt-Delete need).
pub fn send_key(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let keys: Vec<Value> = args.required("keys")?;
    let _hold_time_ms: Option<i64> = args.optional("hold-time")?;
    args.finish()?;
    if keys.is_empty() {
        return Err(QmpError::generic("Parameter 'keys' is missing"));
    }
    let keys = keys
        .into_iter()
        .enumerate()
        .map(|(i, value)| key_value(&format!("keys[{i}]"), value))
        .collect::<Result<Vec<_>, _>>()?;
    for key in &keys {
        key_event(vm, *key, true);
    }
    for key in keys.iter().rev() {
        key_event(vm, *key, false);
    }
    Ok(json!({}))
}

/// `input-send-event`: key events go to the keyboard; pointer events (`btn`, `rel`,
/// `abs`) have no device to go to and are dropped, as QEMU drops input no device takes.
pub fn input_send_event(vm: &mut VmControl, mut args: Arguments) -> Result<Value, QmpError> {
    let _device: Option<String> = args.optional("device")?;
    let _head: Option<i64> = args.optional("head")?;
    let events: Vec<Value> = args.required("events")?;
    args.finish()?;
    let mut keys = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let name = format!("events[{i}]");
        let mut event = Arguments::new(object(&name, event)?);
        let kind: String = event.required("type")?;
        let data: Value = event.required("data")?;
        event.finish()?;
        match kind.as_str() {
            "key" => {
                let mut data = Arguments::new(object(&format!("{name}.data"), data)?);
                let down: bool = data.required("down")?;
                let key: Value = data.required("key")?;
                data.finish()?;
                keys.push((key_value(&format!("{name}.data.key"), key)?, down));
            }
            "btn" | "rel" | "abs" | "mtt" => {}
            other => return Err(QmpError::generic(format!("Parameter '{name}.type' does not accept value '{other}'"))),
        }
    }
    // All or nothing: a bad event leaves the keyboard untouched.
    for (key, down) in keys {
        key_event(vm, key, down);
    }
    Ok(json!({}))
}

/// A key goes to the virtio keyboard if there is one (QEMU routes keys to
/// the virtio-input keyboard over the PS/2 one), else to the i8042's, else
/// nowhere. It is written into the guest's event buffers here, on the main
/// thread, under the device's lock.
fn key_event(vm: &VmControl, key: Key, down: bool) {
    match vm.devices.keyboard() {
        Some(keyboard) => keyboard.lock().unwrap_or_else(|p| p.into_inner()).key_event(&key, down),
        None => vm.power.key_event(key, down),
    }
}

fn object(name: &str, value: Value) -> Result<Map<String, Value>, QmpError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(QmpError::generic(format!("Invalid parameter type for '{name}', expected: object"))),
    }
}

/// A QAPI `KeyValue`: `{"type": "qcode", "data": "ctrl"}` or `{"type": "number", "data": 29}`.
fn key_value(name: &str, value: Value) -> Result<Key, QmpError> {
    let mut args = Arguments::new(object(name, value)?);
    let kind: String = args.required("type")?;
    let key = match kind.as_str() {
        "qcode" => {
            let qcode: String = args.required("data")?;
            Key::by_qcode(&qcode)
                .ok_or_else(|| QmpError::generic(format!("Parameter '{name}.data' does not accept value '{qcode}'")))?
        }
        "number" => {
            let number: u32 = args.required("data")?;
            Key::by_number(number)
                .ok_or_else(|| QmpError::generic(format!("Key number {number:#x} is not on microvm's keyboard")))?
        }
        other => return Err(QmpError::generic(format!("Parameter '{name}.type' does not accept value '{other}'"))),
    };
    args.finish()?;
    Ok(key)
}

/// HMP `sendkey KEYS`: qcodes joined by '-' (`ctrl-alt-delete`), as QEMU's monitor takes them.
pub fn hmp_sendkey(vm: &mut VmControl, keys: &str) -> String {
    let values: Vec<Value> = keys.split('-').map(|k| json!({ "type": "qcode", "data": k })).collect();
    let mut map = Map::new();
    map.insert("keys".into(), Value::Array(values));
    match send_key(vm, Arguments::new(map)) {
        Ok(_) => String::new(),
        Err(e) => format!("Error: {}\r\n", e.desc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_by_qcode_and_number() {
        let ctrl = key_value("k", json!({ "type": "qcode", "data": "ctrl" })).unwrap();
        assert_eq!(ctrl.qcode, "ctrl");
        let delete = key_value("k", json!({ "type": "number", "data": 0xd3 })).unwrap();
        assert_eq!(delete.qcode, "delete");
        let e = key_value("keys[0]", json!({ "type": "qcode", "data": "bogus" })).unwrap_err();
        assert_eq!(e.desc, "Parameter 'keys[0].data' does not accept value 'bogus'");
        let e = key_value("keys[0]", json!({ "type": "qcode" })).unwrap_err();
        assert_eq!(e.desc, "Parameter 'data' is missing");
        let e = key_value("keys[0]", json!("ctrl")).unwrap_err();
        assert_eq!(e.desc, "Invalid parameter type for 'keys[0]', expected: object");
    }
}
