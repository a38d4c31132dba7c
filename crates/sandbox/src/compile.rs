//! The lists of `filters/` as classic BPF for seccomp, x86_64. Run by `build.rs` (the programs
//! ship in the binary, so start-up only installs them) and by the crate's tests, which check
//! that what was built is what the lists say for the C library linked, and that every
//! program decides every call as rust-vmm's seccompiler's translation of the same lists does.
//!
//! Why not seccompiler's program itself: it tests the calls one after another (five
//! instructions per call), and installing a filter makes the kernel run it for every system
//! call number to build its cache of always-allowed calls, then JIT it; a 265-instruction
//! program took ~120 us to install here against ~65 us for a short one. This one finds the
//! call by binary search on its number (a `jge` per level, `jeq` at the leaves) and checks
//! arguments only after, so a call costs about log2(calls) + 2 instructions. The forms of a
//! call that each test one argument the same way (the vCPU's 24 ioctl requests, futex's six
//! commands) load it once and compare it with each value in turn: 2n instructions become
//! n + 1, and the install's cost follows the program's length (JIT: ~0.3 us an instruction
//! here, docs/start-path.md).

use crate::filters::rules_of;
use crate::rules::Cond;
use crate::ThreadKind;
use std::collections::BTreeMap;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// linux/filter.h, linux/seccomp.h, linux/audit.h.
pub const LD_W_ABS: u16 = 0x20;
pub const JA: u16 = 0x05;
pub const JEQ_K: u16 = 0x15;
pub const JGE_K: u16 = 0x35;
pub const AND_K: u16 = 0x54;
pub const RET_K: u16 = 0x06;
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `struct seccomp_data`: nr, arch, instruction pointer, then the six arguments.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// A leaf range this small is tested call by call rather than split again.
const LINEAR_BELOW: usize = 4;

/// `kind`'s filter: its rules allowed, any other call trapped (SIGSYS), another
/// architecture's calls killed.
pub fn compile(kind: ThreadKind) -> Vec<Insn> {
    // A call mapped to no rule list is allowed with any arguments.
    let mut calls: BTreeMap<u32, Option<Vec<&'static [Cond]>>> = BTreeMap::new();
    for rule in rules_of(kind) {
        let entry = calls.entry(rule.nr as u32).or_insert_with(|| Some(Vec::new()));
        match entry {
            _ if rule.conds.is_empty() => *entry = None,
            None => {}
            Some(forms) => forms.push(rule.conds),
        }
    }
    // Built from the end: every jump's target is placed before the jump itself.
    let mut b = Builder::default();
    let allow = b.push(ret(RET_ALLOW));
    let trap = b.push(ret(RET_TRAP));
    let mut leaves = Vec::with_capacity(calls.len());
    for (&nr, forms) in calls.iter().rev() {
        let target = match forms {
            None => allow,
            Some(forms) => b.arguments(forms, allow, trap),
        };
        leaves.push((nr, target));
    }
    leaves.reverse();
    let tree = b.search(&leaves, trap);
    let nr = b.push_before(load(OFFSET_NR), tree);
    let kill = b.push(ret(RET_KILL_PROCESS));
    b.jump(JEQ_K, AUDIT_ARCH_X86_64, nr, kill);
    b.push(load(OFFSET_ARCH));
    b.finish()
}

pub(crate) fn ret(action: u32) -> Insn {
    Insn { code: RET_K, jt: 0, jf: 0, k: action }
}

pub(crate) fn load(offset: u32) -> Insn {
    Insn { code: LD_W_ABS, jt: 0, jf: 0, k: offset }
}

/// Instructions in reverse program order; a label is an index into them.
#[derive(Default)]
pub(crate) struct Builder {
    rev: Vec<Insn>,
}

pub(crate) type Label = usize;

impl Builder {
    /// Places `insn` before everything placed so far; returns its label.
    pub(crate) fn push(&mut self, insn: Insn) -> Label {
        self.rev.push(insn);
        self.rev.len() - 1
    }

    /// Places `insn`, which must fall through to `next`, the last instruction placed.
    pub(crate) fn push_before(&mut self, insn: Insn, next: Label) -> Label {
        debug_assert_eq!(next + 1, self.rev.len());
        self.push(insn)
    }

    /// How far a jump placed now skips to reach `target` (0: the next instruction).
    fn distance(&self, target: Label) -> usize {
        self.rev.len() - 1 - target
    }

    /// A conditional jump: to `yes` if `A <op> k`, else to `no`. Targets beyond the 255
    /// instructions a conditional jump can skip go through an unconditional `ja` placed
    /// right after it.
    pub(crate) fn jump(&mut self, code: u16, k: u32, mut yes: Label, mut no: Label) -> Label {
        loop {
            let (t, f) = (self.distance(yes), self.distance(no));
            match (u8::try_from(t), u8::try_from(f)) {
                (Ok(jt), Ok(jf)) => return self.push(Insn { code, jt, jf, k }),
                (Err(_), _) => yes = self.push(Insn { code: JA, jt: 0, jf: 0, k: t as u32 }),
                (_, Err(_)) => no = self.push(Insn { code: JA, jt: 0, jf: 0, k: f as u32 }),
            }
        }
    }

    /// The argument checks of one call: any form whose conditions all hold allows it.
    fn arguments(&mut self, forms: &[&'static [Cond]], allow: Label, trap: Label) -> Label {
        let mut next_form = trap;
        for check in checks(forms).iter().rev() {
            next_form = match check {
                Check::OneOf { arg, mask, values } => {
                    let mut miss = next_form;
                    for &value in values.iter().rev() {
                        miss = self.jump(JEQ_K, value, allow, miss);
                    }
                    self.load_argument(*arg, *mask, miss)
                }
                Check::All(conds) => {
                    let mut holds = allow;
                    for cond in conds.iter().rev() {
                        let (arg, mask, value) = split(cond);
                        let test = self.jump(JEQ_K, value, holds, next_form);
                        holds = self.load_argument(arg, mask, test);
                    }
                    holds
                }
            };
        }
        next_form
    }

    /// Places the load of argument `arg`'s low 32 bits (little-endian, as the rules say),
    /// masked, before `next`, the last instruction placed.
    fn load_argument(&mut self, arg: u8, mask: Option<u32>, next: Label) -> Label {
        let masked = match mask {
            Some(mask) => self.push_before(Insn { code: AND_K, jt: 0, jf: 0, k: mask }, next),
            None => next,
        };
        self.push_before(load(OFFSET_ARGS + 8 * u32::from(arg)), masked)
    }

    /// Binary search of the call number (in A) among `leaves` (sorted): each found call
    /// goes to its target, any other to `miss`.
    fn search(&mut self, leaves: &[(u32, Label)], miss: Label) -> Label {
        if leaves.len() < LINEAR_BELOW {
            let mut next = miss;
            for &(nr, target) in leaves.iter().rev() {
                next = self.jump(JEQ_K, nr, target, next);
            }
            return next;
        }
        let mid = leaves.len() / 2;
        let upper = self.search(&leaves[mid..], miss);
        let lower = self.search(&leaves[..mid], miss);
        self.jump(JGE_K, leaves[mid].0, upper, lower)
    }

    pub(crate) fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// How a call's forms are tested: every single-condition form on the same argument and
/// mask in one [`Check::OneOf`] (where the first of them stood), any other form alone.
/// Forms are alternatives, so their order changes no decision, only which comes first.
enum Check {
    OneOf { arg: u8, mask: Option<u32>, values: Vec<u32> },
    All(&'static [Cond]),
}

fn checks(forms: &[&'static [Cond]]) -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    for &conds in forms {
        let [cond] = conds else {
            checks.push(Check::All(conds));
            continue;
        };
        let (arg, mask, value) = split(cond);
        let same = checks.iter_mut().find_map(|c| match c {
            Check::OneOf { arg: a, mask: m, values } if (*a, *m) == (arg, mask) => Some(values),
            _ => None,
        });
        match same {
            Some(values) if !values.contains(&value) => values.push(value),
            Some(_) => {}
            None => checks.push(Check::OneOf { arg, mask, values: vec![value] }),
        }
    }
    checks
}

/// A condition as (argument, mask if any, value the masked argument must equal).
fn split(cond: &Cond) -> (u8, Option<u32>, u32) {
    match *cond {
        Cond::Eq { arg, value } => (arg, None, value),
        Cond::Masked { arg, mask, value } => (arg, Some(mask), value & mask),
    }
}
