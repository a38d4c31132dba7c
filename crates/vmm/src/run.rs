//! Running a built VM: its threads start, the main thread becomes the event loop (the
//! controller: VM end, monitors; the serial console's stdin; the CMOS clock's timer),
//! and when the VM ends every thread is stopped and joined before guest memory goes. A
//! command line with one vCPU and nothing for that loop to serve runs in solo mode instead
//! (`solo.rs`: the main thread runs the vCPU).

use crate::boot_trace::{open_trace_json, report_boot_times};
use crate::control::Machine;
use crate::device_registry::DeviceHandle;
use crate::device_thread::DeviceThread;
use crate::error::Error;
use crate::event_loop::Controller;
use crate::exit::{DeviceFailure, VmExit};
use crate::guest_changes::GuestChanges;
use crate::monitor::{Facts, VmControl};
use crate::serial::{drain, SerialChardev};
use crate::startup::step;
use crate::state::RunState;
use crate::vcpu::{install_kick_handler, GuestErrorLog, VcpuContext, VcpuThreadOptions};
use crate::vm::{address_map, Vm};
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use sandbox::{Sandbox, ThreadFailure, ThreadKind, ThreadStart};
use std::io::Write;
use std::sync::{Arc, Barrier, Mutex};

/// Starts a detached thread of `kind` (no start gate: its work comes only from gated
/// threads) running `body`; a failure it returns, or its filter's or a panic, ends the VM
/// with the reason. `what` names it in the error if it cannot start.
fn spawn_detached<B>(
    name: String,
    kind: ThreadKind,
    what: &'static str,
    exit: &Arc<crate::exit::ExitNotifier>,
    sandbox: &Arc<Sandbox>,
    body: B,
) -> Result<(), Error>
where
    B: FnOnce() -> Result<(), DeviceFailure> + Send + 'static,
{
    let (failed, ended) = (exit.clone(), exit.clone());
    let start = ThreadStart { name, kind, sandbox: sandbox.clone(), gate: None };
    let on_failure = move |failure: ThreadFailure| failed.notify(VmExit::DeviceError(failure.into()));
    sandbox::spawn(start, on_failure, move || {
        if let Err(e) = body() {
            ended.notify(VmExit::DeviceError(e));
        }
    })
    .map_err(|source| Error::Io { what, source })?;
    Ok(())
}

/// How long guest serial output may take to reach a slow peer at the end.
const SERIAL_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

type MainLoop = EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>;

impl Vm {
    /// Runs the guest until it ends; returns why it ended. With `-S` the vCPUs wait in
    /// prelaunch until a monitor sends `cont`.
    pub fn run(self) -> Result<VmExit, Error> {
        if self.config.runs_solo() {
            return self.run_solo();
        }
        let Vm {
            vcpus,
            snapshotter,
            pio,
            mmio,
            serial,
            rtc_ticker,
            device_loop,
            inventory,
            monitors,
            muxes,
            reset,
            power,
            exit,
            signals,
            clock,
            config,
            boot_trace,
            restored,
            restored_clock,
            api,
            prefetch,
            running_signal,
        } = self;
        let mut manager = MainLoop::new().map_err(Error::EventLoop)?;
        let mut chardevs = inventory.chardevs;
        let mut devices = inventory.registry;
        // Its timer is made here, before the sandbox (which has no timerfd_create).
        let guest_changes = inventory.guest_events.map(GuestChanges::new).transpose();
        let guest_changes =
            guest_changes.map_err(|source| Error::Io { what: "cannot create the event rate limit's timer", source })?;
        chardevs.extend(crate::monitor::chardev_infos(&config.monitors));
        chardevs.extend(muxes.iter().map(|m| m.info.clone()));
        let serial_chardev = serial.as_ref().map(SerialChardev::chardev);
        if let Some(serial) = serial {
            if let Some(info) = &serial.info {
                chardevs.insert(0, info.clone());
            }
            devices.insert(Some("serial0".into()), None, DeviceHandle::new("isa-serial", serial.port.clone()))?;
            // Its chardev (stdio in raw mode, a pty, a socket, ...) is served here.
            manager.add_subscriber(Arc::new(Mutex::new(serial)));
        }
        if let Some(ticker) = rtc_ticker {
            manager.add_subscriber(Arc::new(Mutex::new(ticker)));
        }
        // Only monitors can ask for the map: no cost on the start path without one.
        let mtree = if monitors.is_empty() && muxes.is_empty() {
            String::new()
        } else {
            crate::address_map::format_mtree(&address_map(config.mem_size, config.machine.pit, &pio, &mmio, &power))
        };

        // The working set of a listed snapshot, mapped for the guest before it runs where
        // KVM can (KVM_PRE_FAULT_MEMORY); else faulted in while it runs, below.
        let mapped_ahead = match (&prefetch, vcpus.first()) {
            (Some(list), Some(vcpu)) => crate::snapshot::prefetch::map_ahead(vcpu, &snapshotter.mem, list),
            _ => false,
        };

        let trace_json = open_trace_json(&boot_trace)?;
        step("main loop");
        let sandbox = Arc::new(Sandbox::new(config.sandbox)?);
        // Every thread (main, virtio, vCPUs) meets here once under its filter: no guest
        // instruction runs, and no guest-driven work is served, before all are confined.
        let device_threads = usize::from(device_loop.is_some()) + inventory.iothreads.len();
        let start_gate = Arc::new(Barrier::new(vcpus.len() + 1 + device_threads));
        let device_thread = device_loop
            .map(|l| DeviceThread::spawn(l, exit.clone(), sandbox.clone(), start_gate.clone()))
            .transpose()?;
        let mut iothreads = Vec::with_capacity(inventory.iothreads.len());
        for (id, event_loop) in inventory.iothreads {
            let start = ThreadStart {
                name: id,
                kind: ThreadKind::Iothread,
                sandbox: sandbox.clone(),
                gate: Some(start_gate.clone()),
            };
            iothreads.push(DeviceThread::spawn_as(event_loop, start, exit.clone())?);
        }
        // The pool workers need no start gate either: their jobs come only from gated
        // device threads. Each ends when its pool is dropped (after the drive waited for
        // its jobs, which write into guest memory).
        for (id, workers) in inventory.pool_workers {
            for (n, worker) in workers.into_iter().enumerate() {
                let (name, what) = (format!("aio-{id}-{n}"), "cannot start an aio=threads pool worker");
                spawn_detached(name, ThreadKind::AioWorker, what, &exit, &sandbox, move || {
                    worker.run();
                    Ok(())
                })?;
            }
        }
        // The 9p servers need no start gate: each confines itself (seccomp, then Landlock)
        // before it takes a request, and requests come only from the gated virtio thread.
        // They are not joined: they never touch guest memory, and each ends when its
        // device (the other end of its channel) is dropped.
        for (id, worker) in inventory.ninep_workers {
            let (name, what) = (format!("9p-{id}"), "cannot start a 9p server thread");
            spawn_detached(name, ThreadKind::Ninep, what, &exit, &sandbox, move || {
                worker.run().map_err(|e| DeviceFailure::Ninep(Arc::new(e)))
            })?;
        }
        install_kick_handler().map_err(|source| Error::Io { what: "cannot install the vCPU kick handler", source })?;
        let guest_errors = config.guest_errors.then(GuestErrorLog::default);
        let ctx = Arc::new(VcpuContext {
            pio,
            mmio,
            exit: exit.clone(),
            clock: clock.clone(),
            guest_errors,
            start_gate,
            sandbox,
        });
        // A restore's clock now, just before the vCPU threads start (the last step that
        // can fail before the gate): the guest's time goes on from the saved instant at its
        // first instruction, not from before the set-up above.
        if let Some(clock) = restored_clock {
            clock.set(&snapshotter.vm).map_err(|e| Error::from(crate::snapshot::SnapshotError::from(e)))?;
        }
        let mut handles = Vec::with_capacity(vcpus.len());
        for vcpu in vcpus {
            let id = vcpu.id();
            // QEMU's thread names with debug-threads=on, so tools that look for them work.
            let name = if config.debug_threads { format!("CPU {id}/KVM") } else { format!("vcpu{id}") };
            let parked = config.start_paused || config.incoming_defer;
            handles.push(vcpu.spawn(ctx.clone(), VcpuThreadOptions { name, parked })?);
        }
        step("threads");
        // The last thread to be confined; then the vCPUs may enter the guest.
        let confined = ctx.sandbox.enter(ThreadKind::Main);
        step("main filter");
        ctx.start_gate.wait();
        drop(running_signal);
        if let Err(e) = confined {
            exit.notify(VmExit::DeviceError(ThreadFailure::Confine(Arc::new(e)).into()));
        }
        // The guest runs now; its working set (read ahead at set-up) is mapped meanwhile.
        if let Some(list) = prefetch.as_ref().filter(|_| !mapped_ahead) {
            let bytes = crate::snapshot::prefetch::prefault(&snapshotter.mem, &list.runs);
            log::debug!("prefetch: {bytes} bytes of guest RAM faulted in while the guest runs");
        }
        crate::after_start::note(&snapshotter.mem, config.machine.mem_merge);
        // A restored VM has run already: with -S it waits paused, as QEMU's after -incoming.
        let state = match (config.start_paused, restored) {
            _ if config.incoming_defer => RunState::Inmigrate,
            (false, _) => RunState::Running,
            (true, false) => RunState::Prelaunch,
            (true, true) => RunState::Paused,
        };
        let machine = Machine::new(state, handles, device_thread, exit.clone())
            .with_iothreads(iothreads)
            .with_snapshotter(snapshotter)
            .with_autostart(!config.start_paused);
        let facts = Facts {
            name: config.name.clone(),
            uuid: config.uuid.clone(),
            mtree,
            chardevs,
            blocks: inventory.blocks,
            mem_size: config.mem_size,
            vmgenid: power.generation,
        };
        let controller = Arc::new(Mutex::new(Controller {
            vm: VmControl { machine, facts, devices, power: power.control, migration: Default::default() },
            monitors,
            api,
            muxes,
            exit,
            reset,
            poweroff: power.poweroff,
            no_shutdown: config.no_shutdown,
            signals,
            guest_changes,
            ended: None,
        }));
        manager.add_subscriber(controller.clone());

        // The start-up code's pages go back, and guest RAM is offered to KSM, once the VM
        // has run a while (`after_start.rs`): until then the loop's wait times out when
        // that is due. (What to advise was noted before the snapshotter moved.)
        let mut release_due = Some(std::time::Instant::now() + crate::after_start::AFTER);
        let outcome = loop {
            let waited = match release_due {
                Some(due) => {
                    let left = due.saturating_duration_since(std::time::Instant::now());
                    manager.run_with_timeout(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).saturating_add(1))
                }
                None => manager.run(),
            };
            if let Err(e) = waited {
                break Err(Error::EventLoop(e));
            }
            if release_due.is_some_and(|due| std::time::Instant::now() >= due) {
                crate::after_start::run_now();
                release_due = None;
            }
            if let Some(reason) = lock(&controller).ended.clone() {
                break Ok(reason);
            }
        };
        let guest_exit = clock.elapsed();
        step("guest ended");
        {
            let mut controller = lock(&controller);
            // Guest memory is unmapped when this function returns: every vCPU must be out
            // of KVM_RUN first, or it would run on a vanished mapping.
            controller.vm.machine.teardown();
            controller.monitors.flush_before_exit();
        }
        step("teardown");
        if let Some(chardev) = &serial_chardev {
            drain(chardev, SERIAL_DRAIN_TIMEOUT);
        }
        for mux in &mut lock(&controller).muxes {
            mux.drain(SERIAL_DRAIN_TIMEOUT);
        }
        let _ = std::io::stdout().flush();
        report_boot_times(&boot_trace, &clock, guest_exit, trace_json)?;
        outcome
    }
}

fn lock(controller: &Mutex<Controller>) -> std::sync::MutexGuard<'_, Controller> {
    controller.lock().unwrap_or_else(|p| p.into_inner())
}
