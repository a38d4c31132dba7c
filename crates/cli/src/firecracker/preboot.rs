//! The configuration a Firecracker client builds before `InstanceStart`: each request is
//! checked when it arrives and either changes the configuration whole or not at all (a
//! refused request leaves nothing half applied), then `InstanceStart` turns it into a
//! `VmConfig` (`vm_config.rs`).

use super::vm_config::{self, ConfigError, Parts};
use fc_api::mmds::{Mmds, MmdsError};
use fc_api::model::*;
use fc_api::{ApiRequest, Response, NOT_SUPPORTED_PRE_BOOT};
use serde_json::{json, Value};
use vmm::api::{snapshot, ApiFacts, MetricsSink};
use vmm::config::VmConfig;
use vmm::cpu_template::CpuTemplate;

/// What to do after a request.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Answer(Response),
    /// `InstanceStart`, or `/snapshot/load` (then [`Preboot::take_load`] has its
    /// parameters): build and run the VM, then answer 204 (or 400 if it cannot start).
    Start,
}

/// Applies `PUT /logger` (the binary's logger).
pub type LoggerHook<'a> = &'a dyn Fn(&Logger) -> Result<(), LoggerError>;

/// Why the logger cannot take a `PUT /logger` (or `--log-path`).
#[derive(Debug, thiserror::Error)]
pub enum LoggerError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: std::io::Error },
}

/// Why `PUT /metrics` (or `--metrics-path`) is refused.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Once, as Firecracker: the destination cannot change under a reader.
    #[error("Reinitialization of metrics not allowed.")]
    Reinitialized,
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: std::io::Error },
}

/// Why a request before boot is refused; its fault message, as Firecracker words it. A
/// refused request changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Logger error: {0}")]
    Logger(#[source] LoggerError),
    #[error("Metrics error: {0}")]
    Metrics(#[source] MetricsError),
    #[error(transparent)]
    Mmds(#[from] MmdsError),
    #[error("Balloon config error: No balloon device found.")]
    NoBalloon,
    /// A request Firecracker takes only once the VM runs (its `Verb` row says so).
    #[error("{NOT_SUPPORTED_PRE_BOOT}")]
    AfterBootOnly,
}

impl Refusal {
    /// Its answer: 413 for an MMDS store past its limit, as Firecracker, else 400.
    pub fn answer(&self) -> Response {
        match self {
            Refusal::Mmds(MmdsError::TooLarge) => Response::fault(413, self),
            _ => Response::bad_request(self),
        }
    }
}

pub struct Preboot {
    pub id: String,
    pub sandbox: bool,
    boot_source: Option<BootSource>,
    pub(super) machine: MachineConfig,
    drives: Vec<Drive>,
    nets: Vec<NetworkInterface>,
    balloon: Option<Balloon>,
    entropy: Option<EntropyDevice>,
    vsock: Option<Vsock>,
    logger: Option<Logger>,
    metrics: Option<(Metrics, MetricsSink)>,
    /// The store, shared with the interfaces `mmds_config` lists once they exist.
    mmds: Mmds,
    mmds_config: Option<MmdsConfig>,
    /// `PUT /cpu-config` as sent (for `GET /vm/config`) and as parsed.
    cpu_config: Option<(CpuConfig, CpuTemplate)>,
    /// A `/snapshot/load` waiting for the start.
    load: Option<SnapshotLoadParams>,
}

impl Preboot {
    pub fn new(id: String, sandbox: bool, mmds_size_limit: usize) -> Preboot {
        Preboot {
            id,
            sandbox,
            boot_source: None,
            machine: MachineConfig::default(),
            drives: Vec::new(),
            nets: Vec::new(),
            balloon: None,
            entropy: None,
            vsock: None,
            logger: None,
            metrics: None,
            mmds: Mmds::new(mmds_size_limit),
            mmds_config: None,
            cpu_config: None,
            load: None,
        }
    }

    /// An unconfigured front end with this one's id, sandbox choice and MMDS limit.
    pub fn fresh(&self) -> Preboot {
        Preboot::new(self.id.clone(), self.sandbox, self.mmds.size_limit())
    }

    /// Takes `other`'s logger and metrics destination: the process's own, which a
    /// snapshot's configuration does not carry (a load's configuration replaces the rest).
    pub fn keep_process_settings(&mut self, other: &mut Preboot) {
        self.logger = other.logger.take();
        self.metrics = other.metrics.take();
    }

    /// The `/snapshot/load` that asked for the start, if one did.
    pub fn take_load(&mut self) -> Option<SnapshotLoadParams> {
        self.load.take()
    }

    pub fn mmds(&self) -> &Mmds {
        &self.mmds
    }

    /// Answers one request before boot.
    pub fn handle(&mut self, request: ApiRequest, logger: LoggerHook) -> Outcome {
        self.apply(request, logger).unwrap_or_else(|refusal| Outcome::Answer(refusal.answer()))
    }

    /// One request before boot: applied whole, or refused with nothing changed. What
    /// Firecracker takes only after boot is refused by its `Verb` row before this looks
    /// at it.
    pub fn apply(&mut self, request: ApiRequest, logger: LoggerHook) -> Result<Outcome, Refusal> {
        use ApiRequest as R;
        if request.verb().refusal(false).is_some() {
            return Err(Refusal::AfterBootOnly);
        }
        let answer = |response| Ok(Outcome::Answer(response));
        match request {
            R::GetInstanceInfo => return answer(Response::ok(&vmm::api::instance_info(&self.id, None))),
            R::GetVersion => return answer(Response::ok(&vmm::api::version())),
            R::GetVmConfig => return answer(Response::ok(&self.full_config())),
            R::GetMachineConfig => return answer(Response::ok(&self.machine)),
            R::GetBalloon => return answer(Response::ok(self.balloon.as_ref().ok_or(Refusal::NoBalloon)?)),
            R::GetMmds => return answer(Response::ok(&self.mmds.get())),
            R::PutMachineConfig(m) => self.set_machine(m)?,
            R::PatchMachineConfig(update) => self.set_machine(update.apply(&self.machine))?,
            R::PutBootSource(b) => {
                vm_config::check_boot_source(&b)?;
                self.boot_source = Some(b);
            }
            R::PutDrive(d) => {
                vm_config::check_drive(&d, &self.drives)?;
                upsert(&mut self.drives, d, |x| &x.drive_id);
            }
            R::PutNetworkInterface(n) => {
                vm_config::check_net(&n, &self.nets)?;
                upsert(&mut self.nets, n, |x| &x.iface_id);
            }
            R::PutBalloon(b) => self.set_balloon(b)?,
            // Nothing in it is refused: its rate limiter is microvm's too.
            R::PutEntropy(e) => self.entropy = Some(e),
            R::PutVsock(v) => {
                vm_config::check_vsock(&v)?;
                self.vsock = Some(v);
            }
            R::PutLogger(l) => {
                logger(&l).map_err(Refusal::Logger)?;
                self.logger = Some(l);
            }
            R::PutMetrics(m) => self.set_metrics(m).map_err(Refusal::Metrics)?,
            R::PutMmdsConfig(c) => self.set_mmds_config(c)?,
            R::PutCpuConfig(c) => {
                let template = super::cpu_config::template(&c)?;
                self.cpu_config = Some((c, template));
            }
            R::PutMmds(v) => self.mmds.put(v)?,
            R::PatchMmds(v) => self.mmds.patch(v)?,
            // vmm's check words its own answer.
            R::LoadSnapshot(params) => match snapshot::check_load(&params) {
                Ok(()) => {
                    self.load = Some(params);
                    return Ok(Outcome::Start);
                }
                Err(refused) => return answer(refused),
            },
            R::Action(ActionType::InstanceStart) => return Ok(Outcome::Start),
            // Taken only after boot: refused above.
            _ => return Err(Refusal::AfterBootOnly),
        }
        answer(Response::no_content())
    }

    /// `PUT /mmds/config`: which interfaces serve the MMDS, at which address, how.
    fn set_mmds_config(&mut self, config: MmdsConfig) -> Result<(), ConfigError> {
        vm_config::check_mmds_config(&config, &self.nets)?;
        self.mmds.set_settings(mmds::Settings {
            version: match config.version {
                MmdsVersion::V1 => mmds::Version::V1,
                MmdsVersion::V2 => mmds::Version::V2,
            },
            imds_compat: config.imds_compat,
        });
        self.mmds_config = Some(config);
        Ok(())
    }

    fn set_machine(&mut self, m: MachineConfig) -> Result<(), ConfigError> {
        vm_config::check_machine(&m)?;
        if let Some(b) = &self.balloon {
            if b.amount_mib as usize > m.mem_size_mib {
                return Err(ConfigError::NotSupported("A balloon larger than guest memory"));
            }
        }
        self.machine = m;
        Ok(())
    }

    /// Once, as Firecracker: the destination cannot change under a reader.
    fn set_metrics(&mut self, metrics: Metrics) -> Result<(), MetricsError> {
        if self.metrics.is_some() {
            return Err(MetricsError::Reinitialized);
        }
        let sink = MetricsSink::open(&metrics.metrics_path)
            .map_err(|source| MetricsError::Open { path: metrics.metrics_path.clone(), source })?;
        self.metrics = Some((metrics, sink));
        Ok(())
    }

    fn set_balloon(&mut self, b: Balloon) -> Result<(), ConfigError> {
        vm_config::check_balloon(&b)?;
        if b.amount_mib as usize > self.machine.mem_size_mib {
            return Err(ConfigError::NotSupported("A balloon larger than guest memory"));
        }
        self.balloon = Some(b);
        Ok(())
    }

    /// The VM to build.
    pub fn vm_config(&self) -> Result<VmConfig, ConfigError> {
        vm_config::build(&Parts {
            boot_source: self.boot_source.as_ref(),
            machine: &self.machine,
            drives: &self.drives,
            nets: &self.nets,
            balloon: self.balloon.as_ref(),
            entropy: self.entropy.as_ref(),
            vsock: self.vsock.as_ref(),
            mmds: self.mmds_config.as_ref().map(|c| (c, &self.mmds)),
            cpu_template: self.cpu_config.as_ref().map(|(_, t)| t),
            sandbox: self.sandbox,
            id: &self.id,
        })
    }

    /// `GET /vm/config`: Firecracker's `FullVmConfiguration`. What is not configured is
    /// left out rather than `null`, which the OpenAPI file's object types do not allow.
    pub fn full_config(&self) -> Value {
        let mut config = json!({
            "balloon": self.balloon,
            "drives": self.drives,
            "boot-source": self.boot_source,
            "logger": self.logger,
            "machine-config": self.machine,
            "metrics": self.metrics.as_ref().map(|(m, _)| m),
            "network-interfaces": self.nets,
            "entropy": self.entropy,
            "vsock": self.vsock,
            "mmds-config": self.mmds_config,
            "cpu-config": self.cpu_config.as_ref().map(|(c, _)| c),
        });
        if let Value::Object(map) = &mut config {
            map.retain(|_, value| !value.is_null());
        }
        config
    }

    /// What the running VM's API answers from.
    pub fn into_facts(self) -> ApiFacts {
        let vm_config = self.full_config();
        ApiFacts {
            id: self.id,
            machine_config: self.machine,
            vm_config,
            balloon: self.balloon,
            mmds: self.mmds,
            metrics: self.metrics.map(|(_, sink)| sink),
        }
    }
}

/// Inserts or replaces (same id, same place) an entry.
fn upsert<T>(list: &mut Vec<T>, item: T, id: impl Fn(&T) -> &String) {
    match list.iter().position(|x| id(x) == id(&item)) {
        Some(i) => list[i] = item,
        None => list.push(item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(p: &mut Preboot, request: ApiRequest) -> Response {
        match p.handle(request, &|_| Ok(())) {
            Outcome::Answer(r) => r,
            Outcome::Start => panic!("unexpected start"),
        }
    }

    /// Each refusal is a typed error whose source chain keeps the cause, and whose answer
    /// is Firecracker's status and fault message.
    #[test]
    fn refusals_are_typed_and_answer_firecrackers_words() {
        use std::error::Error as _;
        let mut p = Preboot::new("vm".into(), true, 16);
        let refusal = p.apply(ApiRequest::PatchVm(VmState::Paused), &|_| Ok(())).unwrap_err();
        assert!(matches!(refusal, Refusal::AfterBootOnly));
        assert_eq!(refusal.answer().fault_message().as_deref(), Some(NOT_SUPPORTED_PRE_BOOT));
        let broken = |_: &Logger| {
            let source = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
            Err(LoggerError::Open { path: "/log".into(), source })
        };
        let refusal = p.apply(ApiRequest::PutLogger(Logger::default()), &broken).unwrap_err();
        assert_eq!(refusal.to_string(), "Logger error: cannot open /log: permission denied");
        let cause = refusal.source().and_then(|e| e.source()).expect("the logger's cause");
        assert_eq!(cause.to_string(), "permission denied");
        assert!(p.full_config().get("logger").is_none(), "refused: not recorded");
        let metrics = Metrics { metrics_path: "/nonexistent/m".into(), emit_id: false, properties: None };
        let refusal = p.apply(ApiRequest::PutMetrics(metrics), &|_| Ok(())).unwrap_err();
        assert!(matches!(refusal, Refusal::Metrics(MetricsError::Open { .. })), "{refusal:?}");
        assert!(refusal.to_string().starts_with("Metrics error: cannot open /nonexistent/m: "), "{refusal}");
        let refusal =
            p.apply(ApiRequest::PutMmds(json!({"key": "longer than sixteen bytes"})), &|_| Ok(())).unwrap_err();
        assert!(matches!(refusal, Refusal::Mmds(MmdsError::TooLarge)));
        assert_eq!(refusal.answer().status, 413);
        assert!(matches!(p.apply(ApiRequest::GetBalloon, &|_| Ok(())), Err(Refusal::NoBalloon)));
    }

    /// Every request the verb table lets through before boot has an arm here: none falls
    /// to the post-boot refusal, and each one the table refuses gets it.
    #[test]
    fn the_verb_table_and_the_pre_boot_handler_agree() {
        use fc_api::route::Allowed;
        use ApiRequest as R;
        let requests = vec![
            R::GetInstanceInfo,
            R::GetVersion,
            R::GetVmConfig,
            R::GetMachineConfig,
            R::PutMachineConfig(MachineConfig::default()),
            R::PatchMachineConfig(MachineConfigUpdate { vcpu_count: Some(2), ..Default::default() }),
            R::PutBootSource(BootSource::default()),
            R::PutDrive(Drive::default()),
            R::PatchDrive(PartialDrive::default()),
            R::PutNetworkInterface(NetworkInterface::default()),
            R::PatchNetworkInterface(PartialNetworkInterface::default()),
            R::PutVsock(Vsock { vsock_id: None, guest_cid: 3, uds_path: "/nonexistent/v.sock".into() }),
            R::GetBalloon,
            R::PutBalloon(Balloon::default()),
            R::PatchBalloon(BalloonUpdate { amount_mib: 1 }),
            R::GetBalloonStats,
            R::PatchBalloonStats(BalloonStatsUpdate { stats_polling_interval_s: 1 }),
            R::PutEntropy(EntropyDevice::default()),
            R::Action(ActionType::InstanceStart),
            R::Action(ActionType::SendCtrlAltDel),
            R::Action(ActionType::FlushMetrics),
            R::PatchVm(VmState::Paused),
            R::CreateSnapshot(serde_json::from_value(json!({"snapshot_path": "s", "mem_file_path": "m"})).unwrap()),
            R::LoadSnapshot(serde_json::from_value(json!({"snapshot_path": "s", "mem_file_path": "m"})).unwrap()),
            R::PutLogger(Logger::default()),
            R::PutMetrics(Metrics { metrics_path: "/nonexistent/m".into(), emit_id: false, properties: None }),
            R::GetMmds,
            R::PutMmds(json!({})),
            R::PatchMmds(json!({})),
            R::PutMmdsConfig(serde_json::from_value(json!({"network_interfaces": []})).unwrap()),
            R::PutCpuConfig(CpuConfig::default()),
        ];
        for request in requests {
            let allowed = request.verb().allowed;
            let name = format!("{request:?}");
            let result = Preboot::new("vm".into(), true, 1000).apply(request, &|_| Ok(()));
            let refused = matches!(result, Err(Refusal::AfterBootOnly));
            assert_eq!(refused, allowed == Allowed::PostBoot, "{name}: {allowed:?}");
        }
    }

    #[test]
    fn refused_changes_leave_nothing_behind() {
        let mut p = Preboot::new("vm".into(), true, 1000);
        let r = answer(
            &mut p,
            ApiRequest::PutMachineConfig(MachineConfig { vcpu_count: 2, mem_size_mib: 256, ..Default::default() }),
        );
        assert_eq!(r.status, 204);
        let r = answer(
            &mut p,
            ApiRequest::PatchMachineConfig(MachineConfigUpdate {
                smt: Some(true),
                vcpu_count: Some(4),
                ..Default::default()
            }),
        );
        assert_eq!(r.status, 400);
        assert_eq!(p.machine.vcpu_count, 2, "the refused PATCH changed nothing");
        let r = answer(
            &mut p,
            ApiRequest::PutBootSource(BootSource {
                kernel_image_path: "/nonexistent/vmlinux".into(),
                ..Default::default()
            }),
        );
        assert!(r.fault_message().unwrap().starts_with("Boot source error: The kernel file cannot be opened"));
        assert!(p.boot_source.is_none());
        assert_eq!(
            answer(&mut p, ApiRequest::PatchVm(VmState::Paused)).fault_message().as_deref(),
            Some(NOT_SUPPORTED_PRE_BOOT)
        );
        assert!(matches!(p.vm_config(), Err(ConfigError::NoBootSource)));
        let info = answer(&mut p, ApiRequest::GetInstanceInfo);
        assert!(info.body.unwrap().contains(r#""state":"Not started""#));
    }

    #[test]
    fn mmds_config_names_existing_interfaces_and_attaches_the_store_to_them() {
        let mut p = Preboot::new("vm".into(), true, 1000);
        let config = |ids: &[&str], ip: Option<[u8; 4]>| {
            ApiRequest::PutMmdsConfig(MmdsConfig {
                version: MmdsVersion::V2,
                network_interfaces: ids.iter().map(|s| s.to_string()).collect(),
                ipv4_address: ip.map(Into::into),
                imds_compat: false,
            })
        };
        let fault = |p: &mut Preboot, r| answer(p, r).fault_message().unwrap_or_default();
        assert!(fault(&mut p, config(&[], None)).contains("is empty"));
        assert!(
            fault(&mut p, config(&["eth1"], None)).contains("does not correspond to any existing network interface")
        );
        for id in ["eth0", "eth1"] {
            let net =
                NetworkInterface { iface_id: id.into(), host_dev_name: format!("tap-{id}"), ..Default::default() };
            assert_eq!(answer(&mut p, ApiRequest::PutNetworkInterface(net)).status, 204);
        }
        assert_eq!(fault(&mut p, config(&["eth1"], Some([10, 0, 0, 1]))), "The MMDS IPv4 address is not link local.");
        assert_eq!(p.mmds().settings().version, mmds::Version::V1, "refused: nothing changed");
        assert_eq!(answer(&mut p, config(&["eth1"], Some([169, 254, 170, 2]))).status, 204);
        assert_eq!(p.mmds().settings().version, mmds::Version::V2);
        assert_eq!(p.full_config()["mmds-config"]["network_interfaces"], json!(["eth1"]));
        let kernel = std::env::temp_dir().join(format!("microvm-mmds-kernel-{}", std::process::id()));
        std::fs::write(&kernel, b"not a kernel, but a file").unwrap();
        let boot = BootSource { kernel_image_path: kernel.display().to_string(), ..Default::default() };
        assert_eq!(answer(&mut p, ApiRequest::PutBootSource(boot)).status, 204);
        let vm = p.vm_config().unwrap();
        // What a snapshot stores (`GET /vm/config`) brings it back on a load (restore.rs).
        let mut restored = p.fresh();
        for request in fc_api::config_file::parse(p.full_config().to_string().as_bytes()).unwrap() {
            assert_eq!(restored.handle(request, &|_| Ok(())), Outcome::Answer(Response::no_content()));
        }
        std::fs::remove_file(&kernel).unwrap();
        assert_eq!(restored.full_config()["mmds-config"], p.full_config()["mmds-config"]);
        assert_eq!(restored.mmds().settings().version, mmds::Version::V2);
        let nets: Vec<_> = vm
            .devices
            .iter()
            .filter_map(|d| match d {
                vmm::config::DeviceConfig::Net(n) => Some((n.id.as_str(), n.mmds.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[0], ("eth0", None), "not listed: no MMDS");
        let attached = nets[1].1.as_ref().expect("eth1 serves the MMDS");
        assert_eq!(attached.ipv4, std::net::Ipv4Addr::new(169, 254, 170, 2));
        assert!(attached.mmds == *p.mmds(), "the API's own store, shared");
    }
}
