//! Helpers shared by the parser's unit tests.

use std::path::PathBuf;

use vmm::config::{BlockConfig, ChardevBackend, ChardevConfig, ConsoleConfig, DeviceConfig, NetConfig, VmConfig};

use super::{parse, ArgsError, Command, Launch};

pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;

pub(super) fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| a.to_string()).collect()
}

/// Parses `extra` after a minimal valid command line.
pub(super) fn launch(extra: &[&str]) -> Result<Launch, ArgsError> {
    let mut v = args(&["-kernel", "vmlinux"]);
    v.extend(args(extra));
    match parse(v)? {
        Command::Run(launch) => Ok(launch),
        other => panic!("expected Run, got {other:?}"),
    }
}

/// The VM `extra` (after a minimal valid command line) describes.
pub(super) fn run(extra: &[&str]) -> Result<VmConfig, ArgsError> {
    launch(extra).map(|l| l.vm)
}

pub(super) fn err(extra: &[&str]) -> ArgsError {
    run(extra).expect_err("expected an error")
}

pub(super) fn err_full(full: &[&str]) -> ArgsError {
    parse(args(full)).expect_err("expected an error")
}

/// `vm` as a plain run (no process options).
pub(super) fn plain_run(vm: VmConfig) -> Command {
    Command::Run(Launch {
        vm,
        daemonize: false,
        pidfile: None::<PathBuf>,
        jail: None,
        log_file: None,
        warnings: Vec::new(),
    })
}

/// The error is an InvalidValue of `option` whose reason contains `reason`.
pub(super) fn assert_invalid(e: ArgsError, want_option: &str, want_in_reason: &str) {
    match &e {
        ArgsError::InvalidValue { option, reason, .. } => {
            assert_eq!(*option, want_option, "{e}");
            assert!(reason.contains(want_in_reason), "{e}");
        }
        _ => panic!("expected InvalidValue, got {e:?}"),
    }
}

pub(super) fn devs(extra: &[&str]) -> Vec<DeviceConfig> {
    run(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}")).devices
}

/// A drive with no settings: the kind's defaults.
pub(super) fn block(id: &str, path: &str) -> DeviceConfig {
    DeviceConfig::Block(BlockConfig::new(id, path))
}

/// A tap NIC with the kind's defaults but for its MAC.
pub(super) fn net(id: &str, ifname: Option<&str>, mac: Option<[u8; 6]>) -> DeviceConfig {
    let tap = vmm::config::NetBackend::Tap { ifname: ifname.map(Into::into), fd: None };
    DeviceConfig::Net(NetConfig { mac, ..NetConfig::new(id, tap) })
}

pub(super) fn console(id: &str, backend: ChardevBackend) -> DeviceConfig {
    DeviceConfig::Console(ConsoleConfig { chardev: ChardevConfig { id: id.into(), backend, logfile: None } })
}

pub(super) fn socket(path: &str, server: bool, wait: bool) -> ChardevBackend {
    ChardevBackend::Socket { path: path.into(), server, wait }
}
