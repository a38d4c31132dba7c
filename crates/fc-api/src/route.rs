//! Method + path + body → [`ApiRequest`], with Firecracker's checks and messages (the id in
//! the path must match the body's, ids are alphanumeric or `_`, GET takes no body, PUT and
//! PATCH need one). What is in Firecracker's API but not in microvm (pmem, the serial
//! device, memory hot-plug, device hot-unplug, balloon hinting) answers 400 naming it.

use crate::http::{Method, Request};
use crate::model::*;
use crate::response::{NOT_SUPPORTED_POST_BOOT, NOT_SUPPORTED_PRE_BOOT};
use metrics::Counter;
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

/// When Firecracker takes a request: the other state answers [`NOT_SUPPORTED_PRE_BOOT`]
/// or [`NOT_SUPPORTED_POST_BOOT`] before any handler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    PreBoot,
    PostBoot,
    Always,
}

/// What microvm knows of a request besides its body: when it is taken, and the
/// `*_api_requests` metrics (its count and, for a change, its failures) that count it.
pub struct Verb {
    pub allowed: Allowed,
    pub count: Option<&'static Counter>,
    pub fails: Option<&'static Counter>,
}

impl Verb {
    const fn new(allowed: Allowed) -> Verb {
        Verb { allowed, count: None, fails: None }
    }

    const fn counted(self, count: &'static Counter, fails: Option<&'static Counter>) -> Verb {
        Verb { count: Some(count), fails, ..self }
    }

    /// Firecracker's refusal of a request in the wrong state (`booted`: the VM runs),
    /// `None` when it is taken.
    pub fn refusal(&self, booted: bool) -> Option<&'static str> {
        match (self.allowed, booted) {
            (Allowed::PreBoot, true) => Some(NOT_SUPPORTED_POST_BOOT),
            (Allowed::PostBoot, false) => Some(NOT_SUPPORTED_PRE_BOOT),
            _ => None,
        }
    }
}

impl ApiRequest {
    /// Each request's row: when Firecracker takes it and which metrics count it (as
    /// Firecracker's own, which counts no GET of the balloon, vm/config or snapshots).
    pub fn verb(&self) -> Verb {
        use metrics::{GET_API as G, PATCH_API as PA, PUT_API as P};
        use Allowed::{Always, PostBoot, PreBoot};
        use ApiRequest as R;
        match self {
            R::GetInstanceInfo => Verb::new(Always).counted(&G.instance_info_count, None),
            R::GetVersion => Verb::new(Always).counted(&G.vmm_version_count, None),
            R::GetVmConfig | R::GetBalloon => Verb::new(Always),
            R::GetMachineConfig => Verb::new(Always).counted(&G.machine_cfg_count, None),
            R::PutMachineConfig(_) => Verb::new(PreBoot).counted(&P.machine_cfg_count, Some(&P.machine_cfg_fails)),
            R::PatchMachineConfig(_) => Verb::new(PreBoot).counted(&PA.machine_cfg_count, Some(&PA.machine_cfg_fails)),
            R::PutBootSource(_) => Verb::new(PreBoot).counted(&P.boot_source_count, Some(&P.boot_source_fails)),
            R::PutDrive(_) => Verb::new(PreBoot).counted(&P.drive_count, Some(&P.drive_fails)),
            R::PatchDrive(_) => Verb::new(PostBoot).counted(&PA.drive_count, Some(&PA.drive_fails)),
            R::PutNetworkInterface(_) => Verb::new(PreBoot).counted(&P.network_count, Some(&P.network_fails)),
            R::PatchNetworkInterface(_) => Verb::new(PostBoot).counted(&PA.network_count, Some(&PA.network_fails)),
            R::PutVsock(_) => Verb::new(PreBoot).counted(&P.vsock_count, Some(&P.vsock_fails)),
            R::PutBalloon(_) | R::PutEntropy(_) => Verb::new(PreBoot),
            R::PatchBalloon(_) | R::GetBalloonStats | R::PatchBalloonStats(_) => Verb::new(PostBoot),
            R::Action(ActionType::InstanceStart) => {
                Verb::new(PreBoot).counted(&P.actions_count, Some(&P.actions_fails))
            }
            R::Action(ActionType::SendCtrlAltDel | ActionType::FlushMetrics) => {
                Verb::new(PostBoot).counted(&P.actions_count, Some(&P.actions_fails))
            }
            R::PatchVm(_) | R::CreateSnapshot(_) => Verb::new(PostBoot),
            R::LoadSnapshot(_) => Verb::new(PreBoot),
            R::PutLogger(_) => Verb::new(PreBoot).counted(&P.logger_count, Some(&P.logger_fails)),
            R::PutMetrics(_) => Verb::new(PreBoot).counted(&P.metrics_count, Some(&P.metrics_fails)),
            R::GetMmds => Verb::new(Always).counted(&G.mmds_count, None),
            R::PutMmds(_) => Verb::new(Always).counted(&P.mmds_count, Some(&P.mmds_fails)),
            R::PatchMmds(_) => Verb::new(Always).counted(&PA.mmds_count, Some(&PA.mmds_fails)),
            R::PutMmdsConfig(_) => Verb::new(PreBoot).counted(&P.mmds_count, Some(&P.mmds_fails)),
            R::PutCpuConfig(_) => Verb::new(PreBoot).counted(&P.cpu_cfg_count, Some(&P.cpu_cfg_fails)),
        }
    }
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
    #[error("GET request cannot have a body.")]
    GetWithBody,
    #[error("Empty PUT request.")]
    EmptyPut,
    /// No body, or (`PATCH /machine-config`) one that changes nothing.
    #[error("Empty PATCH request.")]
    EmptyPatch,
    #[error("The id from the path does not match the id from the body!")]
    IdMismatch,
    /// The interfaces' own words, which name both ids.
    #[error("The id from the path [{path}] does not match the id from the body [{body}]!")]
    IfaceIdMismatch { path: String, body: String },
    #[error("Unrecognized GET request path `{0}`.")]
    UnrecognizedGet(String),
    #[error("Unrecognized PUT request path `{0}`.")]
    UnrecognizedPut(String),
    #[error("Missing snapshot operation type.")]
    MissingSnapshotOperation,
    /// In Firecracker's API, not in microvm.
    #[error("{0} is not supported by microvm.")]
    NotSupported(&'static str),
}

/// Firecracker's answers for a body where none belongs and none where one must be.
fn method_error(method: Method) -> RequestError {
    match method {
        Method::Get => RequestError::GetWithBody,
        Method::Put => RequestError::EmptyPut,
        Method::Patch => RequestError::EmptyPatch,
    }
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

/// Routes one request: Firecracker's answers for a body where none belongs (or none where
/// one must be), then the first row of [`ROUTES`] for its method and path.
pub fn parse(request: &Request) -> Result<ApiRequest, RequestError> {
    let method = request.method;
    let mut tokens = request.path.trim_start_matches('/').split_terminator('/');
    let first = tokens.next().unwrap_or("");
    let second = tokens.next();
    let invalid = || RequestError::InvalidPathMethod { method, path: request.path.clone() };
    let body = request.body.as_deref();
    match (method, body) {
        (Method::Get, Some(_)) => return Err(method_error(Method::Get)),
        // Balloon hinting answers that it is not supported, with a body or without.
        (Method::Put | Method::Patch, None) if !(first == "balloon" && second == Some("hinting")) => {
            return match ROUTES.iter().any(|r| r.method != Method::Get && r.path == first) {
                true => Err(method_error(method)),
                false => Err(invalid()),
            }
        }
        _ => {}
    }
    let route = ROUTES.iter().find(|r| r.method == method && r.path == first && r.sub.matches(second));
    let route = route.ok_or_else(invalid)?;
    // Firecracker ignores path segments after those it routes on; so does microvm, except
    // that they must not change what is asked.
    let body = body.ok_or_else(invalid);
    (route.parse)(Asked { method, second, body })
}

/// What a row's parser reads: the second path segment (an id, or ignored) and the body
/// (there unless the method is GET).
struct Asked<'a> {
    method: Method,
    second: Option<&'a str>,
    body: Result<&'a [u8], RequestError>,
}

impl Asked<'_> {
    fn json<T: DeserializeOwned>(self) -> Result<T, RequestError> {
        json(self.body?)
    }

    /// The body, whose id field (`id` of it) must be the path's id.
    fn with_id<T: DeserializeOwned>(self, id: impl Fn(&T) -> &str) -> Result<T, RequestError> {
        let path_id = checked_id(self.second)?;
        let value: T = self.json()?;
        if id(&value) != path_id {
            return Err(RequestError::IdMismatch);
        }
        Ok(value)
    }

    /// As [`Asked::with_id`], with the interfaces' message, which names both ids.
    fn with_iface_id<T: DeserializeOwned>(self, id: impl Fn(&T) -> &str) -> Result<T, RequestError> {
        let path_id = checked_id(self.second)?;
        let value: T = self.json()?;
        if id(&value) != path_id {
            return Err(RequestError::IfaceIdMismatch { path: path_id.to_owned(), body: id(&value).to_owned() });
        }
        Ok(value)
    }

    fn other(&self) -> &str {
        self.second.unwrap_or_default()
    }
}

/// The second path segment a row asks for.
enum Sub {
    /// Anything or nothing (ignored, or the id the row's parser reads).
    Any,
    /// Nothing.
    None,
    /// Exactly this.
    Is(&'static str),
}

impl Sub {
    fn matches(&self, second: Option<&str>) -> bool {
        match self {
            Sub::Any => true,
            Sub::None => second.is_none(),
            Sub::Is(want) => second == Some(want),
        }
    }
}

/// One row of the routing table: a method and path, and how its request is read.
struct Route {
    method: Method,
    /// The first path segment.
    path: &'static str,
    sub: Sub,
    parse: fn(Asked) -> Result<ApiRequest, RequestError>,
}

const fn route(
    method: Method,
    path: &'static str,
    sub: Sub,
    parse: fn(Asked) -> Result<ApiRequest, RequestError>,
) -> Route {
    Route { method, path, sub, parse }
}

/// What is in Firecracker's API but not in microvm.
macro_rules! not_supported {
    ($what:expr) => {
        |_| Err(RequestError::NotSupported($what))
    };
}

/// Every method and path Firecracker routes, first match first. A new verb is its body
/// type (`model.rs`), its [`ApiRequest`] variant and row here, its row in
/// [`ApiRequest::verb`], and its handler (docs/ARCHITECTURE.md, "Adding a Firecracker
/// API verb").
static ROUTES: &[Route] = {
    use ApiRequest as R;
    use Method::{Get, Patch, Put};
    &[
        route(Get, "", Sub::Any, |_| Ok(R::GetInstanceInfo)),
        route(Get, "version", Sub::Any, |_| Ok(R::GetVersion)),
        route(Get, "vm", Sub::Is("config"), |_| Ok(R::GetVmConfig)),
        route(Get, "machine-config", Sub::Any, |_| Ok(R::GetMachineConfig)),
        route(Get, "mmds", Sub::Any, |_| Ok(R::GetMmds)),
        route(Get, "balloon", Sub::None, |_| Ok(R::GetBalloon)),
        route(Get, "balloon", Sub::Is("statistics"), |_| Ok(R::GetBalloonStats)),
        route(Get, "balloon", Sub::Is("hinting"), not_supported!("Balloon free page hinting")),
        route(Get, "balloon", Sub::Any, |a| Err(RequestError::UnrecognizedGet(a.other().to_owned()))),
        route(Get, "hotplug", Sub::Any, not_supported!("Memory hot-plug")),
        route(Put, "actions", Sub::Any, |a| Ok(R::Action(a.json::<InstanceActionInfo>()?.action_type))),
        route(Put, "balloon", Sub::Any, |a| Ok(R::PutBalloon(a.json()?))),
        route(Put, "boot-source", Sub::Any, |a| Ok(R::PutBootSource(a.json()?))),
        route(Put, "cpu-config", Sub::Any, |a| Ok(R::PutCpuConfig(a.json()?))),
        route(Put, "drives", Sub::Any, |a| Ok(R::PutDrive(a.with_id(|d: &Drive| &d.drive_id)?))),
        route(Put, "logger", Sub::Any, |a| Ok(R::PutLogger(a.json()?))),
        route(Put, "machine-config", Sub::Any, |a| Ok(R::PutMachineConfig(a.json()?))),
        route(Put, "metrics", Sub::Any, |a| Ok(R::PutMetrics(a.json()?))),
        route(Put, "mmds", Sub::None, |a| Ok(R::PutMmds(a.json()?))),
        route(Put, "mmds", Sub::Is("config"), |a| Ok(R::PutMmdsConfig(a.json()?))),
        route(Put, "mmds", Sub::Any, |a| Err(RequestError::UnrecognizedPut(a.other().to_owned()))),
        route(Put, "network-interfaces", Sub::Any, |a| {
            Ok(R::PutNetworkInterface(a.with_iface_id(|n: &NetworkInterface| &n.iface_id)?))
        }),
        route(Put, "snapshot", Sub::Is("create"), |a| Ok(R::CreateSnapshot(a.json()?))),
        route(Put, "snapshot", Sub::Is("load"), |a| Ok(R::LoadSnapshot(snapshot_load(a.body?)?))),
        route(Put, "snapshot", Sub::None, |_| Err(RequestError::MissingSnapshotOperation)),
        route(Put, "snapshot", Sub::Any, |a| {
            Err(RequestError::InvalidPathMethod { method: a.method, path: format!("/snapshot/{}", a.other()) })
        }),
        route(Put, "vsock", Sub::Any, |a| Ok(R::PutVsock(a.json()?))),
        route(Put, "entropy", Sub::Any, |a| Ok(R::PutEntropy(a.json()?))),
        route(Put, "pmem", Sub::Any, not_supported!("The pmem device")),
        route(Put, "serial", Sub::Any, not_supported!("PUT /serial")),
        route(Put, "hotplug", Sub::Any, not_supported!("Memory hot-plug")),
        route(Patch, "balloon", Sub::Is("statistics"), |a| Ok(R::PatchBalloonStats(a.json()?))),
        route(Patch, "balloon", Sub::Is("hinting"), not_supported!("Balloon free page hinting")),
        route(Patch, "balloon", Sub::Any, |a| Ok(R::PatchBalloon(a.json()?))),
        route(Patch, "drives", Sub::Any, |a| Ok(R::PatchDrive(a.with_id(|d: &PartialDrive| &d.drive_id)?))),
        route(Patch, "machine-config", Sub::Any, |a| {
            let update: MachineConfigUpdate = a.json()?;
            if update.is_empty() {
                return Err(RequestError::EmptyPatch);
            }
            Ok(R::PatchMachineConfig(update))
        }),
        route(Patch, "mmds", Sub::Any, |a| Ok(R::PatchMmds(a.json()?))),
        route(Patch, "network-interfaces", Sub::Any, |a| {
            Ok(R::PatchNetworkInterface(a.with_iface_id(|n: &PartialNetworkInterface| &n.iface_id)?))
        }),
        route(Patch, "vm", Sub::Any, |a| Ok(R::PatchVm(a.json::<Vm>()?.state))),
        route(Patch, "pmem", Sub::Any, not_supported!("The pmem device")),
        route(Patch, "hotplug", Sub::Any, not_supported!("Memory hot-plug")),
    ]
};

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
