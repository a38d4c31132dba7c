//! Method + path + body → [`ApiRequest`], with Firecracker's checks and messages (the id in
//! the path must match the body's, ids are alphanumeric or `_`, GET takes no body, PUT and
//! PATCH need one). What is in Firecracker's API but not in microvm (pmem, the serial
//! device, memory hot-plug, device hot-unplug, balloon hinting) answers 400 naming it.

use crate::http::{Method, Request};
use crate::model::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What a client asked for. The VMM decides whether it can be done in its state.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiRequest {
    GetInstanceInfo,
    GetVersion,
    GetVmConfig,
    GetMachineConfig,
    PutMachineConfig(MachineConfig),
    PatchMachineConfig(MachineConfigUpdate),
    PutBootSource(BootSource),
    PutDrive(Drive),
    PatchDrive(PartialDrive),
    PutNetworkInterface(NetworkInterface),
    PatchNetworkInterface(PartialNetworkInterface),
    PutVsock(Vsock),
    GetBalloon,
    PutBalloon(Balloon),
    PatchBalloon(BalloonUpdate),
    GetBalloonStats,
    PatchBalloonStats(BalloonStatsUpdate),
    PutEntropy(EntropyDevice),
    Action(ActionType),
    PatchVm(VmState),
    CreateSnapshot(SnapshotCreateParams),
    LoadSnapshot(SnapshotLoadParams),
    PutLogger(Logger),
    PutMetrics(Metrics),
    GetMmds,
    PutMmds(Value),
    PatchMmds(Value),
    PutMmdsConfig(MmdsConfig),
    PutCpuConfig(CpuConfig),
}

/// Why a request was not understood; every one is a 400 with this text as fault message.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("The ID cannot be empty.")]
    EmptyId,
    #[error("API Resource IDs can only contain alphanumeric characters and underscores.")]
    InvalidId,
    #[error("Invalid request method and/or path: {method} {path}.")]
    InvalidPathMethod { method: Method, path: String },
    #[error("An error occurred when deserializing the json body of a request: {0}.")]
    Json(#[from] serde_json::Error),
    /// Firecracker's messages for a missing or superfluous body and other fixed answers.
    #[error("{0}")]
    Generic(String),
    /// In Firecracker's API, not in microvm.
    #[error("{0} is not supported by microvm.")]
    NotSupported(&'static str),
}

impl RequestError {
    fn generic(text: impl Into<String>) -> RequestError {
        RequestError::Generic(text.into())
    }
}

/// Firecracker's answers for a body where none belongs and none where one must be.
fn method_error(method: Method) -> RequestError {
    RequestError::generic(match method {
        Method::Get => "GET request cannot have a body.",
        Method::Put => "Empty PUT request.",
        Method::Patch => "Empty PATCH request.",
    })
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    Ok(serde_json::from_slice(body)?)
}

/// Firecracker's rule for drive and interface ids.
fn checked_id(id: Option<&str>) -> Result<&str, RequestError> {
    let id = id.filter(|id| !id.is_empty()).ok_or(RequestError::EmptyId)?;
    if !id.chars().all(|c| c == '_' || c.is_alphanumeric()) {
        return Err(RequestError::InvalidId);
    }
    Ok(id)
}

/// Routes one request.
pub fn parse(request: &Request) -> Result<ApiRequest, RequestError> {
    let method = request.method;
    let mut tokens = request.path.trim_start_matches('/').split_terminator('/');
    let first = tokens.next().unwrap_or("");
    let second = tokens.next();
    let invalid = || RequestError::InvalidPathMethod { method, path: request.path.clone() };
    // Firecracker ignores path segments after those it routes on; so does microvm, except
    // that they must not change what is asked.
    let body = request.body.as_deref();
    use ApiRequest as R;
    let parsed = match (method, first, body) {
        (Method::Get, _, Some(_)) => return Err(method_error(Method::Get)),
        (Method::Put | Method::Patch, _, None) if !(first == "balloon" && second == Some("hinting")) => {
            return match known(first) {
                true => Err(method_error(method)),
                false => Err(invalid()),
            }
        }
        (Method::Get, "", None) => R::GetInstanceInfo,
        (Method::Get, "version", None) => R::GetVersion,
        (Method::Get, "vm", None) if second == Some("config") => R::GetVmConfig,
        (Method::Get, "machine-config", None) => R::GetMachineConfig,
        (Method::Get, "mmds", None) => R::GetMmds,
        (Method::Get, "balloon", None) => match second {
            None => R::GetBalloon,
            Some("statistics") => R::GetBalloonStats,
            Some("hinting") => return Err(RequestError::NotSupported("Balloon free page hinting")),
            Some(other) => return Err(RequestError::generic(format!("Unrecognized GET request path `{other}`."))),
        },
        (Method::Get, "hotplug", None) => return Err(RequestError::NotSupported("Memory hot-plug")),
        (Method::Put, "actions", Some(b)) => R::Action(json::<InstanceActionInfo>(b)?.action_type),
        (Method::Put, "balloon", Some(b)) => R::PutBalloon(json(b)?),
        (Method::Put, "boot-source", Some(b)) => R::PutBootSource(json(b)?),
        (Method::Put, "cpu-config", Some(b)) => R::PutCpuConfig(json(b)?),
        (Method::Put, "drives", Some(b)) => {
            let id = checked_id(second)?;
            let drive: Drive = json(b)?;
            if drive.drive_id != id {
                return Err(RequestError::generic("The id from the path does not match the id from the body!"));
            }
            R::PutDrive(drive)
        }
        (Method::Put, "logger", Some(b)) => R::PutLogger(json(b)?),
        (Method::Put, "machine-config", Some(b)) => R::PutMachineConfig(json(b)?),
        (Method::Put, "metrics", Some(b)) => R::PutMetrics(json(b)?),
        (Method::Put, "mmds", Some(b)) => match second {
            None => R::PutMmds(json(b)?),
            Some("config") => R::PutMmdsConfig(json(b)?),
            Some(other) => return Err(RequestError::generic(format!("Unrecognized PUT request path `{other}`."))),
        },
        (Method::Put, "network-interfaces", Some(b)) => {
            let id = checked_id(second)?;
            let net: NetworkInterface = json(b)?;
            if net.iface_id != id {
                return Err(id_mismatch(id, &net.iface_id));
            }
            R::PutNetworkInterface(net)
        }
        (Method::Put, "snapshot", Some(b)) => match second {
            Some("create") => R::CreateSnapshot(json(b)?),
            Some("load") => R::LoadSnapshot(snapshot_load(b)?),
            Some(other) => {
                return Err(RequestError::InvalidPathMethod { method, path: format!("/snapshot/{other}") });
            }
            None => return Err(RequestError::generic("Missing snapshot operation type.")),
        },
        (Method::Put, "vsock", Some(b)) => R::PutVsock(json(b)?),
        (Method::Put, "entropy", Some(b)) => R::PutEntropy(json(b)?),
        (Method::Put, "pmem", Some(_)) => return Err(RequestError::NotSupported("The pmem device")),
        (Method::Put, "serial", Some(_)) => return Err(RequestError::NotSupported("PUT /serial")),
        (Method::Put | Method::Patch, "hotplug", Some(_)) => return Err(RequestError::NotSupported("Memory hot-plug")),
        (Method::Patch, "balloon", b) => match (second, b) {
            (Some("statistics"), Some(b)) => R::PatchBalloonStats(json(b)?),
            (Some("hinting"), _) => return Err(RequestError::NotSupported("Balloon free page hinting")),
            (_, Some(b)) => R::PatchBalloon(json(b)?),
            (_, None) => return Err(method_error(Method::Patch)),
        },
        (Method::Patch, "drives", Some(b)) => {
            let id = checked_id(second)?;
            let drive: PartialDrive = json(b)?;
            if drive.drive_id != id {
                return Err(RequestError::generic("The id from the path does not match the id from the body!"));
            }
            R::PatchDrive(drive)
        }
        (Method::Patch, "machine-config", Some(b)) => {
            let update: MachineConfigUpdate = json(b)?;
            if update.is_empty() {
                return Err(RequestError::generic("Empty PATCH request."));
            }
            R::PatchMachineConfig(update)
        }
        (Method::Patch, "mmds", Some(b)) => R::PatchMmds(json(b)?),
        (Method::Patch, "network-interfaces", Some(b)) => {
            let id = checked_id(second)?;
            let net: PartialNetworkInterface = json(b)?;
            if net.iface_id != id {
                return Err(id_mismatch(id, &net.iface_id));
            }
            R::PatchNetworkInterface(net)
        }
        (Method::Patch, "vm", Some(b)) => R::PatchVm(json::<Vm>(b)?.state),
        (Method::Patch, "pmem", Some(_)) => return Err(RequestError::NotSupported("The pmem device")),
        _ => return Err(invalid()),
    };
    Ok(parsed)
}

/// Paths Firecracker routes (for the "Empty PUT request." answer).
fn known(first: &str) -> bool {
    matches!(
        first,
        "actions"
            | "balloon"
            | "boot-source"
            | "cpu-config"
            | "drives"
            | "logger"
            | "machine-config"
            | "metrics"
            | "mmds"
            | "network-interfaces"
            | "snapshot"
            | "vsock"
            | "entropy"
            | "vm"
            | "pmem"
            | "serial"
            | "hotplug"
    )
}

fn id_mismatch(path: &str, body: &str) -> RequestError {
    RequestError::generic(format!("The id from the path [{path}] does not match the id from the body [{body}]!"))
}

/// Exactly one of `mem_backend` and `mem_file_path`, with Firecracker's messages.
fn snapshot_load(body: &[u8]) -> Result<SnapshotLoadParams, RequestError> {
    use serde::de::Error as _;
    let params: SnapshotLoadParams = json(body)?;
    match (&params.mem_backend, &params.mem_file_path) {
        (Some(_), Some(_)) => Err(RequestError::Json(serde_json::Error::custom(
            "too many fields: either `mem_backend` or `mem_file_path` exclusively is required",
        ))),
        (None, None) => Err(RequestError::Json(serde_json::Error::custom(
            "missing field: either `mem_backend` or `mem_file_path` is required",
        ))),
        _ => Ok(params),
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
