//! microvm's host-side confinement: each thread runs under a seccomp allowlist for its kind
//! (main/event loop with the monitors, vCPU, virtio device thread), installed after set-up
//! and before the guest runs. A call outside the list ends the process with SIGSYS after
//! one line that names the call and the thread (see `sigsys`).
//!
//! The lists are data (`filters/`, one file per thread kind plus the common list), compiled
//! with rust-vmm's seccompiler; [`report`] prints exactly what is compiled.

pub mod filters;
pub mod jail;
mod kvm_ioctls;
pub mod report;
pub mod rules;
mod sigsys;
mod spawn;
mod syscall_names;
mod vhost_ioctls;

use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
use std::collections::BTreeMap;

pub use spawn::{spawn, ThreadStart};
pub use syscall_names::syscall_name;

/// The kinds of thread microvm runs, each with its own allowlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThreadKind {
    /// The main thread: event loop, monitors, exit path.
    Main,
    /// A vCPU thread.
    Vcpu,
    /// The virtio device thread.
    Virtio,
}

impl ThreadKind {
    pub const ALL: [ThreadKind; 3] = [ThreadKind::Main, ThreadKind::Vcpu, ThreadKind::Virtio];

    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Virtio => "virtio",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp: cannot compile the {kind} thread's filter: {source}")]
    Compile { kind: &'static str, source: seccompiler::BackendError },
    #[error("seccomp: cannot install the {kind} thread's filter: {source}")]
    Install { kind: &'static str, source: seccompiler::Error },
    #[error("seccomp: cannot install the SIGSYS handler: {0}")]
    Handler(#[source] std::io::Error),
}

/// The compiled filters of every thread kind, or nothing with `-sandbox off`.
pub struct Sandbox {
    programs: Option<BTreeMap<ThreadKind, BpfProgram>>,
}

impl Sandbox {
    /// Compiles every kind's filter and installs the SIGSYS handler (`enabled`), or
    /// prepares to install nothing.
    pub fn new(enabled: bool) -> Result<Sandbox, Error> {
        if !enabled {
            return Ok(Sandbox { programs: None });
        }
        let programs = ThreadKind::ALL
            .into_iter()
            .map(|kind| Ok((kind, compile(kind)?)))
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
        sigsys::install_handler().map_err(Error::Handler)?;
        Ok(Sandbox { programs: Some(programs) })
    }

    pub fn enabled(&self) -> bool {
        self.programs.is_some()
    }

    /// Puts the calling thread under `kind`'s filter (and no_new_privs) for good.
    pub fn enter(&self, kind: ThreadKind) -> Result<(), Error> {
        let Some(program) = self.programs.as_ref().and_then(|p| p.get(&kind)) else { return Ok(()) };
        sigsys::set_thread_kind(kind);
        seccompiler::apply_filter(program).map_err(|source| Error::Install { kind: kind.name(), source })
    }
}

/// `kind`'s filter as BPF: its rules allowed, anything else trapped (SIGSYS).
pub fn compile(kind: ThreadKind) -> Result<BpfProgram, Error> {
    let error = |source| Error::Compile { kind: kind.name(), source };
    // seccompiler's form: a call mapped to no rule is allowed with any arguments.
    let mut rules: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in filters::rules_of(kind) {
        let chain = rules.entry(rule.nr).or_insert_with(|| Some(Vec::new()));
        match chain {
            _ if rule.conds.is_empty() => *chain = None,
            None => {}
            Some(chain) => {
                let conds = rule.conds.iter().map(condition).collect::<Result<Vec<_>, _>>().map_err(error)?;
                chain.push(SeccompRule::new(conds).map_err(error)?);
            }
        }
    }
    let rules = rules.into_iter().map(|(nr, chain)| (nr, chain.unwrap_or_default())).collect();
    let filter = seccompiler::SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        std::env::consts::ARCH.try_into().map_err(error)?,
    )
    .map_err(error)?;
    filter.try_into().map_err(error)
}

fn condition(cond: &rules::Cond) -> Result<SeccompCondition, seccompiler::BackendError> {
    let (arg, op, value) = match *cond {
        rules::Cond::Eq { arg, value } => (arg, SeccompCmpOp::Eq, value),
        rules::Cond::Masked { arg, mask, value } => (arg, SeccompCmpOp::MaskedEq(u64::from(mask)), value),
    };
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, u64::from(value))
}
