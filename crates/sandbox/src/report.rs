//! The host side of the attack surface, printed (`-M microvm,dump-seccomp`): for each
//! thread kind a command line runs, the system calls its filter allows and the argument
//! conditions, as compiled.

use crate::filters::rules_of;
use crate::rules::Rule;
use crate::ThreadKind;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The distinct system calls `kind`'s filter allows, each with its rules, by name.
pub fn allowed(kind: ThreadKind) -> BTreeMap<&'static str, Vec<&'static Rule>> {
    let mut calls: BTreeMap<&'static str, Vec<&'static Rule>> = BTreeMap::new();
    for rule in rules_of(kind) {
        calls.entry(rule.name()).or_default().push(rule);
    }
    calls
}

/// The report for the thread kinds present, with how many threads of each there are.
pub fn format(threads: &[(ThreadKind, usize)]) -> String {
    let mut out = String::new();
    for &(kind, count) in threads {
        let calls = allowed(kind);
        let conditional = calls.values().filter(|rules| rules.iter().all(|r| !r.conds.is_empty())).count();
        let _ = writeln!(
            out,
            "{} thread{} ({count}): {} system calls, {conditional} of them with argument conditions",
            kind.name(),
            if count == 1 { "" } else { "s" },
            calls.len()
        );
        for (name, rules) in &calls {
            if rules.iter().any(|r| r.conds.is_empty()) {
                let _ = writeln!(out, "  {name}");
                continue;
            }
            let forms: Vec<String> = rules
                .iter()
                .map(|r| {
                    let conds: Vec<String> = r.conds.iter().map(ToString::to_string).collect();
                    format!("{} ({})", r.what, conds.join(" && "))
                })
                .collect();
            let _ = writeln!(out, "  {name}: {}", forms.join(" | "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_printed_with_their_meaning() {
        let text = format(&[(ThreadKind::Vcpu, 2)]);
        assert!(text.starts_with("vcpu threads (2): "), "{text}");
        assert!(text.contains("\n  ioctl: KVM_RUN (arg1 == 0xae80) | "), "{text}");
        assert!(text.contains("\n  mmap: no PROT_EXEC (arg2 & 0x4 == 0x0)\n"), "{text}");
    }
}
