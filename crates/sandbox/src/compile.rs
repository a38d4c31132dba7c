//! The lists of `filters/` as BPF, through rust-vmm's seccompiler. Run by `build.rs` (the
//! programs ship in the binary, so start-up only installs them) and by the crate's tests,
//! which check that what was built is what the lists say for the target's C library.

use crate::filters::rules_of;
use crate::rules::Cond;
use crate::ThreadKind;
use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// `kind`'s filter as BPF for `arch`: its rules allowed, anything else trapped (SIGSYS).
pub fn compile(kind: ThreadKind, arch: TargetArch) -> Result<BpfProgram, BackendError> {
    // seccompiler's form: a call mapped to no rule is allowed with any arguments.
    let mut rules: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in rules_of(kind) {
        let chain = rules.entry(rule.nr).or_insert_with(|| Some(Vec::new()));
        match chain {
            _ if rule.conds.is_empty() => *chain = None,
            None => {}
            Some(chain) => {
                let conds = rule.conds.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
                chain.push(SeccompRule::new(conds)?);
            }
        }
    }
    let rules = rules.into_iter().map(|(nr, chain)| (nr, chain.unwrap_or_default())).collect();
    SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, arch)?.try_into()
}

fn condition(cond: &Cond) -> Result<SeccompCondition, BackendError> {
    let (arg, op, value) = match *cond {
        Cond::Eq { arg, value } => (arg, SeccompCmpOp::Eq, value),
        Cond::Masked { arg, mask, value } => (arg, SeccompCmpOp::MaskedEq(u64::from(mask)), value),
    };
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, u64::from(value))
}
