use serde_json::json;

use super::*;
use crate::wire::ErrorClass;

/// A stand-in for the VMM: records what handlers did.
#[derive(Default)]
struct Vm {
    running: bool,
    quit_requested: bool,
}

fn stop(vm: &mut Vm, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    vm.running = false;
    Ok(json!({}))
}

fn quit(vm: &mut Vm, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    vm.quit_requested = true;
    Ok(json!({}))
}

fn echo(_: &mut Vm, mut args: Arguments) -> Result<Value, QmpError> {
    let text: String = args.required("text")?;
    let times: Option<u32> = args.optional("times")?;
    args.finish()?;
    Ok(json!(text.repeat(times.unwrap_or(1) as usize)))
}

fn dispatcher() -> Dispatcher<Vm> {
    let mut dispatcher = Dispatcher::new();
    dispatcher.register("stop", stop).unwrap();
    dispatcher.register("quit", quit).unwrap();
    dispatcher.register("echo", echo).unwrap();
    dispatcher
}

fn negotiated() -> Session {
    let mut session = Session::new();
    let reply = dispatcher().dispatch(&mut session, &mut Vm::default(), json!({"execute": "qmp_capabilities"}));
    assert_eq!(reply.outcome, Ok(json!({})));
    session
}

fn error(reply: Reply) -> (ErrorClass, String) {
    let error = reply.outcome.unwrap_err();
    (error.class, error.desc)
}

#[test]
fn negotiation_mode_allows_only_qmp_capabilities() {
    let dispatcher = dispatcher();
    let mut session = Session::new();
    let mut vm = Vm { running: true, ..Vm::default() };
    assert!(!session.accepts_events());
    for command in ["stop", "query-commands", "no-such-command"] {
        let reply = dispatcher.dispatch(&mut session, &mut vm, json!({"execute": command, "id": 1}));
        assert_eq!(reply.id, Some(json!(1)));
        assert_eq!(
            error(reply),
            (ErrorClass::CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'".into())
        );
    }
    assert!(vm.running, "nothing ran before negotiation");
    let reply = dispatcher.dispatch(&mut session, &mut vm, json!({"execute": "qmp_capabilities", "id": "n"}));
    assert_eq!(reply, Reply { outcome: Ok(json!({})), id: Some(json!("n")) });
    assert_eq!(session.mode(), Mode::Command);
    assert!(session.accepts_events());
}

#[test]
fn qmp_capabilities_in_command_mode_is_refused_like_qemu() {
    let mut session = negotiated();
    let reply = dispatcher().dispatch(&mut session, &mut Vm::default(), json!({"execute": "qmp_capabilities"}));
    assert_eq!(
        error(reply),
        (ErrorClass::CommandNotFound, "Capabilities negotiation is already complete, command ignored".into())
    );
    assert_eq!(session.mode(), Mode::Command);
}

#[test]
fn qmp_capabilities_accepts_empty_enable_and_refuses_oob() {
    let dispatcher = dispatcher();
    let mut vm = Vm::default();
    let mut session = Session::new();
    let refused = [
        (json!({"enable": ["oob"]}), "Capability oob not available"),
        (json!({"enable": ["bogus"]}), "Parameter 'enable[0]' does not accept value 'bogus'"),
        (json!({"enable": "oob"}), "Invalid parameter type for 'enable', expected: array"),
        (json!({"other": 1}), "Parameter 'other' is unexpected"),
    ];
    for (arguments, desc) in refused {
        let reply =
            dispatcher.dispatch(&mut session, &mut vm, json!({"execute": "qmp_capabilities", "arguments": arguments}));
        assert_eq!(error(reply), (ErrorClass::GenericError, desc.into()));
        assert_eq!(session.mode(), Mode::CapabilitiesNegotiation);
    }
    let reply =
        dispatcher.dispatch(&mut session, &mut vm, json!({"execute": "qmp_capabilities", "arguments": {"enable": []}}));
    assert_eq!(reply.outcome, Ok(json!({})));
    assert_eq!(session.mode(), Mode::Command);
}

#[test]
fn envelope_errors_in_negotiation_mode_keep_their_class() {
    let reply = dispatcher().dispatch(&mut Session::new(), &mut Vm::default(), json!({"id": 9}));
    assert_eq!(reply.id, Some(json!(9)));
    assert_eq!(error(reply), (ErrorClass::GenericError, "QMP input lacks member 'execute'".into()));
}

#[test]
fn id_is_echoed_verbatim() {
    let dispatcher = dispatcher();
    let mut session = negotiated();
    for id in [json!(7), json!(-1.5), json!("libvirt-12"), json!({"a": [1, {"b": null}]}), json!(null)] {
        let reply = dispatcher.dispatch(&mut session, &mut Vm::default(), json!({"execute": "stop", "id": id.clone()}));
        assert_eq!(reply, Reply { outcome: Ok(json!({})), id: Some(id.clone()) });
        let reply = dispatcher.dispatch(&mut session, &mut Vm::default(), json!({"execute": "nope", "id": id.clone()}));
        assert_eq!(reply.id, Some(id));
    }
    let reply = dispatcher.dispatch(&mut session, &mut Vm::default(), json!({"execute": "stop"}));
    assert_eq!(reply.id, None);
}

#[test]
fn commands_run_against_the_target() {
    let dispatcher = dispatcher();
    let mut session = negotiated();
    let mut vm = Vm { running: true, quit_requested: false };
    dispatcher.dispatch(&mut session, &mut vm, json!({"execute": "stop"}));
    assert!(!vm.running);
    let reply = dispatcher.dispatch(&mut session, &mut vm, json!({"execute": "quit"}));
    assert_eq!(reply.outcome, Ok(json!({})));
    assert!(vm.quit_requested, "the side effect is left to the VMM, after the reply");
}

#[test]
fn unknown_command_is_command_not_found() {
    let reply =
        dispatcher().dispatch(&mut negotiated(), &mut Vm::default(), json!({"execute": "human-monitor-command"}));
    assert_eq!(
        error(reply),
        (ErrorClass::CommandNotFound, "The command human-monitor-command has not been found".into())
    );
}

#[test]
fn query_commands_lists_registered_and_built_in_commands() {
    let reply = dispatcher().dispatch(&mut negotiated(), &mut Vm::default(), json!({"execute": "query-commands"}));
    let mut names: Vec<String> =
        reply.outcome.unwrap().as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["echo", "qmp_capabilities", "query-commands", "quit", "stop"]);
    let reply = dispatcher().dispatch(
        &mut negotiated(),
        &mut Vm::default(),
        json!({"execute": "query-commands", "arguments": {"x": 1}}),
    );
    assert_eq!(error(reply), (ErrorClass::GenericError, "Parameter 'x' is unexpected".into()));
}

#[test]
fn argument_errors_reach_the_client() {
    let dispatcher = dispatcher();
    let mut session = negotiated();
    let mut run = |arguments: Value| {
        dispatcher.dispatch(&mut session, &mut Vm::default(), json!({"execute": "echo", "arguments": arguments}))
    };
    assert_eq!(run(json!({"text": "ab", "times": 2})).outcome, Ok(json!("abab")));
    assert_eq!(error(run(json!({}))).1, "Parameter 'text' is missing");
    assert_eq!(error(run(json!({"text": 1}))).1, "Invalid parameter type for 'text', expected: string");
    assert_eq!(
        error(run(json!({"text": "a", "times": -1}))).1,
        "Invalid parameter type for 'times', expected: integer"
    );
    assert_eq!(error(run(json!({"text": "a", "loud": true}))).1, "Parameter 'loud' is unexpected");
}

#[test]
fn registering_twice_or_over_a_built_in_fails() {
    let mut dispatcher = dispatcher();
    assert_eq!(dispatcher.register("stop", stop), Err(RegisterError::Duplicate("stop")));
    assert_eq!(dispatcher.register("query-commands", stop), Err(RegisterError::BuiltIn("query-commands")));
}
