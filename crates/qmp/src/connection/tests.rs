use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use serde_json::{json, Value};

use super::*;
use crate::arguments::Arguments;
use crate::decoder::MAX_REQUEST_BYTES;
use crate::wire::{QmpError, Timestamp, VersionInfo, VersionTriple};

#[derive(Default)]
struct Vm {
    quit_requested: bool,
}

fn quit(vm: &mut Vm, args: Arguments) -> Result<Value, QmpError> {
    args.finish()?;
    vm.quit_requested = true;
    Ok(json!({}))
}

fn dispatcher() -> Dispatcher<Vm> {
    let mut dispatcher = Dispatcher::new();
    dispatcher.register("quit", quit).unwrap();
    dispatcher
}

fn greeting() -> Greeting {
    Greeting {
        version: VersionInfo { qemu: VersionTriple { micro: 0, minor: 2, major: 9 }, package: "microvm".into() },
    }
}

/// A server-side connection over a socket pair, and the client's end (both non-blocking).
fn connect(pretty: bool) -> (Connection<UnixStream>, UnixStream) {
    let (server, client) = UnixStream::pair().unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_nonblocking(true).unwrap();
    (Connection::new(server, &greeting(), pretty).unwrap(), client)
}

/// Everything the client can read now, as text.
fn received(client: &mut UnixStream) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match client.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => bytes.extend_from_slice(&buffer[..count]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// The messages the client can read now, each checked to end with `\r\n`.
fn messages(client: &mut UnixStream) -> Vec<Value> {
    let text = received(client);
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    text.split_terminator("\r\n").map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn send(connection: &mut Connection<UnixStream>, client: &mut UnixStream, input: &[u8], vm: &mut Vm) -> Status {
    client.write_all(input).unwrap();
    connection.on_readable(&dispatcher(), vm).unwrap()
}

#[test]
fn greeting_then_negotiation_then_commands() {
    let (mut connection, mut client) = connect(false);
    assert_eq!(
        received(&mut client),
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 9}, \"package\": \"microvm\"}, \
         \"capabilities\": []}}\r\n"
    );
    let mut vm = Vm::default();
    send(&mut connection, &mut client, b"{\"execute\": \"quit\"}\n", &mut vm);
    assert_eq!(
        received(&mut client),
        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting capabilities negotiation with \
         'qmp_capabilities'\"}}\r\n"
    );
    // Split anywhere, several per chunk: replies come in request order.
    send(&mut connection, &mut client, b"{\"execute\": \"qmp_capa", &mut vm);
    assert!(received(&mut client).is_empty());
    send(&mut connection, &mut client, b"bilities\", \"id\": 1}{\"execute\": \"quit\", \"id\": 2}", &mut vm);
    assert_eq!(received(&mut client), "{\"return\": {}, \"id\": 1}\r\n{\"return\": {}, \"id\": 2}\r\n");
    assert!(vm.quit_requested);
    assert!(!connection.wants_write());
}

#[test]
fn garbage_then_a_valid_request_is_answered() {
    let (mut connection, mut client) = connect(false);
    received(&mut client);
    let mut vm = Vm::default();
    send(&mut connection, &mut client, b"\xff\x00garbage{{\n{\"execute\": \"qmp_capabilities\"}\n", &mut vm);
    let replies = messages(&mut client);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0]["error"]["class"], "GenericError");
    assert!(replies[0]["error"]["desc"].as_str().unwrap().starts_with("JSON parse error, "));
    assert!(replies[0].get("id").is_none());
    assert_eq!(replies[1], json!({"return": {}}));
}

#[test]
fn events_are_delivered_only_after_negotiation() {
    let (mut connection, mut client) = connect(false);
    received(&mut client);
    connection.send_event(&Event::new("STOP", None)).unwrap();
    assert!(received(&mut client).is_empty(), "no events in negotiation mode");
    send(&mut connection, &mut client, b"{\"execute\": \"qmp_capabilities\"}", &mut Vm::default());
    received(&mut client);
    let before = Timestamp::now();
    connection.send_event(&Event::new("STOP", None)).unwrap();
    connection.send_event(&Event::new("SHUTDOWN", Some(json!({"guest": false, "reason": "host-qmp-quit"})))).unwrap();
    let events = messages(&mut client);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "STOP");
    assert!(events[0].get("data").is_none());
    assert_eq!(events[1]["data"], json!({"guest": false, "reason": "host-qmp-quit"}));
    let timestamp = &events[0]["timestamp"];
    assert_eq!(timestamp.as_object().unwrap().len(), 2);
    assert!(timestamp["seconds"].as_i64().unwrap() >= before.seconds);
    assert!((0..1_000_000).contains(&timestamp["microseconds"].as_i64().unwrap()));
}

#[test]
fn client_that_never_reads_is_declared_dead_without_blocking() {
    let (mut connection, mut client) = connect(false);
    send(&mut connection, &mut client, b"{\"execute\": \"qmp_capabilities\"}", &mut Vm::default());
    let event = Event::new("BIG", Some(json!({"padding": "x".repeat(4096)})));
    // Bounded: the socket buffer plus the queue cap is far below this many events.
    let mut failure = None;
    for _ in 0..10_000 {
        if let Err(e) = connection.send_event(&event) {
            failure = Some(e);
            break;
        }
    }
    assert!(matches!(failure, Some(ConnectionError::OutputOverflow)), "{failure:?}");
    assert!(connection.is_dead());
    assert!(!connection.wants_write());
    assert_eq!(connection.queued_output(), 0, "the queue is freed");
    assert!(matches!(connection.flush(), Err(ConnectionError::OutputOverflow)));
    assert!(matches!(connection.on_readable(&dispatcher(), &mut Vm::default()), Err(ConnectionError::OutputOverflow)));
}

#[test]
fn queued_output_drains_when_the_client_reads() {
    let (mut connection, mut client) = connect(false);
    send(&mut connection, &mut client, b"{\"execute\": \"qmp_capabilities\"}", &mut Vm::default());
    let event = Event::new("BIG", Some(json!({"padding": "x".repeat(4096)})));
    let mut sent = 0;
    while !connection.wants_write() {
        connection.send_event(&event).unwrap();
        sent += 1;
    }
    let mut text = String::new();
    while connection.wants_write() {
        text += &received(&mut client);
        connection.flush().unwrap();
    }
    text += &received(&mut client);
    let events = text.split_terminator("\r\n").filter(|line| line.contains("\"BIG\"")).count();
    assert_eq!(events, sent, "every queued event arrives whole");
}

#[test]
fn half_closed_client_gets_its_replies_and_peer_closed() {
    let (mut connection, mut client) = connect(false);
    received(&mut client);
    client.write_all(b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"quit\", \"id\": \"q\"}\n").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut vm = Vm::default();
    assert_eq!(connection.on_readable(&dispatcher(), &mut vm).unwrap(), Status::PeerClosed);
    assert_eq!(messages(&mut client), [json!({"return": {}}), json!({"return": {}, "id": "q"})]);
    assert!(vm.quit_requested);
}

#[test]
fn oversized_request_is_answered_then_fatal() {
    let (mut connection, mut client) = connect(false);
    received(&mut client);
    let writer = std::thread::spawn(move || {
        client.set_nonblocking(false).unwrap();
        let mut request = b"{\"execute\": \"x\", \"arguments\": {\"blob\": \"".to_vec();
        request.resize(MAX_REQUEST_BYTES + 16, b'a');
        // The server stops reading partway; the write then fails or stays partial.
        let _ = client.write_all(&request);
        client
    });
    let mut vm = Vm::default();
    let error = loop {
        match connection.on_readable(&dispatcher(), &mut vm) {
            Ok(Status::Open) => std::thread::yield_now(),
            Ok(Status::PeerClosed) => panic!("peer closed before the limit"),
            Err(e) => break e,
        }
    };
    assert!(matches!(error, ConnectionError::Decode(DecodeError::RequestTooLarge)), "{error:?}");
    drop(connection);
    let mut client = writer.join().unwrap();
    let mut text = String::new();
    client.read_to_string(&mut text).unwrap();
    assert!(
        text.ends_with("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token size limit exceeded\"}}\r\n")
    );
}

#[test]
fn pretty_mode_indents_every_message() {
    let (mut connection, mut client) = connect(true);
    let greeting = received(&mut client);
    assert!(greeting.starts_with("{\r\n    \"QMP\": {\r\n        \"version\": {\r\n"), "{greeting:?}");
    send(&mut connection, &mut client, b"{\"execute\": \"qmp_capabilities\", \"id\": 1}", &mut Vm::default());
    assert_eq!(received(&mut client), "{\r\n    \"return\": {\r\n    },\r\n    \"id\": 1\r\n}\r\n");
}
