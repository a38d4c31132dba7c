//! The Firecracker front end: the same binary started as `firecracker` (or with
//! Firecracker's flags) takes Firecracker's command line (`args.rs`), serves its REST API
//! on `--api-sock` before boot (`server.rs`, `preboot.rs`), maps the configuration onto
//! microvm's `VmConfig` (`vm_config.rs`), and on `InstanceStart` builds and runs the VM as
//! the QEMU front end does, handing the API socket to the running VM's event loop
//! (`vmm::api`). `--config-file` boots at once; with `--no-api` there is no socket at all.

pub mod args;
pub mod cpu_config;
pub mod preboot;
pub mod restore;
pub mod server;
pub mod vm_config;

use args::FcArgs;
use fc_api::model::{LogLevel, Logger};
use preboot::{LoggerError, Preboot, Refusal};
use std::path::PathBuf;
use vmm::api::ApiServer;
use vmm::startup::StartInstant;
use vmm::{Vm, VmExit};

#[derive(Debug, thiserror::Error)]
pub enum FcError {
    #[error("cannot read the config file {path}: {source}")]
    ReadConfig { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    ConfigFile(#[from] fc_api::config_file::ConfigFileError),
    /// A configuration request refused, with Firecracker's fault message.
    #[error("config file: {0}")]
    Refused(#[source] Refusal),
    #[error("--metadata {path}: {source}")]
    Metadata { path: PathBuf, source: MetadataError },
    #[error("--log-path: {0}")]
    LogPath(#[source] LoggerError),
    #[error("--metrics-path: {0}")]
    MetricsPath(#[source] Refusal),
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error(transparent)]
    Config(#[from] vm_config::ConfigError),
    #[error(transparent)]
    Vm(#[from] vmm::Error),
    #[error("Load snapshot error: {0}")]
    Restore(#[from] restore::RestoreError),
}

/// Why `--metadata`'s file cannot fill the MMDS.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("{0}")]
    Store(#[source] fc_api::mmds::MmdsError),
}

/// Why `InstanceStart` (or a load) could not build the VM: the 400's fault message.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("Start microvm error: {0}")]
    Vm(#[source] vmm::Error),
    #[error(transparent)]
    Front(FcError),
}

impl From<FcError> for StartError {
    fn from(e: FcError) -> StartError {
        match e {
            FcError::Vm(e) => StartError::Vm(e),
            e => StartError::Front(e),
        }
    }
}

/// Runs the VM the Firecracker way; the outcome as the QEMU front end gets it.
pub fn run(args: FcArgs, start: StartInstant) -> Result<VmExit, FcError> {
    apply_logger(&Logger {
        log_path: args.log_path.as_ref().map(|p| p.display().to_string()),
        level: args.level,
        ..Default::default()
    })
    .map_err(FcError::LogPath)?;
    let mut preboot = Preboot::new(args.id.clone(), !args.no_seccomp, args.mmds_size_limit);
    if let Some(path) = &args.metadata {
        load_metadata(&mut preboot, path)?;
    }
    if let Some(path) = &args.metrics_path {
        let metrics =
            fc_api::model::Metrics { metrics_path: path.display().to_string(), emit_id: false, properties: None };
        preboot.apply(fc_api::ApiRequest::PutMetrics(metrics), &apply_logger).map_err(FcError::MetricsPath)?;
    }
    let boot = |preboot: &mut Preboot| -> Result<Vm, FcError> {
        // `latencies_us.load_snapshot`: the load from its request to the VM rebuilt;
        // `vmm_load_snapshot` the rebuilding alone.
        let started = std::time::Instant::now();
        let load = preboot.take_load();
        let mut config = match &load {
            Some(load) => restore::load_config(preboot, load)?,
            None => preboot.vm_config()?,
        };
        config.report_start_time = args.boot_timer;
        let building = std::time::Instant::now();
        let vm = Vm::new(&config, start)?;
        if load.is_some() {
            metrics::record_latency(&metrics::LATENCIES.vmm_load_snapshot, building);
            metrics::record_latency(&metrics::LATENCIES.load_snapshot, started);
        }
        Ok(vm)
    };
    if let Some(path) = &args.config_file {
        let text = std::fs::read(path).map_err(|source| FcError::ReadConfig { path: path.clone(), source })?;
        for request in fc_api::config_file::parse(&text)? {
            preboot.apply(request, &apply_logger).map_err(FcError::Refused)?;
        }
        let mut vm = boot(&mut preboot)?;
        if !args.no_api {
            let listener = server::bind(&args.api_sock)?;
            report_startup(&args);
            let api =
                ApiServer::new(listener, args.api_sock.clone(), Vec::new(), args.max_payload, preboot.into_facts());
            vm.serve_api(api);
        } else if args.metrics_path.is_some() {
            // No socket, but the metrics' periodic lines.
            vm.serve_api(ApiServer::without_socket(preboot.into_facts()));
        }
        return Ok(vm.run()?);
    }
    let listener = server::bind(&args.api_sock)?;
    report_startup(&args);
    let (mut vm, connections) =
        server::serve_preboot(&listener, args.max_payload, &mut preboot, &apply_logger, |preboot| {
            boot(preboot).map_err(StartError::from)
        })?;
    let api = ApiServer::new(listener, args.api_sock.clone(), connections, args.max_payload, preboot.into_facts());
    vm.serve_api(api);
    Ok(vm.run()?)
}

/// `PUT /logger` and `--level`/`--log-path` on microvm's logger (its own line format:
/// `show_level` and `show_log_origin` change nothing).
fn apply_logger(logger: &Logger) -> Result<(), LoggerError> {
    if let Some(path) = &logger.log_path {
        crate::logger::log_appending_to(path.as_ref())
            .map_err(|source| LoggerError::Open { path: path.clone(), source })?;
    }
    if let Some(level) = logger.level {
        crate::logger::set_level(match level {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warning => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        });
    }
    Ok(())
}

fn load_metadata(preboot: &mut Preboot, path: &std::path::Path) -> Result<(), FcError> {
    let error = |source| FcError::Metadata { path: path.to_owned(), source };
    let text = std::fs::read(path).map_err(|e| error(MetadataError::Read(e)))?;
    let value = serde_json::from_slice(&text).map_err(|e| error(MetadataError::Json(e)))?;
    preboot.mmds().put(value).map_err(|e| error(MetadataError::Store(e)))
}

/// Firecracker's `api_server` metrics, once the API socket is served: the time since the
/// jailer's start and the CPU time since then (its own included), when it passed them.
fn report_startup(args: &FcArgs) {
    use crate::clock::now_us;
    if let Some(start) = args.start_time_us {
        metrics::API_SERVER.process_startup_time_us.set(now_us(libc::CLOCK_MONOTONIC).saturating_sub(start));
    }
    if let Some(start) = args.start_time_cpu_us {
        let cpu = now_us(libc::CLOCK_PROCESS_CPUTIME_ID).saturating_sub(start);
        metrics::API_SERVER.process_startup_time_cpu_us.set(cpu + args.parent_cpu_time_us.unwrap_or(0));
    }
}
