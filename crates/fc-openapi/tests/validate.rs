//! The validator refuses what it must: the schema subset on hand-made schemas, the
//! exchange rule on Firecracker's own file, and the rig's line format.

use fc_openapi::record;
use fc_openapi::schema::{validate, Problem};
use fc_openapi::{Exchange, Mismatch, Refusal, Spec, Verdict};
use serde_json::{json, Value};

fn check(instance: Value, schema: Value) -> Result<(), Problem> {
    let definitions = json!({
        "Bucket": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 0}, "name": {"type": "string", "maxLength": 3}}}
    });
    let Value::Object(definitions) = definitions else { unreachable!() };
    validate(&instance, &schema, &definitions)
}

#[test]
fn the_schema_subset_rejects_what_draft_4_rejects() {
    let object = json!({"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
        "id": {"type": "string"},
        "count": {"type": "integer", "minimum": 1, "maximum": 32},
        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
        "kind": {"type": "string", "enum": ["Full", "Diff"]},
        "list": {"type": "array", "items": {"$ref": "#/definitions/Bucket"}, "maxItems": 2}
    }});
    assert_eq!(check(json!({"id": "a", "count": 32, "kind": "Diff", "ratio": 0.5}), object.clone()), Ok(()));
    assert!(matches!(check(json!({"id": 1}), object.clone()), Err(Problem::WrongType { .. })));
    assert!(matches!(check(json!("id"), object.clone()), Err(Problem::WrongType { .. })));
    // Draft 4: 2.0 is a number, not an integer.
    assert!(matches!(check(json!({"id": "a", "count": 2.0}), object.clone()), Err(Problem::WrongType { .. })));
    let missing = check(json!({"count": 2}), object.clone());
    assert!(matches!(&missing, Err(Problem::MissingRequired { name, .. }) if name == "id"), "{missing:?}");
    let unknown = check(json!({"id": "a", "colour": "red"}), object.clone());
    assert!(matches!(&unknown, Err(Problem::UnknownProperty { name, .. }) if name == "colour"), "{unknown:?}");
    assert!(matches!(check(json!({"id": "a", "kind": "Half"}), object.clone()), Err(Problem::NotInEnum { .. })));
    assert!(matches!(check(json!({"id": "a", "count": 0}), object.clone()), Err(Problem::BelowMinimum { .. })));
    assert!(matches!(check(json!({"id": "a", "count": 33}), object.clone()), Err(Problem::AboveMaximum { .. })));
    assert!(matches!(check(json!({"id": "a", "ratio": 0}), object.clone()), Err(Problem::BelowMinimum { .. })));
    // Through `items` and `$ref`, with the place named.
    let nested = check(json!({"id": "a", "list": [{"size": 1}, {"size": -1}]}), object.clone());
    assert_eq!(nested.unwrap_err().to_string(), "/list/1/size: -1 is below the minimum 0");
    let long = check(json!({"id": "a", "list": [{"size": 1}, {"size": 1}, {"size": 1}]}), object.clone());
    assert!(matches!(long, Err(Problem::Length { keyword: "maxItems", count: 3, .. })), "{long:?}");
    assert!(matches!(
        check(json!({"size": 1, "name": "long"}), json!({"$ref": "#/definitions/Bucket"})),
        Err(Problem::Length { keyword: "maxLength", .. })
    ));
    // A u64 past 2^53 is compared exactly, not rounded down into range.
    let huge = check(json!(u64::MAX), json!({"type": "integer", "maximum": 18446744073709551614u64}));
    assert!(matches!(huge, Err(Problem::AboveMaximum { .. })), "{huge:?}");
    assert!(matches!(check(json!({}), json!({"$ref": "#/definitions/Nope"})), Err(Problem::UnresolvedRef { .. })));
    // A keyword it does not implement fails loudly rather than passing.
    let pattern = check(json!("x"), json!({"type": "string", "pattern": "^y$"}));
    assert!(matches!(&pattern, Err(Problem::UnsupportedKeyword { keyword, .. }) if keyword == "pattern"));
    assert!(matches!(
        check(json!(1), json!({"allOf": [{"type": "integer"}, {"maximum": 0}]})),
        Err(Problem::AboveMaximum { .. })
    ));
    // `additionalProperties` as a schema checks the values it lets in.
    let map = json!({"type": "object", "additionalProperties": {"type": "integer"}});
    assert_eq!(check(json!({"a": 1}), map.clone()), Ok(()));
    assert!(matches!(check(json!({"a": "1"}), map), Err(Problem::WrongType { .. })));
}

fn spec() -> &'static Spec {
    Spec::shared().unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(e)))
}

fn exchange(method: &str, path: &str, request: Option<Value>, status: u16, answer: Option<Value>) -> Exchange {
    Exchange {
        method: method.into(),
        path: path.into(),
        request: request.map(|v| v.to_string()),
        status,
        answer: answer.map(|v| v.to_string()),
    }
}

#[test]
fn firecrackers_file_is_read_and_concrete_paths_find_their_operation() {
    let spec = spec();
    let drive = spec.operation("PUT", "/drives/rootfs").expect("PUT /drives/{drive_id}");
    assert_eq!(drive["operationId"], "putGuestDriveByID");
    assert_eq!(
        spec.operation("patch", "/network-interfaces/eth0").unwrap()["operationId"],
        "patchGuestNetworkInterfaceByID"
    );
    assert_eq!(spec.operation("GET", "/").unwrap()["operationId"], "describeInstance");
    assert_eq!(spec.operation("GET", "/mmds?x=1").unwrap()["operationId"], "getMmds");
    assert!(spec.operation("GET", "/drives/rootfs").is_none(), "the file has no GET on drives");
    assert!(spec.operation("PUT", "/drives").is_none());
    assert!(spec.operation("PUT", "/drives/a/b").is_none());
    assert!(spec.operation("PUT", "/no-such").is_none());
}

#[test]
fn every_keyword_of_firecrackers_file_is_one_the_validator_checks() {
    assert_eq!(spec().unsupported_keywords(), Vec::<(String, String)>::new());
    let nested = json!({"type": "object", "properties": {"a": {"type": "array", "items": {"pattern": "x"}}}});
    assert_eq!(fc_openapi::schema::unsupported_keywords(&nested), ["pattern"]);
}

#[test]
fn the_exchange_rule_is_the_python_tests_rule() {
    let spec = spec();
    let fault = || Some(json!({"fault_message": "bad"}));
    let vsock = |cid: u32| Some(json!({"guest_cid": cid, "uds_path": "/v.sock"}));
    assert_eq!(spec.check(&exchange("PUT", "/vsock", vsock(3), 204, None)).unwrap(), Verdict::Conforms);
    // A body the file accepts may still be refused.
    assert_eq!(spec.check(&exchange("PUT", "/vsock", vsock(3), 400, fault())).unwrap(), Verdict::Conforms);
    // One it rejects must be: guest_cid's minimum is 3.
    let refused = spec.check(&exchange("PUT", "/vsock", vsock(2), 400, fault())).unwrap();
    assert!(matches!(refused, Verdict::RefusedAsTheFileSays(Refusal::Body(Problem::BelowMinimum { .. }))));
    let taken = spec.check(&exchange("PUT", "/vsock", vsock(2), 204, None));
    assert!(matches!(taken, Err(Mismatch::AcceptedABadBody { status: 204, .. })), "{taken:?}");
    let no_body = spec.check(&exchange("PUT", "/actions", None, 204, None));
    assert!(matches!(no_body, Err(Mismatch::AcceptedAMissingBody { status: 204 })), "{no_body:?}");
    let wrong_enum = exchange("PUT", "/actions", Some(json!({"action_type": "Reboot"})), 204, None);
    assert!(matches!(spec.check(&wrong_enum), Err(Mismatch::AcceptedABadBody { .. })));
    // Answers: 204 has none, others match their status's schema, errors carry the fault.
    let with_body = spec.check(&exchange("PUT", "/vsock", vsock(3), 204, Some(json!({}))));
    assert!(matches!(with_body, Err(Mismatch::BodyWith204)), "{with_body:?}");
    let info = json!({"app_name": "Firecracker", "id": "x", "state": "Running", "vmm_version": "1"});
    assert_eq!(spec.check(&exchange("GET", "/", None, 200, Some(info.clone()))).unwrap(), Verdict::Conforms);
    let mut bad_state = info.clone();
    bad_state["state"] = json!("Booting");
    let answer = spec.check(&exchange("GET", "/", None, 200, Some(bad_state)));
    assert!(matches!(answer, Err(Mismatch::Answer { status: 200, problem: Problem::NotInEnum { .. } })), "{answer:?}");
    let missing = spec.check(&exchange("GET", "/", None, 200, None));
    assert!(matches!(missing, Err(Mismatch::MissingAnswer { status: 200 })), "{missing:?}");
    // 500 falls to `default` (Error); a 4xx must say why.
    assert!(spec.check(&exchange("GET", "/", None, 500, fault())).is_ok());
    let silent = spec.check(&exchange("PUT", "/vsock", vsock(3), 400, Some(json!({}))));
    assert!(matches!(silent, Err(Mismatch::NoFaultMessage { status: 400 })), "{silent:?}");
    let not_json = Exchange { answer: Some("oops".into()), ..exchange("GET", "/", None, 200, None) };
    assert!(matches!(spec.check(&not_json), Err(Mismatch::AnswerNotJson { .. })));
    let get_body = spec.check(&exchange("GET", "/", Some(json!({})), 200, Some(info)));
    assert!(matches!(get_body, Err(Mismatch::UnexpectedBody)), "{get_body:?}");
}

#[test]
fn requests_outside_the_file_are_checked_only_on_purpose_and_must_get_the_fault() {
    let spec = spec();
    let fault = Some(json!({"fault_message": "Invalid request method and/or path: GET /drives/x."}));
    let unknown = exchange("GET", "/drives/x", None, 400, fault.clone());
    assert!(matches!(spec.check(&unknown), Err(Mismatch::NotInTheFile { .. })), "not silently passed");
    spec.check_outside(&unknown).unwrap();
    let malformed =
        Exchange { request: Some("{\"vcpu_count\":".into()), ..exchange("PUT", "/machine-config", None, 400, fault) };
    assert!(matches!(spec.check(&malformed), Err(Mismatch::RequestNotJson(_))));
    spec.check_outside(&malformed).unwrap();
    let accepted = Exchange { status: 204, answer: None, ..malformed.clone() };
    assert!(matches!(spec.check_outside(&accepted), Err(Mismatch::NotRefused { status: 204 })));
    let no_fault = Exchange { answer: Some("{}".into()), ..unknown.clone() };
    assert!(matches!(spec.check_outside(&no_fault), Err(Mismatch::NoFaultMessage { .. })));
    let in_file = exchange("GET", "/", None, 400, Some(json!({"fault_message": "x"})));
    assert!(matches!(spec.check_outside(&in_file), Err(Mismatch::InTheFile)), "no skipping the real check");
}

#[test]
fn the_rig_line_format_round_trips_bodies_with_spaces() {
    let output = "FC-CALL drives 204 \n\
        [  1.0] FC-EXCHANGE PUT /drives/rootfs 204 {\"drive_id\": \"root fs\", \"is_root_device\": true} -\r\n\
        FC-EXCHANGE GET /vm/config 200 - {\"drives\":[]}\n\
        FC-EXCHANGE PUT /actions 400 {\"action_type\": 1} {\"fault_message\":\"a b\"}\n\
        FC-EXCHANGE PUT /x 204 {\"a\": 1} - junk\n";
    let all = record::exchanges(output);
    assert_eq!(all.len(), 4);
    let first = all[0].as_ref().unwrap();
    assert_eq!((first.method.as_str(), first.path.as_str(), first.status), ("PUT", "/drives/rootfs", 204));
    assert_eq!(first.request.as_deref(), Some(r#"{"drive_id":"root fs","is_root_device":true}"#));
    assert_eq!(first.answer, None);
    let second = all[1].as_ref().unwrap();
    assert_eq!((second.request.as_deref(), second.answer.as_deref()), (None, Some(r#"{"drives":[]}"#)));
    assert_eq!(all[2].as_ref().unwrap().answer.as_deref(), Some(r#"{"fault_message":"a b"}"#));
    assert!(matches!(&all[3], Err((_, record::LineError::Trailing(t))) if t == "junk"));
    assert!(matches!(record::parse("PUT /x nan - -"), Err(record::LineError::Status(_))));
    assert!(matches!(record::parse("PUT /x 204 {\"a\" -"), Err(record::LineError::Body { what: "request", .. })));
}

#[test]
fn recorded_output_is_checked_exchange_by_exchange_and_the_first_mismatch_named() {
    let good = "FC-CALL x 204\nFC-EXCHANGE PUT /vsock 204 {\"guest_cid\": 3, \"uds_path\": \"/v\"} -\n\
        FC-EXCHANGE PUT /vsock 400 {\"guest_cid\": 2, \"uds_path\": \"/v\"} {\"fault_message\": \"cid\"}\n";
    let checked = record::check_all(good).unwrap();
    assert_eq!(checked.len(), 2);
    assert!(matches!(checked[1].1, Verdict::RefusedAsTheFileSays(_)));
    let bad = format!("{good}FC-EXCHANGE GET / 200 - {{\"state\": \"Up\"}}\nFC-EXCHANGE GET /x 200 - -\n");
    let error = record::check_all(&bad).unwrap_err();
    let text = fc_openapi::describe(&error);
    assert!(text.starts_with("GET / -> 200 {\"state\":\"Up\"}\ndoes not match"), "{text}");
    assert!(text.ends_with("/state: \"Up\" is not one of [\"Not started\",\"Running\",\"Paused\"]"), "{text}");
    let unreadable = record::check_all("FC-EXCHANGE PUT /vsock two - -\n").unwrap_err();
    assert!(matches!(unreadable, record::RecordedError::Line { .. }), "{unreadable:?}");
}
