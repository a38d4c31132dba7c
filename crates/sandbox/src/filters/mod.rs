//! The allowlists, one file per thread kind, each added to the common list. To give a new
//! thread its list: add a [`ThreadKind`], a file here, and a line in [`rules_of`].

mod common;
mod main_loop;
mod vcpu;
mod virtio;

use crate::rules::Rule;
use crate::ThreadKind;

pub use common::COMMON;

/// The kind's own rules (without the common ones).
pub fn own_rules(kind: ThreadKind) -> &'static [Rule] {
    match kind {
        ThreadKind::Main => main_loop::MAIN,
        ThreadKind::Vcpu => vcpu::VCPU,
        ThreadKind::Virtio => virtio::VIRTIO,
    }
}

/// Every rule a thread of `kind` runs under.
pub fn rules_of(kind: ThreadKind) -> impl Iterator<Item = &'static Rule> {
    COMMON.iter().chain(own_rules(kind))
}
