//! The programs built into the binary are the lists, and decide like seccompiler's: every
//! program is run in a small classic-BPF interpreter on every call number and on the
//! argument values the rules name (and their neighbours), next to seccompiler's translation
//! of the same lists, and the two must return the same action for every input.

use crate::compile::{self, Insn, AND_K, AUDIT_ARCH_X86_64, JA, JEQ_K, JGE_K, LD_W_ABS, RET_ALLOW, RET_K, RET_TRAP};
use crate::filters::rules_of;
use crate::rules::Cond;
use crate::{program, ThreadKind};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use std::collections::{BTreeMap, BTreeSet};

/// `kind`'s lists as seccompiler translates them (what microvm installed before build.rs).
fn seccompiler_program(kind: ThreadKind) -> BpfProgram {
    let condition = |cond: &Cond| {
        let (arg, op, value) = match *cond {
            Cond::Eq { arg, value } => (arg, SeccompCmpOp::Eq, value),
            Cond::Masked { arg, mask, value } => (arg, SeccompCmpOp::MaskedEq(u64::from(mask)), value),
        };
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, u64::from(value)).unwrap()
    };
    let mut rules: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in rules_of(kind) {
        let chain = rules.entry(rule.nr).or_insert_with(|| Some(Vec::new()));
        match chain {
            _ if rule.conds.is_empty() => *chain = None,
            None => {}
            Some(chain) => chain.push(SeccompRule::new(rule.conds.iter().map(condition).collect()).unwrap()),
        }
    }
    let rules = rules.into_iter().map(|(nr, chain)| (nr, chain.unwrap_or_default())).collect();
    let arch = std::env::consts::ARCH.try_into().unwrap();
    SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, arch).unwrap().try_into().unwrap()
}

/// `struct seccomp_data` as the filter reads it, in 32-bit words.
fn data(nr: u32, arch: u32, args: [u64; 6]) -> [u32; 16] {
    let mut words = [0u32; 16];
    (words[0], words[1]) = (nr, arch);
    for (i, arg) in args.iter().enumerate() {
        words[4 + 2 * i] = *arg as u32;
        words[5 + 2 * i] = (*arg >> 32) as u32;
    }
    words
}

/// Runs a program of the instructions both compilers use; the action it returns.
fn run(program: &[Insn], data: &[u32; 16]) -> u32 {
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let insn = program[pc];
        pc += 1;
        let skip = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            LD_W_ABS => a = data[insn.k as usize / 4],
            AND_K => a &= insn.k,
            JA => pc += insn.k as usize,
            JEQ_K => pc += skip(a == insn.k),
            JGE_K => pc += skip(a >= insn.k),
            RET_K => return insn.k,
            code => panic!("instruction {code:#x} at {} not interpreted", pc - 1),
        }
    }
}

/// Every argument value worth trying: those the rules name, with a bit more or less, with
/// the high half set (the rules read the low 32 bits), and the extremes.
fn interesting_values() -> Vec<u64> {
    let mut values = BTreeSet::from([0, 1, u64::from(u32::MAX), u64::MAX, 1 << 32]);
    for kind in ThreadKind::ALL {
        for cond in rules_of(kind).flat_map(|r| r.conds.iter()) {
            let (value, mask) = match *cond {
                Cond::Eq { value, .. } => (value, u32::MAX),
                Cond::Masked { mask, value, .. } => (value, mask),
            };
            for v in [value, value ^ 1, value | mask, value & !mask, !value, value ^ mask] {
                values.extend([u64::from(v), u64::from(v) | 0xffff_ffff_0000_0000]);
            }
        }
    }
    values.into_iter().collect()
}

#[test]
fn built_programs_are_the_lists() {
    for kind in ThreadKind::ALL {
        let built: Vec<Insn> =
            program(kind).iter().map(|i| Insn { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
        assert_eq!(built, compile::compile(kind), "{}", kind.name());
    }
}

#[test]
fn programs_decide_every_call_as_seccompiler_does() {
    let values = interesting_values();
    for kind in ThreadKind::ALL {
        let ours = compile::compile(kind);
        let theirs: Vec<Insn> =
            seccompiler_program(kind).iter().map(|i| Insn { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
        let numbers = (0..512).chain([0x4000_0000, 0x4000_0001, u32::MAX]);
        for nr in numbers {
            for arch in [AUDIT_ARCH_X86_64, 0x4000_0003] {
                let mut inputs = vec![[0u64; 6]];
                for arg in 0..6 {
                    for &v in &values {
                        let mut args = [0u64; 6];
                        args[arg] = v;
                        inputs.push(args);
                    }
                }
                for args in inputs {
                    let input = data(nr, arch, args);
                    let (a, b) = (run(&ours, &input), run(&theirs, &input));
                    assert_eq!(a, b, "{} nr {nr} arch {arch:#x} args {args:x?}", kind.name());
                }
            }
        }
    }
}

/// The snapshot file's open, as glibc (openat) and musl (open, with O_LARGEFILE) make it,
/// passes the main thread's filter whichever libc built the lists; other flags do not.
#[test]
fn main_thread_opens_the_snapshot_file_under_either_libc() {
    use crate::filters::{O_LARGEFILE_X86_64, SNAPSHOT_OPEN};
    let main = compile::compile(ThreadKind::Main);
    let open = |nr: i64, flags_arg: usize, flags: u32| {
        let mut args = [0u64; 6];
        args[flags_arg] = u64::from(flags);
        run(&main, &data(nr as u32, AUDIT_ARCH_X86_64, args))
    };
    for flags in [SNAPSHOT_OPEN, SNAPSHOT_OPEN | O_LARGEFILE_X86_64] {
        assert_eq!(open(libc::SYS_open, 1, flags), RET_ALLOW, "open {flags:#x}");
        assert_eq!(open(libc::SYS_openat, 2, flags), RET_ALLOW, "openat {flags:#x}");
    }
    // musl's flags of `migrate` in the rig: O_CLOEXEC|O_LARGEFILE|O_TRUNC|O_CREAT|O_RDWR.
    assert_eq!(open(libc::SYS_open, 1, 0x88242), RET_ALLOW);
    assert_ne!(open(libc::SYS_open, 1, libc::O_RDONLY as u32), RET_ALLOW);
    assert_ne!(open(libc::SYS_open, 1, SNAPSHOT_OPEN | libc::O_APPEND as u32), RET_ALLOW);
}

/// The lists' programs are short enough that no jump needs the long form; this one is not.
#[test]
fn far_targets_go_through_an_unconditional_jump() {
    let mut b = compile::Builder::default();
    let allow = b.push(compile::ret(RET_ALLOW));
    let mut trap = b.push(compile::ret(RET_TRAP));
    for _ in 0..300 {
        trap = b.push(compile::ret(RET_TRAP));
    }
    let test = b.jump(JEQ_K, 5, allow, trap);
    b.push_before(compile::load(0), test);
    let program = b.finish();
    assert_eq!(program[2].code, JA, "{:?}", &program[..3]);
    assert_eq!(run(&program, &data(5, 0, [0; 6])), RET_ALLOW);
    assert_eq!(run(&program, &data(6, 0, [0; 6])), RET_TRAP);
}

#[test]
fn programs_are_shorter_than_seccompilers() {
    for kind in ThreadKind::ALL {
        let (ours, theirs) = (compile::compile(kind).len(), seccompiler_program(kind).len());
        assert!(ours < theirs, "{}: {ours} instructions against {theirs}", kind.name());
    }
}
