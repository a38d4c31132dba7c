//! Tests only: checks an exchange with Firecracker's API (method, path, request body,
//! status, answer body) against Firecracker's OpenAPI file, the way
//! tests/firecracker/fcvm.py does for the Python clients. A dev-dependency of `crates/cli`
//! (its curl helper) and `xtask` (the rig scenarios' recorded calls); never part of the
//! microvm binary.
//!
//! The rule: the operation is the file's for the concrete path (`/drives/rootfs` is
//! `/drives/{drive_id}`); a request body the file rejects must have been refused with 400
//! (tests send bad bodies on purpose), one it accepts may get any status the operation
//! documents (or `default`); every answer matches the schema of its status, 204 has no
//! body, and an error status carries Firecracker's `fault_message`. A request the file
//! does not describe at all (an endpoint microvm refuses, a body that is not JSON) is
//! checked only by [`Spec::check_outside`], which a test calls on purpose: its answer must
//! be Firecracker's 400 fault.

pub mod record;
pub mod schema;

use schema::Problem;
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Names another copy of Firecracker's file (a newer release's) instead of the repo's, as
/// for the Python tests.
pub const FILE_ENV: &str = "FIRECRACKER_OPENAPI";

/// The repo's copy: tests/firecracker/openapi/firecracker.yaml (its SOURCE.md says which
/// release and where from).
pub fn repo_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/firecracker/openapi/firecracker.yaml")
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("read the OpenAPI file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse the OpenAPI file {path}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    #[error("the OpenAPI file {path} has no `{section}` map")]
    Shape { path: PathBuf, section: &'static str },
}

/// One exchange as a client saw it. Bodies are kept as sent and received, so a body that
/// is not JSON can be told apart from one that does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request: Option<String>,
    pub status: u16,
    pub answer: Option<String>,
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(body) = &self.request {
            write!(f, " {body}")?;
        }
        write!(f, " -> {}", self.status)?;
        if let Some(answer) = &self.answer {
            write!(f, " {answer}")?;
        }
        Ok(())
    }
}

/// A request body the file rejects, refused by microvm as the file says it must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The body does not match the operation's body schema.
    Body(Problem),
    /// The operation requires a body and none was sent.
    MissingBody,
}

/// How an exchange matched the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A request the file accepts, an answer its status documents.
    Conforms,
    /// A request the file rejects, answered 400 with the fault the file documents.
    RefusedAsTheFileSays(Refusal),
}

/// Why an exchange does not match the file.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error("the OpenAPI file has no {method} {path} (a test that sends it on purpose checks it with check_outside)")]
    NotInTheFile { method: String, path: String },
    #[error("the request body is not JSON (a test that sends it on purpose checks it with check_outside)")]
    RequestNotJson(#[source] serde_json::Error),
    #[error("the operation takes no body, but one was sent")]
    UnexpectedBody,
    #[error("the file rejects the request body, but microvm answered {status}")]
    AcceptedABadBody {
        status: u16,
        #[source]
        problem: Problem,
    },
    #[error("the operation requires a body, none was sent, but microvm answered {status}")]
    AcceptedAMissingBody { status: u16 },
    #[error("status {status} is not documented for this operation (nor is `default`)")]
    UndocumentedStatus { status: u16 },
    #[error("204 with a body")]
    BodyWith204,
    #[error("the answer to {status} is not JSON")]
    AnswerNotJson {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    #[error("{status} with no body, but the file documents one")]
    MissingAnswer { status: u16 },
    #[error("the answer to {status} does not match the file")]
    Answer {
        status: u16,
        #[source]
        problem: Problem,
    },
    #[error("error status {status} without Firecracker's string `fault_message`")]
    NoFaultMessage { status: u16 },
    #[error("the file describes this exchange: check it with check, not check_outside")]
    InTheFile,
    #[error("a request outside the file must get Firecracker's 400 fault, it got {status}")]
    NotRefused { status: u16 },
}

/// Firecracker's OpenAPI file, read once.
#[derive(Debug)]
pub struct Spec {
    paths: Map<String, Value>,
    definitions: Map<String, Value>,
}

impl Spec {
    pub fn load(path: &Path) -> Result<Spec, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.into(), source })?;
        let document: Value =
            serde_norway::from_str(&text).map_err(|source| LoadError::Yaml { path: path.into(), source })?;
        let section = |section: &'static str| match document.get(section) {
            Some(Value::Object(map)) => Ok(map.clone()),
            _ => Err(LoadError::Shape { path: path.into(), section }),
        };
        Ok(Spec { paths: section("paths")?, definitions: section("definitions")? })
    }

    /// The file [`FILE_ENV`] names, or the repo's; read once per test process.
    pub fn shared() -> Result<&'static Spec, &'static LoadError> {
        static SPEC: OnceLock<Result<Spec, LoadError>> = OnceLock::new();
        SPEC.get_or_init(|| {
            let path = std::env::var_os(FILE_ENV).map(PathBuf::from).unwrap_or_else(repo_file);
            Spec::load(&path)
        })
        .as_ref()
    }

    /// Every schema of the file (definitions, body parameters, answers) with the keywords
    /// in it that the validator does not implement: `(where, keyword)`.
    pub fn unsupported_keywords(&self) -> Vec<(String, String)> {
        let mut schemas: Vec<(String, &Value)> =
            self.definitions.iter().map(|(name, schema)| (format!("#/definitions/{name}"), schema)).collect();
        for (path, operations) in &self.paths {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                let parameters = operation.get("parameters").and_then(Value::as_array).into_iter().flatten();
                let bodies = parameters.filter_map(|p| p.get("schema"));
                let answers = operation.get("responses").and_then(Value::as_object).into_iter().flatten();
                let answers = answers.filter_map(|(_, r)| r.get("schema"));
                schemas.extend(bodies.chain(answers).map(|s| (format!("{method} {path}"), s)));
            }
        }
        let each = schemas
            .into_iter()
            .map(|(at, s)| schema::unsupported_keywords(s).into_iter().map(move |k| (at.clone(), k)));
        each.flatten().collect()
    }

    /// Every operation's `operationId`, for a test that means to cover them all.
    pub fn operation_ids(&self) -> Vec<&str> {
        let operations = self.paths.values().filter_map(Value::as_object).flat_map(|ops| ops.values());
        operations.filter_map(|op| op.get("operationId").and_then(Value::as_str)).collect()
    }

    /// The file's operation for `method` on a concrete `path` (a query string is ignored):
    /// `{name}` segments match any one segment, and a literal path wins over a template.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Map<String, Value>> {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let method = method.to_ascii_lowercase();
        let mut best: Option<(usize, &Map<String, Value>)> = None;
        for (template, operations) in &self.paths {
            let parts: Vec<&str> = template.trim_end_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let matches = parts.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()));
            let Some(operation) = operations.get(&method).and_then(Value::as_object) else { continue };
            if matches {
                let templated = parts.iter().filter(|t| t.starts_with('{')).count();
                if best.map_or(true, |(fewest, _)| templated < fewest) {
                    best = Some((templated, operation));
                }
            }
        }
        best.map(|(_, operation)| operation)
    }

    /// Checks an exchange the file describes (module documentation: the rule).
    pub fn check(&self, exchange: &Exchange) -> Result<Verdict, Mismatch> {
        let operation = self
            .operation(&exchange.method, &exchange.path)
            .ok_or_else(|| Mismatch::NotInTheFile { method: exchange.method.clone(), path: exchange.path.clone() })?;
        let verdict = self.request(operation, exchange)?;
        self.answer(operation, exchange)?;
        Ok(verdict)
    }

    /// Checks an exchange a test sends outside the file on purpose (an endpoint or method
    /// the file does not have, a body that is not JSON): it must get Firecracker's 400
    /// with a `fault_message`. An exchange the file does describe is refused here, so a
    /// test cannot skip the real check by calling this one.
    pub fn check_outside(&self, exchange: &Exchange) -> Result<(), Mismatch> {
        let not_json = exchange.request.as_deref().is_some_and(|b| serde_json::from_str::<Value>(b).is_err());
        if self.operation(&exchange.method, &exchange.path).is_some() && !not_json {
            return Err(Mismatch::InTheFile);
        }
        if exchange.status != 400 {
            return Err(Mismatch::NotRefused { status: exchange.status });
        }
        let answer = parse_answer(exchange)?.ok_or(Mismatch::MissingAnswer { status: 400 })?;
        let error = Value::String("#/definitions/Error".into());
        let schema = Value::Object(Map::from_iter([("$ref".to_owned(), error)]));
        schema::validate(&answer, &schema, &self.definitions)
            .map_err(|problem| Mismatch::Answer { status: 400, problem })?;
        fault_message(&answer, 400)
    }

    fn request(&self, operation: &Map<String, Value>, exchange: &Exchange) -> Result<Verdict, Mismatch> {
        let parameters = operation.get("parameters").and_then(Value::as_array);
        let body = parameters.into_iter().flatten().find(|p| p.get("in").and_then(Value::as_str) == Some("body"));
        let refused = |refusal: Refusal| match refusal {
            _ if exchange.status == 400 => Ok(Verdict::RefusedAsTheFileSays(refusal)),
            Refusal::Body(problem) => Err(Mismatch::AcceptedABadBody { status: exchange.status, problem }),
            Refusal::MissingBody => Err(Mismatch::AcceptedAMissingBody { status: exchange.status }),
        };
        match (&exchange.request, body) {
            (None, None) => Ok(Verdict::Conforms),
            (Some(_), None) => Err(Mismatch::UnexpectedBody),
            (None, Some(parameter)) => match parameter.get("required").and_then(Value::as_bool) {
                Some(true) => refused(Refusal::MissingBody),
                _ => Ok(Verdict::Conforms),
            },
            (Some(text), Some(parameter)) => {
                let instance: Value = serde_json::from_str(text).map_err(Mismatch::RequestNotJson)?;
                let schema = parameter.get("schema").unwrap_or(&Value::Null);
                match schema::validate(&instance, schema, &self.definitions) {
                    Ok(()) => Ok(Verdict::Conforms),
                    Err(problem) => refused(Refusal::Body(problem)),
                }
            }
        }
    }

    fn answer(&self, operation: &Map<String, Value>, exchange: &Exchange) -> Result<(), Mismatch> {
        let status = exchange.status;
        let responses = operation.get("responses").and_then(Value::as_object);
        let documented = responses.and_then(|r| r.get(&status.to_string()).or_else(|| r.get("default")));
        let documented = documented.ok_or(Mismatch::UndocumentedStatus { status })?;
        let answer = parse_answer(exchange)?;
        if status == 204 {
            return match answer {
                None => Ok(()),
                Some(_) => Err(Mismatch::BodyWith204),
            };
        }
        if let Some(schema) = documented.get("schema") {
            let answer = answer.as_ref().ok_or(Mismatch::MissingAnswer { status })?;
            schema::validate(answer, schema, &self.definitions)
                .map_err(|problem| Mismatch::Answer { status, problem })?;
        }
        match answer {
            Some(answer) if status >= 400 => fault_message(&answer, status),
            _ => Ok(()),
        }
    }
}

/// An error with its sources on one line, for a test's panic message.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

fn parse_answer(exchange: &Exchange) -> Result<Option<Value>, Mismatch> {
    let status = exchange.status;
    match exchange.answer.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str(text).map(Some).map_err(|source| Mismatch::AnswerNotJson { status, source }),
    }
}

/// Firecracker's file leaves `fault_message` optional in `Error`; Firecracker always sends
/// it, and its clients show it, so the tests require it.
fn fault_message(answer: &Value, status: u16) -> Result<(), Mismatch> {
    match answer.get("fault_message") {
        Some(Value::String(_)) => Ok(()),
        _ => Err(Mismatch::NoFaultMessage { status }),
    }
}
