//! `microvm clone SOCKET [--] OPTIONS...`: asks a clone server for one clone with these
//! extra options (its console, QMP socket, ...), prints the server's answer line and
//! exits 0 when a clone was started.

use crate::entry::ExitCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

pub const CLIENT_USAGE: &str = "usage: microvm clone SOCKET [--] [MICROVM-OPTIONS...]";

pub fn main(args: &[String]) -> ExitCode {
    let Some((socket, rest)) = args.split_first() else {
        eprintln!("{CLIENT_USAGE}");
        return ExitCode::from(2);
    };
    let extra = match rest.first().map(String::as_str) {
        Some("--") => &rest[1..],
        _ => rest,
    };
    match request(socket, extra) {
        Ok(answer) => {
            println!("{answer}");
            if answer.get("pid").is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => crate::fail(&format!("clone: {socket}: {e}")),
    }
}

/// One request, one answer line.
fn request(socket: &str, extra: &[String]) -> std::io::Result<Value> {
    let mut stream = UnixStream::connect(socket)?;
    writeln!(stream, "{}", json!({ "args": extra }))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}
