//! The vocabulary the allowlists are written in: one [`Rule`] per allowed form of a system
//! call. A call with several rules is allowed when any of them matches; a rule's conditions
//! must all hold. The tables in `filters/` are plain data in this vocabulary, so a reader sees
//! a thread's whole list in one file and the report prints exactly what is compiled.

use std::fmt;

/// One condition on a system call argument (registers are compared, never memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// The argument's low 32 bits equal the value (ioctl requests, commands, families).
    Eq { arg: u8, value: u32 },
    /// The argument's low 32 bits, masked, equal the value (flag words such as `prot`).
    Masked { arg: u8, mask: u32, value: u32 },
}

/// An allowed form of a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `libc`'s constant name, `SYS_read`; [`Rule::name`] is the call's name.
    pub sys: &'static str,
    pub nr: i64,
    /// What the arguments must be; empty: any arguments.
    pub conds: &'static [Cond],
    /// What the conditions mean, for the report (`KVM_RUN`, `no PROT_EXEC`).
    pub what: &'static str,
}

impl Rule {
    pub fn name(&self) -> &'static str {
        self.sys.strip_prefix("SYS_").unwrap_or(self.sys)
    }
}

/// `arg == value` (low 32 bits).
pub const fn eq(arg: u8, value: u32) -> Cond {
    Cond::Eq { arg, value }
}

/// `arg & mask == value` (low 32 bits).
pub const fn masked(arg: u8, mask: u32, value: u32) -> Cond {
    Cond::Masked { arg, mask, value }
}

/// A rule: `allow!(SYS_read)` for any arguments, or
/// `allow!(SYS_ioctl, "KVM_RUN", [eq(1, KVM_RUN)])` with conditions and their meaning.
#[macro_export]
macro_rules! allow {
    ($sys:ident) => {
        $crate::rules::Rule { sys: stringify!($sys), nr: ::libc::$sys, conds: &[], what: "" }
    };
    ($sys:ident, $what:expr, [$($cond:expr),+ $(,)?]) => {
        $crate::rules::Rule { sys: stringify!($sys), nr: ::libc::$sys, conds: &[$($cond),+], what: $what }
    };
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cond::Eq { arg, value } => write!(f, "arg{arg} == {value:#x}"),
            Cond::Masked { arg, mask, value } => write!(f, "arg{arg} & {mask:#x} == {value:#x}"),
        }
    }
}
