//! The messages a QMP server sends: greeting, replies, events, and the error classes replies carry.
//!
//! Member order follows what QEMU actually emits (its dictionaries iterate in hash order, which is
//! stable): `{"return": .., "id": ..}` but `{"id": .., "error": ..}`, and events start with
//! `timestamp`. Clients must not depend on it, but transcripts and grep-based scripts compare
//! better when it matches.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// `VersionTriple` of the QAPI schema: the QEMU version microvm answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionTriple {
    pub micro: u32,
    pub minor: u32,
    pub major: u32,
}

/// `VersionInfo` of the QAPI schema, as in the greeting and `query-version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub qemu: VersionTriple,
    /// Free text; QEMU puts its package or git description here.
    pub package: String,
}

/// The greeting sent when a client connects. No capability is offered: microvm has no
/// out-of-band execution, so `oob` (the only capability QMP defines) is not advertised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    pub version: VersionInfo,
}

impl Serialize for Greeting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            version: &'a VersionInfo,
            capabilities: [&'static str; 0],
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "QMP")]
            qmp: Body<'a>,
        }
        Envelope { qmp: Body { version: &self.version, capabilities: [] } }.serialize(serializer)
    }
}

/// `QapiErrorClass`: the `class` member of an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorClass {
    /// Everything that is not one of the classes below (QEMU uses it for nearly all errors).
    GenericError,
    /// The requested command does not exist (or is not available in this mode).
    CommandNotFound,
    /// The requested device does not exist.
    DeviceNotFound,
    /// The device exists but is not in a state to do the operation.
    DeviceNotActive,
    /// The KVM host lacks a capability the operation needs.
    #[serde(rename = "KVMMissingCap")]
    KvmMissingCap,
}

/// The `error` member of an error reply: what a command handler returns when it fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{class:?}: {desc}")]
pub struct QmpError {
    pub class: ErrorClass,
    /// Human-readable; clients are told not to parse it, but tools match QEMU's wording.
    pub desc: String,
}

impl QmpError {
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        QmpError { class, desc: desc.into() }
    }

    /// A `GenericError`, the class of almost every QEMU error.
    pub fn generic(desc: impl Into<String>) -> Self {
        QmpError::new(ErrorClass::GenericError, desc)
    }

    pub fn command_not_found(desc: impl Into<String>) -> Self {
        QmpError::new(ErrorClass::CommandNotFound, desc)
    }
}

/// A reply to one request: its result or its error, with the request's `id` echoed verbatim.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub outcome: Result<Value, QmpError>,
    /// Absent when the request had none, or when it could not be read at all (parse errors,
    /// input that is not an object): the QMP spec says the reply then has no `id`.
    pub id: Option<Value>,
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Success<'a> {
            #[serde(rename = "return")]
            value: &'a Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a Value>,
        }
        #[derive(Serialize)]
        struct Failure<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a Value>,
            error: &'a QmpError,
        }
        let id = self.id.as_ref();
        match &self.outcome {
            Ok(value) => Success { value, id }.serialize(serializer),
            Err(error) => Failure { id, error }.serialize(serializer),
        }
    }
}

/// When an event happened, wall clock relative to the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub seconds: i64,
    pub microseconds: i64,
}

impl Timestamp {
    /// The current wall-clock time, or `-1`/`-1` when the clock cannot be read (before the
    /// epoch), which is what the QMP spec prescribes.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since_epoch) => Timestamp {
                seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
                microseconds: i64::from(since_epoch.subsec_micros()),
            },
            Err(_) => Timestamp { seconds: -1, microseconds: -1 },
        }
    }
}

/// An asynchronous event such as `STOP` or `SHUTDOWN`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub timestamp: Timestamp,
    #[serde(rename = "event")]
    pub name: String,
    /// Omitted on the wire when `None`, as QEMU omits it for events without members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Event {
    /// An event stamped with the current wall-clock time.
    pub fn new(name: impl Into<String>, data: Option<Value>) -> Self {
        Event { timestamp: Timestamp::now(), name: name.into(), data }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json_text::write_message;

    fn text<T: Serialize>(message: &T) -> String {
        let mut out = Vec::new();
        write_message(message, false, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn greeting_matches_qemu_and_offers_no_oob() {
        let greeting = Greeting {
            version: VersionInfo {
                qemu: VersionTriple { micro: 0, minor: 2, major: 9 },
                package: "microvm 0.1.0".into(),
            },
        };
        assert_eq!(
            text(&greeting),
            "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 9}, \
             \"package\": \"microvm 0.1.0\"}, \"capabilities\": []}}\r\n"
        );
    }

    #[test]
    fn replies_echo_id_and_omit_it_when_absent() {
        let ok = Reply { outcome: Ok(json!({})), id: Some(json!({"a": [1]})) };
        assert_eq!(text(&ok), "{\"return\": {}, \"id\": {\"a\": [1]}}\r\n");
        let err = Reply { outcome: Err(QmpError::new(ErrorClass::KvmMissingCap, "no")), id: None };
        assert_eq!(text(&err), "{\"error\": {\"class\": \"KVMMissingCap\", \"desc\": \"no\"}}\r\n");
        let err = Reply { outcome: Err(QmpError::generic("x")), id: Some(json!("s")) };
        assert_eq!(text(&err), "{\"id\": \"s\", \"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}\r\n");
    }

    #[test]
    fn error_classes_use_qemu_names() {
        let names: Vec<Value> = [
            ErrorClass::GenericError,
            ErrorClass::CommandNotFound,
            ErrorClass::DeviceNotFound,
            ErrorClass::DeviceNotActive,
            ErrorClass::KvmMissingCap,
        ]
        .iter()
        .map(|class| serde_json::to_value(class).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                json!("GenericError"),
                json!("CommandNotFound"),
                json!("DeviceNotFound"),
                json!("DeviceNotActive"),
                json!("KVMMissingCap")
            ]
        );
    }

    #[test]
    fn events_have_timestamp_first_and_data_only_when_present() {
        let stop = Event { timestamp: Timestamp { seconds: 5, microseconds: 7 }, name: "STOP".into(), data: None };
        assert_eq!(text(&stop), "{\"timestamp\": {\"seconds\": 5, \"microseconds\": 7}, \"event\": \"STOP\"}\r\n");
        let shutdown = Event::new("SHUTDOWN", Some(json!({"guest": true})));
        let value: Value = serde_json::from_str(&text(&shutdown)).unwrap();
        assert_eq!(value["data"], json!({"guest": true}));
        let now = Timestamp::now();
        assert!(value["timestamp"]["seconds"].as_i64().unwrap() <= now.seconds);
        assert!((0..1_000_000).contains(&value["timestamp"]["microseconds"].as_i64().unwrap()));
    }
}
