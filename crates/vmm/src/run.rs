//! Running a built VM: its threads start, the main thread becomes the event loop (the
//! controller: VM end, monitors; the serial console's stdin; the CMOS clock's timer),
//! and when the VM ends every thread is stopped and joined before guest memory goes.

use crate::boot_trace::BootTimes;
use crate::config::SerialConfig;
use crate::control::Machine;
use crate::device_registry::DeviceHandle;
use crate::device_thread::DeviceThread;
use crate::event_loop::{Controller, StdinForwarder};
use crate::exit::VmExit;
use crate::monitor::{Facts, VmControl};
use crate::state::RunState;
use crate::vcpu::{install_kick_handler, VcpuContext, VcpuThreadOptions};
use crate::virtio_devices::ChardevInfo;
use crate::vm::{address_map, Vm};
use crate::Error;
use devices::terminal::RawTerminal;
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use sandbox::{Sandbox, ThreadKind};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Barrier, Mutex};

type MainLoop = EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>;

impl Vm {
    /// Runs the guest until it ends; returns why it ended. With `-S` the vCPUs wait in
    /// prelaunch until a monitor sends `cont`.
    pub fn run(self) -> Result<VmExit, Error> {
        let Vm {
            vcpus,
            vm_fd: _vm_fd,
            _kvm,
            mem: _mem,
            pio,
            mmio,
            serial,
            rtc_ticker,
            device_loop,
            inventory,
            monitors,
            reset,
            power,
            exit,
            signals,
            clock,
            config,
            boot_trace,
        } = self;
        let mut manager = MainLoop::new().map_err(Error::EventLoop)?;
        let mut chardevs = inventory.chardevs;
        let mut devices = inventory.registry;
        chardevs.extend(crate::monitor::chardev_infos(&config.monitors));
        let _raw_terminal = match &serial {
            Some((backend, port)) => {
                let filename = if *backend == SerialConfig::Stdio { "stdio" } else { "null" };
                chardevs.insert(0, ChardevInfo { label: "serial0".into(), filename: filename.into() });
                devices.insert(Some("serial0".into()), None, DeviceHandle::Serial(port.clone()))?;
                if *backend == SerialConfig::Stdio {
                    manager.add_subscriber(Arc::new(Mutex::new(StdinForwarder { serial: port.clone() })));
                    RawTerminal::enter(std::io::stdin().as_raw_fd())
                } else {
                    None
                }
            }
            None => None,
        };
        if let Some(ticker) = rtc_ticker {
            manager.add_subscriber(Arc::new(Mutex::new(ticker)));
        }
        // Only monitors can ask for the map: no cost on the start path without one.
        let mtree = if monitors.is_empty() {
            String::new()
        } else {
            crate::address_map::format_mtree(&address_map(config.mem_size, config.machine.pit, &pio, &mmio, &power))
        };

        // Files written at exit are opened now: the main thread's filter has no open.
        let trace_json = match boot_trace.as_ref().and_then(|(trace, _)| trace.json.as_ref()) {
            Some(path) => Some((
                path.clone(),
                std::fs::File::create(path).map_err(|source| Error::Report { path: path.clone(), source })?,
            )),
            None => None,
        };
        let sandbox = Arc::new(Sandbox::new(config.sandbox)?);
        // Every thread (main, virtio, vCPUs) meets here once under its filter: no guest
        // instruction runs, and no guest-driven work is served, before all are confined.
        let start_gate = Arc::new(Barrier::new(vcpus.len() + 1 + usize::from(device_loop.is_some())));
        let device_thread = device_loop
            .map(|l| DeviceThread::spawn(l, exit.clone(), sandbox.clone(), start_gate.clone()))
            .transpose()?;
        install_kick_handler().map_err(|source| Error::Io { what: "cannot install the vCPU kick handler", source })?;
        let ctx = Arc::new(VcpuContext { pio, mmio, exit: exit.clone(), clock: clock.clone(), start_gate, sandbox });
        let mut handles = Vec::with_capacity(vcpus.len());
        for vcpu in vcpus {
            let id = vcpu.id();
            // QEMU's thread names with debug-threads=on, so tools that look for them work.
            let name = if config.debug_threads { format!("CPU {id}/KVM") } else { format!("vcpu{id}") };
            handles.push(vcpu.spawn(ctx.clone(), VcpuThreadOptions { name, parked: config.start_paused })?);
        }
        // The last thread to be confined; then the vCPUs may enter the guest.
        let confined = ctx.sandbox.enter(ThreadKind::Main);
        ctx.start_gate.wait();
        if let Err(e) = confined {
            exit.notify(VmExit::DeviceError(e.to_string()));
        }
        let state = if config.start_paused { RunState::Prelaunch } else { RunState::Running };
        let machine = Machine::new(state, handles, device_thread, exit.clone());
        let facts = Facts {
            name: config.name.clone(),
            uuid: config.uuid.clone(),
            mtree,
            chardevs,
            blocks: inventory.blocks,
            mem_size: config.mem_size,
        };
        let controller = Arc::new(Mutex::new(Controller {
            vm: VmControl { machine, facts, devices, power: power.control },
            monitors,
            exit,
            reset,
            poweroff: power.poweroff,
            no_shutdown: config.no_shutdown,
            signals,
            ended: None,
        }));
        manager.add_subscriber(controller.clone());

        let outcome = loop {
            if let Err(e) = manager.run() {
                break Err(Error::EventLoop(e));
            }
            if let Some(reason) = lock(&controller).ended.clone() {
                break Ok(reason);
            }
        };
        let guest_exit = clock.elapsed();
        {
            let mut controller = lock(&controller);
            // Guest memory is unmapped when this function returns: every vCPU must be out
            // of KVM_RUN first, or it would run on a vanished mapping.
            controller.vm.machine.teardown();
            controller.monitors.flush_before_exit();
        }
        let _ = std::io::stdout().flush();
        if let Some((_, checkpoints)) = &boot_trace {
            let times = BootTimes::new(clock.first_run().map(|f| f.wall), checkpoints, Some(guest_exit));
            report_boot_times(&times, trace_json)?;
        }
        outcome
    }
}

fn lock(controller: &Mutex<Controller>) -> std::sync::MutexGuard<'_, Controller> {
    controller.lock().unwrap_or_else(|p| p.into_inner())
}

fn report_boot_times(times: &BootTimes, json: Option<(std::path::PathBuf, std::fs::File)>) -> Result<(), Error> {
    eprint!("{}", times.table());
    if let Some((path, mut file)) = json {
        file.write_all(times.json().as_bytes()).map_err(|source| Error::Report { path, source })?;
    }
    Ok(())
}
