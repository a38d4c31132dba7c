//! The main thread when it runs the only vCPU itself (`vmm::solo`): running the guest (the
//! vCPU's `RUN` list, in `lists_of`) plus what the main thread does around KVM_RUN and at
//! the end. Not the rest of a vCPU thread's list: a solo VM has no device, chardev, CMOS
//! clock, monitor or snapshot for the thread to serve, and the filter is installed on
//! every start (each instruction costs its JIT; docs/start-path.md).

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
