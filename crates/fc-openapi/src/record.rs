//! The line a rig scenario prints for each API call it makes (xtask/scenarios/lib-fc.sh's
//! `call`), so the xtask test can check every exchange against the file:
//!
//! `FC-EXCHANGE <METHOD> <PATH> <STATUS> <REQUEST> <ANSWER>`
//!
//! where REQUEST and ANSWER are each either `-` (no body) or one JSON value on the line
//! (Firecracker's answers are one line; the scenarios' request bodies too). A JSON value
//! carries its own end, so no separator or escaping is needed in shell.

use crate::{Exchange, LoadError, Mismatch, Spec, Verdict};
use serde_json::Value;

/// What starts a recorded exchange's line.
pub const MARKER: &str = "FC-EXCHANGE ";

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("no {0} in the exchange line")]
    Missing(&'static str),
    #[error("the status {0:?} is not a number")]
    Status(String),
    #[error("the {what} is neither `-` nor one JSON value")]
    Body {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("text after the answer: {0:?}")]
    Trailing(String),
}

/// Why the recorded exchanges of an output do not all pass.
#[derive(Debug, thiserror::Error)]
pub enum RecordedError {
    #[error("Firecracker's OpenAPI file")]
    Load(#[source] &'static LoadError),
    #[error("the recorded exchange {line:?} cannot be read")]
    Line {
        line: String,
        #[source]
        source: LineError,
    },
    #[error("{exchange}\ndoes not match Firecracker's OpenAPI file")]
    Mismatch {
        exchange: Box<Exchange>,
        #[source]
        source: Mismatch,
    },
}

/// Checks every exchange recorded in `output` against the file [`Spec::shared`] reads,
/// stopping at the first that does not match; on success, how each one matched.
pub fn check_all(output: &str) -> Result<Vec<(Exchange, Verdict)>, RecordedError> {
    let spec = Spec::shared().map_err(RecordedError::Load)?;
    let mut checked = Vec::new();
    for recorded in exchanges(output) {
        let exchange = recorded.map_err(|(line, source)| RecordedError::Line { line, source })?;
        match spec.check(&exchange) {
            Ok(verdict) => checked.push((exchange, verdict)),
            Err(source) => return Err(RecordedError::Mismatch { exchange: Box::new(exchange), source }),
        }
    }
    Ok(checked)
}

/// Every exchange recorded in `output` (lines that start with [`MARKER`], anywhere in a
/// line so a console's prefix does not hide one), with the line of any that cannot be read.
pub fn exchanges(output: &str) -> Vec<Result<Exchange, (String, LineError)>> {
    output
        .lines()
        .filter_map(|line| line.find(MARKER).map(|at| &line[at + MARKER.len()..]))
        .map(|rest| parse(rest).map_err(|e| (rest.to_owned(), e)))
        .collect()
}

/// One line's text after the marker.
pub fn parse(rest: &str) -> Result<Exchange, LineError> {
    let mut fields = rest.trim_start().splitn(4, ' ');
    let method = fields.next().filter(|m| !m.is_empty()).ok_or(LineError::Missing("method"))?;
    let path = fields.next().ok_or(LineError::Missing("path"))?;
    let status = fields.next().ok_or(LineError::Missing("status"))?;
    let status = status.parse().map_err(|_| LineError::Status(status.to_owned()))?;
    let rest = fields.next().ok_or(LineError::Missing("request"))?;
    let (request, rest) = body(rest, "request")?;
    let (answer, rest) = body(rest, "answer")?;
    if !rest.trim().is_empty() {
        return Err(LineError::Trailing(rest.trim().to_owned()));
    }
    Ok(Exchange { method: method.to_owned(), path: path.to_owned(), request, status, answer })
}

fn body<'a>(text: &'a str, what: &'static str) -> Result<(Option<String>, &'a str), LineError> {
    let text = text.trim_start();
    if let Some(rest) = text.strip_prefix('-').filter(|r| r.is_empty() || r.starts_with(' ')) {
        return Ok((None, rest));
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(source)) => return Err(LineError::Body { what, source }),
        None => return Err(LineError::Missing(what)),
    };
    let end = values.byte_offset();
    Ok((Some(value.to_string()), &text[end..]))
}
