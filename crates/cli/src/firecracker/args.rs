//! Firecracker's command line: `--api-sock PATH`, `--config-file FILE`, `--no-api`, `--id`,
//! the logger and metrics flags, `--no-seccomp`, the API's size limits. Values follow their
//! flag (`--id vm1`) or an `=` (`--id=vm1`). Every error is one line.

use fc_api::model::LogLevel;
use std::path::PathBuf;

/// Firecracker's defaults.
pub const DEFAULT_API_SOCK: &str = "/run/firecracker.socket";
pub const DEFAULT_ID: &str = "anonymous-instance";

/// Longest `--id` Firecracker takes.
const MAX_ID_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FcArgs {
    pub api_sock: PathBuf,
    pub config_file: Option<PathBuf>,
    pub no_api: bool,
    pub id: String,
    pub boot_timer: bool,
    pub level: Option<LogLevel>,
    pub log_path: Option<PathBuf>,
    pub show_level: bool,
    pub show_log_origin: bool,
    pub metrics_path: Option<PathBuf>,
    pub no_seccomp: bool,
    pub max_payload: usize,
    /// `--mmds-size-limit`; Firecracker's default is the payload limit.
    pub mmds_size_limit: usize,
    /// `--metadata FILE`: the MMDS store's first contents.
    pub metadata: Option<PathBuf>,
    /// The jailer's `--start-time-us` (CLOCK_MONOTONIC), `--start-time-cpu-us` (its process
    /// CPU clock) and `--parent-cpu-time-us`: the `api_server` metrics' starting points.
    pub start_time_us: Option<u64>,
    pub start_time_cpu_us: Option<u64>,
    pub parent_cpu_time_us: Option<u64>,
}

impl Default for FcArgs {
    fn default() -> Self {
        FcArgs {
            api_sock: DEFAULT_API_SOCK.into(),
            config_file: None,
            no_api: false,
            id: DEFAULT_ID.into(),
            boot_timer: false,
            level: None,
            log_path: None,
            show_level: false,
            show_log_origin: false,
            metrics_path: None,
            no_seccomp: false,
            max_payload: fc_api::http::DEFAULT_MAX_PAYLOAD,
            mmds_size_limit: fc_api::http::DEFAULT_MAX_PAYLOAD,
            metadata: None,
            start_time_us: None,
            start_time_cpu_us: None,
            parent_cpu_time_us: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FcCommand {
    /// Boxed: the arguments are large beside the other, empty, variants.
    Run(Box<FcArgs>),
    Version,
    Help,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FcArgError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("Argument '--{flag}': invalid value '{value}'.")]
    BadValue { flag: &'static str, value: String },
    #[error("Argument '--no-api' requires '--config-file'.")]
    NoApiWithoutConfig,
    #[error("--seccomp-filter: microvm's seccomp filters are its own (docs/sandbox.md); use --no-seccomp to run without them.")]
    SeccompFilter,
    #[error("--{0} is not supported by microvm.")]
    NotSupported(&'static str),
    #[error("Invalid instance ID: it must be 1 to 64 characters, alphanumeric or '-'.")]
    BadId,
}

/// Every flag Firecracker's binary takes, and whether it takes a value.
const FLAGS: &[(&str, bool)] = &[
    ("api-sock", true),
    ("config-file", true),
    ("no-api", false),
    ("id", true),
    ("boot-timer", false),
    ("level", true),
    ("log-path", true),
    ("show-level", false),
    ("show-log-origin", false),
    ("module", true),
    ("metrics-path", true),
    ("no-seccomp", false),
    ("seccomp-filter", true),
    ("http-api-max-payload-size", true),
    ("mmds-size-limit", true),
    ("metadata", true),
    ("start-time-us", true),
    ("start-time-cpu-us", true),
    ("parent-cpu-time-us", true),
    ("enable-pci", false),
    ("snapshot-version", false),
    ("describe-snapshot", true),
    ("version", false),
    ("help", false),
];

/// Whether this command line is Firecracker's: the program is called `firecracker` (a
/// link) or as Firecracker's release binaries are (`firecracker-v1.12.0-x86_64`), or its
/// first argument is one of Firecracker's flags. `--help` and `--version`
/// alone do not count: QEMU takes them too, and tools ask QEMU for its version that way.
/// Firecracker's rule for an instance id (`--id` of `firecracker` and of `jailer`).
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub fn selected(argv0: &str, args: &[String]) -> bool {
    let program = argv0.rsplit('/').next().unwrap_or(argv0);
    if program == "firecracker" || program.starts_with("firecracker-v") {
        return true;
    }
    let Some(first) = args.first().and_then(|a| a.strip_prefix("--")) else { return false };
    let name = first.split('=').next().unwrap_or(first);
    name != "help" && name != "version" && FLAGS.iter().any(|(flag, _)| *flag == name)
}

/// Why a flag could not be read, in Firecracker's words (its two programs share them).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("Found argument '{0}' which wasn't expected, or isn't valid in this context.")]
    Unknown(String),
    #[error("Argument '{0}' requires a value.")]
    MissingValue(&'static str),
    #[error("Argument '{0}' does not take a value.")]
    UnexpectedValue(&'static str),
}

/// Reads the flag `arg` (`--name`, `--name value` or `--name=value`) of `flags` (name,
/// takes a value), taking its value from `rest` when it follows; a flag without a value
/// gets "". Firecracker's and its jailer's command lines are read alike.
pub fn next_flag<'a>(
    arg: &str,
    rest: &mut impl Iterator<Item = &'a String>,
    flags: &[(&'static str, bool)],
) -> Result<(&'static str, String), FlagError> {
    let Some(body) = arg.strip_prefix("--") else { return Err(FlagError::Unknown(arg.to_owned())) };
    let (name, inline) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (body, None),
    };
    let Some(&(flag, takes_value)) = flags.iter().find(|(f, _)| *f == name) else {
        return Err(FlagError::Unknown(arg.to_owned()));
    };
    match (takes_value, inline) {
        (true, Some(v)) => Ok((flag, v)),
        (true, None) => rest.next().cloned().map(|v| (flag, v)).ok_or(FlagError::MissingValue(flag)),
        (false, Some(_)) => Err(FlagError::UnexpectedValue(flag)),
        (false, None) => Ok((flag, String::new())),
    }
}

pub fn parse(args: &[String]) -> Result<FcCommand, FcArgError> {
    let mut parsed = FcArgs::default();
    let mut iter = args.iter();
    let mut help = false;
    let mut version = false;
    while let Some(arg) = iter.next() {
        let (flag, value) = next_flag(arg, &mut iter, FLAGS)?;
        let bad = || FcArgError::BadValue { flag, value: value.clone() };
        match flag {
            "api-sock" => parsed.api_sock = value.into(),
            "config-file" => parsed.config_file = Some(value.into()),
            "no-api" => parsed.no_api = true,
            "id" => {
                if !valid_id(&value) {
                    return Err(FcArgError::BadId);
                }
                parsed.id = value;
            }
            "boot-timer" => parsed.boot_timer = true,
            "level" => parsed.level = Some(LogLevel::parse(&value).ok_or_else(bad)?),
            "log-path" => parsed.log_path = Some(value.into()),
            "show-level" => parsed.show_level = true,
            "show-log-origin" => parsed.show_log_origin = true,
            "metrics-path" => parsed.metrics_path = Some(value.into()),
            "no-seccomp" => parsed.no_seccomp = true,
            "seccomp-filter" => return Err(FcArgError::SeccompFilter),
            "http-api-max-payload-size" => parsed.max_payload = value.parse().map_err(|_| bad())?,
            "mmds-size-limit" => parsed.mmds_size_limit = value.parse().map_err(|_| bad())?,
            "metadata" => parsed.metadata = Some(value.into()),
            // The jailer passes its start times; they only feed Firecracker's metrics.
            "start-time-us" => parsed.start_time_us = Some(value.parse().map_err(|_| bad())?),
            "start-time-cpu-us" => parsed.start_time_cpu_us = Some(value.parse().map_err(|_| bad())?),
            "parent-cpu-time-us" => parsed.parent_cpu_time_us = Some(value.parse().map_err(|_| bad())?),
            // A log filter by module: microvm's log has no module names to filter on.
            "module" => {}
            "enable-pci" | "snapshot-version" | "describe-snapshot" => return Err(FcArgError::NotSupported(flag)),
            "version" => version = true,
            "help" => help = true,
            _ => return Err(FlagError::Unknown(arg.clone()).into()),
        }
    }
    if help {
        return Ok(FcCommand::Help);
    }
    if version {
        return Ok(FcCommand::Version);
    }
    if parsed.no_api && parsed.config_file.is_none() {
        return Err(FcArgError::NoApiWithoutConfig);
    }
    Ok(FcCommand::Run(Box::new(parsed)))
}

pub const HELP: &str = "\
firecracker (microvm): Firecracker's command line and REST API in front of microvm

Usage: firecracker [--api-sock PATH] [--config-file FILE [--no-api]] [OPTIONS]

  --api-sock PATH                   the API's Unix socket (default /run/firecracker.socket)
  --config-file FILE                configure from FILE (Firecracker's JSON) and boot at once
  --no-api                          no API socket (needs --config-file)
  --id ID                           the instance id GET / reports (default anonymous-instance)
  --boot-timer                      report the time to the guest's first instruction
  --level LEVEL                     log level: Error, Warning, Info, Debug, Trace, Off
  --log-path PATH                   write the log to PATH
  --show-level, --show-log-origin   accepted; microvm's log lines have their own format
  --metrics-path PATH               metrics destination (a line per FlushMetrics)
  --no-seccomp                      run without microvm's seccomp filters
  --seccomp-filter FILE             refused: microvm's filters are its own
  --http-api-max-payload-size N     largest request body in bytes (default 51200)
  --mmds-size-limit N               largest MMDS store in bytes (default: the payload limit)
  --metadata FILE                   the MMDS store's first contents (JSON)
  --version, --help

The guest's console is the 16550 serial port on standard input and output.
See docs/firecracker-api.md for every endpoint and where microvm differs.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selection() {
        assert!(selected("/usr/bin/firecracker", &[]));
        assert!(selected("./firecracker-v1.12.0-x86_64", &[]));
        assert!(!selected("firecracker-containerd", &[]));
        assert!(selected("microvm", &args(&["--api-sock", "/tmp/s"])));
        assert!(selected("microvm", &args(&["--no-api=x"])));
        assert!(!selected("microvm", &args(&["--version"])), "QEMU's --version stays QEMU's");
        assert!(!selected("microvm", &args(&["-kernel", "k"])));
        assert!(!selected("qemu-system-x86_64", &[]));
    }

    #[test]
    fn flags_and_values() {
        let FcCommand::Run(a) = parse(&args(&[
            "--api-sock",
            "/tmp/fc.sock",
            "--id=vm-1",
            "--level",
            "Warning",
            "--http-api-max-payload-size",
            "1000",
            "--start-time-us",
            "12",
        ]))
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(a.api_sock, PathBuf::from("/tmp/fc.sock"));
        assert_eq!((a.id.as_str(), a.level, a.max_payload), ("vm-1", Some(LogLevel::Warning), 1000));
        assert_eq!(parse(&args(&["--version"])), Ok(FcCommand::Version));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&args(&["--no-api"])), Err(FcArgError::NoApiWithoutConfig));
        assert_eq!(parse(&args(&["--seccomp-filter", "f"])), Err(FcArgError::SeccompFilter));
        assert_eq!(parse(&args(&["--api-sock"])), Err(FcArgError::Flag(FlagError::MissingValue("api-sock"))));
        assert_eq!(parse(&args(&["--no-seccomp=1"])), Err(FcArgError::Flag(FlagError::UnexpectedValue("no-seccomp"))));
        assert_eq!(parse(&args(&["--id", "a b"])), Err(FcArgError::BadId));
        assert_eq!(parse(&args(&["-kernel"])), Err(FcArgError::Flag(FlagError::Unknown("-kernel".into()))));
        assert!(matches!(parse(&args(&["--level", "loud"])), Err(FcArgError::BadValue { flag: "level", .. })));
    }
}
