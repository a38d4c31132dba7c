//! The main thread when it runs the only vCPU itself (`vmm::solo`): a vCPU's list (in
//! `lists_of`) plus what the main thread does around KVM_RUN and at the end.

use crate::allow;
use crate::rules::Rule;

pub const SOLO: &[Rule] = &[
    // After each exit to the VMM: a pending SIGINT/SIGTERM/SIGHUP (blocked outside
    // KVM_RUN, no signalfd: vmm/src/signals.rs) ends the VM. (No `read`: the i8042's
    // reset tells the exit notifier, with no eventfd to read: vmm/src/exit.rs.)
    allow!(SYS_rt_sigtimedwait),
    // At exit: the pidfile is removed, as QEMU does.
    allow!(SYS_unlink),
    allow!(SYS_unlinkat),
];
