//! A QMP client for the integration tests: reads the greeting, negotiates, then runs
//! commands and keeps the events it reads on the way.

use super::RUN_TIMEOUT;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A QMP client: reads the greeting, negotiates, then runs commands and keeps the events
/// it reads on the way.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    pub events: Vec<Value>,
}

impl Qmp {
    pub fn connect(path: &Path) -> Qmp {
        let deadline = Instant::now() + RUN_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("cannot connect to {}: {e}", path.display()),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        stream.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
        let mut qmp = Qmp { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream, events: Vec::new() };
        assert!(qmp.read().get("QMP").is_some(), "no greeting");
        qmp.execute("qmp_capabilities", json!({})).expect("negotiation");
        qmp
    }

    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from the QMP socket");
        assert!(!line.is_empty(), "QMP socket closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad QMP line {line:?}: {e}"))
    }

    /// Runs `name`: Ok(return value) or Err(error description).
    pub fn execute(&mut self, name: &str, arguments: Value) -> Result<Value, String> {
        let request = json!({ "execute": name, "arguments": arguments });
        writeln!(self.writer, "{request}").expect("write to the QMP socket");
        loop {
            let reply = self.read();
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                return Err(error["desc"].as_str().unwrap_or_default().to_owned());
            }
            self.events.push(reply);
        }
    }

    /// Reads until an event named `name` arrives (or the socket closes).
    pub fn wait_event(&mut self, name: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return self.events.remove(i);
        }
        loop {
            let msg = self.read();
            if msg["event"] == name {
                return msg;
            }
            self.events.push(msg);
        }
    }
}
