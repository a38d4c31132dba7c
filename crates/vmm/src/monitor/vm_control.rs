//! What QMP and HMP commands act on (`VmControl`: the machine, the facts fixed at set-up,
//! the device registry, power, migration state), the version microvm reports, and the
//! run-state actions both monitors offer. A file of its own so each command module and
//! the dispatcher depend on it, not on each other.

use crate::control::Machine;
use crate::device_info::{BlockInfo, ChardevInfo};
use crate::device_registry::DeviceRegistry;
use crate::exit::VmExit;
use crate::snapshot::SaveReport;
use qmp::QmpError;
use serde_json::{json, Value};

/// The QEMU release whose microvm machine and QMP shapes microvm follows; reported in
/// the greeting and `query-version` (clients gate features on it). microvm's own version
/// is in `package`.
pub const QEMU_VERSION: qmp::VersionTriple = qmp::VersionTriple { major: 9, minor: 2, micro: 0 };

/// What the commands act on and report: the machine and the facts fixed at set-up.
pub struct VmControl {
    pub machine: Machine,
    pub facts: Facts,
    /// Every device by id, for commands that act on one.
    pub devices: DeviceRegistry,
    /// The power button and keyboard (`system_powerdown`, `send-key`).
    pub power: crate::power::PowerControl,
    /// Migration capabilities and the last migration's outcome.
    pub migration: Migration,
}

/// What set-up decided, for the queries.
pub struct Facts {
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// The `dump-mtree` text, for `info mtree`.
    pub mtree: String,
    pub chardevs: Vec<ChardevInfo>,
    pub blocks: Vec<BlockInfo>,
    /// Guest RAM in bytes (`balloon` sizes are relative to it).
    pub mem_size: u64,
    /// The VM generation ID of `-device vmgenid`, as this start wrote it.
    pub vmgenid: Option<crate::vmgenid::Guid>,
}

/// `package` as distributions fill QEMU's (" (Debian 1:7.2+dfsg-7)"): HMP's `info version`
/// prints it right after the version numbers.
pub fn version() -> qmp::VersionInfo {
    qmp::VersionInfo { qemu: QEMU_VERSION, package: format!(" (microvm {})", env!("CARGO_PKG_VERSION")) }
}

/// `-version`'s first line, in QEMU's format so scripts that parse `version X.Y.Z` from it
/// read the QEMU release microvm follows, with microvm's own version as the package.
pub fn version_banner() -> String {
    let v = version();
    format!("QEMU emulator version {}.{}.{}{}", v.qemu.major, v.qemu.minor, v.qemu.micro, v.package)
}

pub fn greeting() -> qmp::Greeting {
    qmp::Greeting { version: version() }
}

impl VmControl {
    /// `stop` (QMP and HMP).
    pub fn stop(&mut self) -> Result<Value, QmpError> {
        control(self.machine.pause())
    }

    /// `cont` (QMP and HMP).
    pub fn cont(&mut self) -> Result<Value, QmpError> {
        control(self.machine.resume())
    }

    /// `quit` and `system_reset` (QMP and HMP): the VM ends with `why`.
    pub fn exit(&mut self, why: VmExit) -> Value {
        self.machine.request_exit(why);
        json!({})
    }
}

fn control(result: Result<(), crate::control::ControlError>) -> Result<Value, QmpError> {
    result.map(|()| json!({})).map_err(|e| QmpError::generic(e.to_string()))
}

/// What the monitors know of migrations.
#[derive(Debug, Default)]
pub struct Migration {
    /// `events`: MIGRATION events are sent (QEMU sends none without it).
    pub events: bool,
    /// `x-ignore-shared`: RAM in a shared backend file is not written; the restoring
    /// process maps the same file.
    pub ignore_shared: bool,
    /// `x-diff-snapshot`: a diff snapshot, of the pages written since the last one.
    pub diff: bool,
    pub(super) last: Option<Outcome>,
}

#[derive(Debug)]
pub(super) enum Outcome {
    Completed(SaveReport),
    Failed(String),
}
