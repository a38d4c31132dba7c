//! The allowlists, one file per thread kind, each added to the common list (and, for the
//! threads that serve chardevs, the chardev list). To give a new thread its list: add a
//! [`ThreadKind`], a file here, and a line in [`lists_of`].

mod block;
mod chardev_io;
mod common;
mod main_loop;
mod ninep;
mod solo;
mod vcpu;
mod virtio;

use crate::rules::Rule;
use crate::ThreadKind;

use common::COMMON;
#[cfg(test)]
pub(crate) use main_loop::{O_LARGEFILE_X86_64, SNAPSHOT_OPEN};

/// The lists a thread of `kind` runs under.
fn lists_of(kind: ThreadKind) -> &'static [&'static [Rule]] {
    use chardev_io::CHARDEV_IO;
    match kind {
        ThreadKind::Main => &[COMMON, CHARDEV_IO, main_loop::MAIN, main_loop::AFTER_START],
        ThreadKind::Vcpu => &[COMMON, vcpu::RUN, vcpu::VCPU],
        ThreadKind::Virtio => &[COMMON, CHARDEV_IO, block::EVENT_LOOP, block::BLOCK, virtio::VIRTIO],
        ThreadKind::Iothread => &[COMMON, block::EVENT_LOOP, block::BLOCK, block::IOTHREAD],
        ThreadKind::AioWorker => &[COMMON, block::AIO_WORKER],
        ThreadKind::Ninep => &[COMMON, ninep::NINEP],
        ThreadKind::Solo => &[COMMON, vcpu::RUN, solo::SOLO, main_loop::AFTER_START],
    }
}

/// Every rule a thread of `kind` runs under.
pub fn rules_of(kind: ThreadKind) -> impl Iterator<Item = &'static Rule> {
    lists_of(kind).iter().flat_map(|list| list.iter())
}
