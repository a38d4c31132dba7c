//! Solo mode: the main thread runs the only vCPU itself. A command line with one vCPU and
//! nothing for an event loop to serve (no virtio device, monitor, mux, serial port, CMOS
//! clock, ACPI power-off, `-S`) leaves the main loop only the VM's end and the stop
//! signals to wait for, both of which the vCPU can see between its exits. A second thread
//! would cost its start, its seccomp filter, the start gate, the kick and the join at the
//! end: ~0.2 ms of process CPU per start on the project's machine (docs/start-path.md).
//!
//! The stop signals stay blocked on the thread except inside KVM_RUN
//! (KVM_SET_SIGNAL_MASK), so one arriving while the guest runs makes KVM_RUN return EINTR
//! and stays pending; the thread then takes it with sigtimedwait. Nothing waits on an
//! event loop here, so `Vm::build` opens no signalfd, no exit eventfd and no reset
//! eventfd for a solo VM: the i8042's reset command tells the exit notifier directly
//! (`exit::ResetByNotifier`), which the thread asks after each exit.
//! The thread runs under its own filter, `solo`: KVM_RUN and the error line's registers,
//! sigtimedwait and pidfile removal (`crates/sandbox/src/filters/solo.rs`).

use crate::boot_trace::{open_trace_json, report_boot_times};
use crate::error::{ConfigError, Error};
use crate::exit::VmExit;
use crate::startup::step;
use crate::vcpu::{GuestErrorLog, VcpuContext};
use crate::vm::Vm;
use sandbox::{Sandbox, ThreadKind};
use std::io::Write;
use std::sync::{Arc, Barrier};

impl Vm {
    /// `run` for a command line of [`crate::config::VmConfig::runs_solo`].
    pub(crate) fn run_solo(self) -> Result<VmExit, Error> {
        let Vm {
            mut vcpus,
            pio,
            mmio,
            exit,
            signals,
            clock,
            config,
            boot_trace,
            snapshotter,
            prefetch,
            running_signal,
            restored_clock,
            ..
        } = self;
        // No second thread to fault the working set in while the guest runs: now, mapped
        // for the guest too where KVM can.
        if let (Some(list), Some(vcpu)) = (&prefetch, vcpus.first()) {
            if !crate::snapshot::prefetch::map_ahead(vcpu, &snapshotter.mem, list) {
                crate::snapshot::prefetch::prefault(&snapshotter.mem, &list.runs);
            }
        }
        let vcpu = vcpus.pop().ok_or_else(|| Error::from(ConfigError::NoVcpu))?;
        let trace_json = open_trace_json(&boot_trace)?;
        vcpu.set_guest_signal_mask(
            crate::signals::guest_mask().map_err(|source| Error::Io { what: "cannot read the signal mask", source })?,
        )?;
        let sandbox = Sandbox::new(config.sandbox)?;
        let ctx = VcpuContext {
            pio,
            mmio,
            exit,
            clock: clock.clone(),
            guest_errors: config.guest_errors.then(GuestErrorLog::default),
            // Alone: nobody to meet.
            start_gate: Arc::new(Barrier::new(1)),
            sandbox: Arc::new(sandbox),
        };
        // The start-up code's pages go back, and guest RAM is offered to KSM, once the VM
        // has run a while.
        crate::after_start::note(&snapshotter.mem, config.machine.mem_merge);
        crate::after_start::arm()
            .map_err(|source| Error::Io { what: "cannot arm the work after the start", source })?;
        step("main loop");
        // A restore's clock last, as in `run`: the guest's time goes on from the saved
        // instant at its first instruction.
        if let Some(clock) = restored_clock {
            clock.set(&snapshotter.vm).map_err(|e| Error::from(crate::snapshot::SnapshotError::from(e)))?;
        }
        ctx.sandbox.enter(ThreadKind::Solo)?;
        step("main filter");
        drop(running_signal);
        let outcome = vcpu.run_solo(&ctx, &signals);
        let guest_exit = clock.elapsed();
        crate::after_start::log_refusal();
        step("guest ended");
        let _ = std::io::stdout().flush();
        report_boot_times(&boot_trace, &clock, guest_exit, trace_json)?;
        Ok(outcome)
    }
}
