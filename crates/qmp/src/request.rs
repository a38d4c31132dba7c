//! Request envelope validation, worded as QEMU's `qmp_dispatch_check_obj`.

use serde_json::Value;

use crate::arguments::Arguments;
use crate::wire::QmpError;

/// A well-formed request: `{"execute": NAME, "arguments": {...}, "id": ANY}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub command: String,
    pub arguments: Arguments,
    /// Echoed verbatim in the reply; any JSON value.
    pub id: Option<Value>,
}

/// A request refused before any command ran, with the `id` its reply must echo: present when
/// the input was an object carrying one, as in QEMU.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub error: QmpError,
    pub id: Option<Value>,
}

/// Checks the envelope of a decoded value.
///
/// `exec-oob` is refused as "QMP input member 'exec-oob' is unexpected", which is what QEMU
/// answers when out-of-band execution was not enabled (microvm never offers it). Members are
/// checked in name order; QEMU checks in its hash order, so with several faults the one reported
/// may differ.
pub fn parse_request(value: Value) -> Result<Request, Rejected> {
    let Value::Object(mut members) = value else {
        return Err(Rejected { error: QmpError::generic("QMP input must be a JSON object"), id: None });
    };
    let id = members.remove("id");
    let reject = |desc: String| Err(Rejected { error: QmpError::generic(desc), id: id.clone() });
    let mut command = None;
    let mut arguments = None;
    for (name, member) in members {
        match (name.as_str(), member) {
            ("execute", Value::String(name)) => command = Some(name),
            ("execute", _) => return reject("QMP input member 'execute' must be a string".into()),
            ("arguments", Value::Object(map)) => arguments = Some(map),
            ("arguments", _) => return reject("QMP input member 'arguments' must be an object".into()),
            (other, _) => return reject(format!("QMP input member '{other}' is unexpected")),
        }
    }
    match command {
        Some(command) => Ok(Request { command, arguments: Arguments::new(arguments.unwrap_or_default()), id }),
        None => reject("QMP input lacks member 'execute'".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rejected(value: Value) -> (String, Option<Value>) {
        let rejected = parse_request(value).unwrap_err();
        assert_eq!(rejected.error.class, crate::ErrorClass::GenericError);
        (rejected.error.desc, rejected.id)
    }

    #[test]
    fn valid_request_keeps_command_arguments_and_id() {
        let request = parse_request(json!({"execute": "stop", "arguments": {"a": 1}, "id": {"x": [1]}})).unwrap();
        assert_eq!(request.command, "stop");
        assert_eq!(request.arguments.into_map(), json!({"a": 1}).as_object().unwrap().clone());
        assert_eq!(request.id, Some(json!({"x": [1]})));
        let request = parse_request(json!({"execute": "cont"})).unwrap();
        assert!(request.arguments.is_empty());
        assert_eq!(request.id, None);
    }

    #[test]
    fn envelope_errors_use_qemu_messages_and_keep_the_id() {
        assert_eq!(rejected(json!([1])), ("QMP input must be a JSON object".into(), None));
        assert_eq!(rejected(json!("x")), ("QMP input must be a JSON object".into(), None));
        assert_eq!(rejected(json!({"id": 3})), ("QMP input lacks member 'execute'".into(), Some(json!(3))));
        assert_eq!(
            rejected(json!({"execute": 1, "id": "a"})),
            ("QMP input member 'execute' must be a string".into(), Some(json!("a")))
        );
        assert_eq!(
            rejected(json!({"execute": "x", "arguments": []})),
            ("QMP input member 'arguments' must be an object".into(), None)
        );
        assert_eq!(rejected(json!({"execute": "x", "x": 1})), ("QMP input member 'x' is unexpected".into(), None));
    }

    #[test]
    fn exec_oob_is_refused_as_qemu_does_without_oob() {
        assert_eq!(
            rejected(json!({"exec-oob": "migrate-pause", "id": 42})),
            ("QMP input member 'exec-oob' is unexpected".into(), Some(json!(42)))
        );
    }
}
