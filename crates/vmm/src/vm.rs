//! The VM object: built once by [`Vm::new`] (every KVM object, guest memory, device and
//! backend), then either booted (the kernel loaded, vCPUs at its entry) or restored from
//! a snapshot (`-incoming`: RAM mapped from the file, every KVM and device state loaded);
//! then run by `Vm::run` (`run.rs`), which starts its threads and drives its state
//! through the `Machine` (`control.rs`) until it ends.

use crate::address_map::{kvm_regions, ram_regions, Owner, Region, Space};
use crate::boot::{build_cmdline, load_kernel};
use crate::boot_trace::BootTraceConfig;
use crate::config::{MemoryBackend, MonitorSocket, SerialConfig, VmConfig};
use crate::device_kinds::create_devices;
use crate::device_thread::DeviceEventLoop;
use crate::error::{io_err, ConfigError, Error};
use crate::exit::{ExitNotifier, VmExit};
use crate::irqfd::irqfd;
use crate::monitor::{MonitorServer, Mux};
use crate::power::{create_power_devices, tables_region, vmgenid_region, write_tables, PowerDevices};
use crate::prepared::PreparedVm;
use crate::rtc::{create_rtc, RtcTicker};
use crate::serial::SerialChardev;
use crate::signals::StopSignals;
use crate::snapshot::{LoadedSnapshot, MachineShape, SnapshotError, Snapshotter};
use crate::startup::{step, StartInstant, StartupClock};
use crate::vcpu::{CpuidTemplate, Vcpu, XsaveFits};
use crate::virtio_devices::DeviceInventory;
use arch::layout::{
    MAX_MEM_SIZE, MAX_VCPUS, MIN_MEM_SIZE, RTC_IRQ, RTC_PORT, RTC_PORT_LEN, SERIAL_COM1_IRQ, SERIAL_COM1_PORT,
    SERIAL_PORT_LEN,
};
use arch::regs::{write_boot_gdt, write_identity_page_tables, BootEntry};
use devices::bus::{Bus, BusDevice};
use devices::debug_port::{BootTracePort, GuestCheckpoints, BOOT_TRACE_PORT};
use devices::guest_memory::GuestMemoryMmap;
use devices::legacy::DebugExit;
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Cap, Kvm, VmFd};
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// One microVM, from set-up to teardown. Fields are filled by `new`; `run` moves the
/// threads' parts out into their threads and the rest into the `Machine`.
pub struct Vm {
    // Field order is drop order: vCPUs and the VM go before the memory
    // their slots point into.
    pub(crate) vcpus: Vec<Vcpu>,
    /// The KVM objects and guest memory, kept for snapshots.
    pub(crate) snapshotter: Snapshotter,
    pub(crate) pio: Arc<Bus>,
    pub(crate) mmio: Arc<Bus>,
    pub(crate) serial: Option<SerialChardev>,
    /// The CMOS clock's timer, served by the main thread's event loop (`rtc=on`).
    pub(crate) rtc_ticker: Option<RtcTicker>,
    /// Serves the virtio devices' queues and backends; `None` without devices.
    pub(crate) device_loop: Option<DeviceEventLoop>,
    /// What the devices are, for the monitor's queries.
    pub(crate) inventory: DeviceInventory,
    /// QMP monitors, listening (or connected) since set-up.
    pub(crate) monitors: MonitorServer,
    /// Mux chardevs and human monitors, served by the controller.
    pub(crate) muxes: Vec<Mux>,
    /// The i8042's (and ACPI's) reset event the main loop watches; `None` in solo mode,
    /// where the reset ends the VM through `exit` ([`crate::exit::ResetByNotifier`]).
    pub(crate) reset: Option<EventFd>,
    /// The power-off event, the power button and keyboard, the ACPI tables' place.
    pub(crate) power: PowerDevices,
    pub(crate) exit: Arc<ExitNotifier>,
    pub(crate) signals: StopSignals,
    pub(crate) clock: Arc<StartupClock>,
    pub(crate) config: VmConfig,
    pub(crate) boot_trace: Option<(BootTraceConfig, Arc<GuestCheckpoints>)>,
    /// Restored from a snapshot (`-incoming`), not booted.
    pub(crate) restored: bool,
    /// A restore's KVM clock, set just before the vCPUs first run (`snapshot::vm_state`).
    pub(crate) restored_clock: Option<crate::snapshot::RestoredClock>,
    /// Firecracker's API socket (the Firecracker front end), served next to the monitors.
    pub(crate) api: Option<crate::api::ApiServer>,
    /// A restore's working-set list (`FILE.pages`): read ahead at set-up, faulted in by
    /// the main thread while the vCPUs already run.
    pub(crate) prefetch: Option<crate::snapshot::prefetch::PageList>,
    /// Closed once every thread is confined and the vCPUs may run ([`Vm::close_once_running`]).
    pub(crate) running_signal: Option<std::os::fd::OwnedFd>,
}

impl Vm {
    /// Serves Firecracker's API socket while the VM runs (the Firecracker front end).
    pub fn serve_api(&mut self, api: crate::api::ApiServer) {
        self.api = Some(api);
    }

    /// Closes `fd` once the VM's set-up is over: every thread confined under its filter,
    /// the vCPUs free to run. The clone server's next clone waits for this end of file
    /// before it makes its own VM, so the two do not share the CPU while this one starts.
    pub fn close_once_running(&mut self, fd: std::os::fd::OwnedFd) {
        self.running_signal = Some(fd);
    }

    /// Descriptors the VM uses that it did not open itself (a monitor's `fd=N`): the jail
    /// must not close them with the other inherited ones.
    pub fn inherited_fds_in_use(&self) -> Vec<i32> {
        let monitors = self.config.monitors.iter();
        monitors.filter_map(|m| if let MonitorSocket::Fd(fd) = m.socket { Some(fd) } else { None }).collect()
    }
}

fn validate(config: &VmConfig) -> Result<(), Error> {
    if !(MIN_MEM_SIZE..=MAX_MEM_SIZE).contains(&config.mem_size) {
        return Err(ConfigError::MemorySize { size: config.mem_size }.into());
    }
    if !(1..=MAX_VCPUS).contains(&config.vcpu_count) {
        return Err(ConfigError::VcpuCount { count: config.vcpu_count }.into());
    }
    Ok(())
}

impl Vm {
    /// Does every piece of set-up, so that `run` only starts threads.
    /// `start` is when the process started (for start-up timing).
    pub fn new(config: &VmConfig, start: StartInstant) -> Result<Vm, Error> {
        validate(config)?;
        let shape = MachineShape::of(config);
        // A snapshot is read and checked before anything is built: a wrong file or
        // another machine is one line, and nothing of the VM exists yet.
        let incoming = Self::load_incoming(config)?;
        if incoming.is_some() {
            step("snapshot read");
        }
        Self::build(config, start, shape, incoming, None)
    }

    /// Reads and checks the snapshot `config` restores (`-incoming`), if any: what
    /// [`Vm::new`] does first, and what a clone server does once for all its clones.
    pub fn load_incoming(config: &VmConfig) -> Result<Option<LoadedSnapshot>, Error> {
        let shape = MachineShape::of(config);
        let file = file_backend(config);
        Ok(config.incoming.as_ref().map(|source| crate::snapshot::load(source, &shape, file)).transpose()?)
    }

    /// [`Vm::new`] restoring `snapshot`, read and decoded earlier (the clone server reads
    /// it once and forks a clone per request): only its machine is checked again against
    /// `config`, so the per-clone work is the KVM calls, the mapping and the devices, and
    /// only the devices and the state's loading when `prepared` (made by
    /// [`Vm::prepare_restore`] before the request) fits `config`'s machine; one that does
    /// not is dropped and the machine made again.
    pub fn new_restored(
        config: &VmConfig,
        start: StartInstant,
        snapshot: LoadedSnapshot,
        prepared: Option<PreparedVm>,
    ) -> Result<Vm, Error> {
        validate(config)?;
        let shape = MachineShape::of(config);
        snapshot.snapshot.shape.check(&shape).map_err(SnapshotError::from)?;
        if snapshot.memory.is_none() && !file_backend(config) {
            return Err(SnapshotError::NoMemory(snapshot.path.clone()).into());
        }
        Self::build(config, start, shape, Some(snapshot), prepared.filter(|p| p.fits(config)))
    }

    /// The machine's half of restoring `snapshot` with `config` (KVM VM, memory mapped,
    /// interrupt controllers, vCPUs created with the saved state that does not count time;
    /// nothing that does, no device, no thread), made ahead of [`Vm::new_restored`] by a
    /// clone waiting for its request.
    pub fn prepare_restore(config: &VmConfig, snapshot: &LoadedSnapshot) -> Result<PreparedVm, Error> {
        validate(config)?;
        PreparedVm::make(config, Some(snapshot), true)
    }

    fn build(
        config: &VmConfig,
        start: StartInstant,
        shape: MachineShape,
        incoming: Option<LoadedSnapshot>,
        prepared: Option<PreparedVm>,
    ) -> Result<Vm, Error> {
        let file_backend = file_backend(config);
        let shared_memory = config.memory.is_shareable() && file_backend;
        // Solo mode has no event loop to wake: no signalfd, no exit eventfd (solo.rs).
        let solo = config.runs_solo();
        // Before any thread exists, so that every thread inherits the mask.
        let signals = if solo { StopSignals::block_only() } else { StopSignals::install() };
        let signals = signals.map_err(io_err("cannot set up signal handling"))?;
        step("signals");
        let prepared = match prepared {
            Some(prepared) => prepared,
            None => PreparedVm::make(config, incoming.as_ref(), false)?,
        };
        let PreparedVm { vcpus: created, vm, kvm, mem, prefetch, .. } = prepared;

        let exit = match solo {
            true => ExitNotifier::unwatched(),
            false => ExitNotifier::new().map_err(io_err("cannot create the exit event"))?,
        };
        let exit = Arc::new(exit);
        // Solo: the i8042's reset goes straight to the notifier the vCPU loop asks.
        let reset = match solo {
            true => None,
            false => Some(EventFd::new(EFD_NONBLOCK).map_err(io_err("cannot create the reset event"))?),
        };
        let mut pio = Bus::new();
        let mut mmio = Bus::new();
        let mut power = create_power_devices(config, &vm, &mut pio, &mut mmio, reset.as_ref(), &exit)?;
        let boot_trace = match &config.trace_boot {
            Some(trace) => {
                let checkpoints = Arc::new(GuestCheckpoints::new(start.as_instant()));
                let port = BootTracePort::new(checkpoints.clone());
                add_device(&mut pio, u64::from(BOOT_TRACE_PORT), 1, "boot-trace", Arc::new(Mutex::new(port)))?;
                Some((trace.clone(), checkpoints))
            }
            None => None,
        };
        if let Some(debug_exit) = config.debug_exit {
            let notifier = exit.clone();
            let port = DebugExit::new(Box::new(move |status| notifier.notify(VmExit::DebugExit { status })));
            let (base, len) = (u64::from(debug_exit.iobase), u64::from(debug_exit.iosize));
            add_device(&mut pio, base, len, "isa-debug-exit", Arc::new(Mutex::new(port)))?;
        }
        // Before their front ends (serial port, consoles) attach to them.
        let mut muxes = config.muxes.iter().map(Mux::open).collect::<Result<Vec<_>, _>>()?;
        let serial = match &config.serial {
            Some(backend) => {
                let serial = create_serial(&vm, backend, &mut muxes)?;
                add_device(&mut pio, u64::from(SERIAL_COM1_PORT), SERIAL_PORT_LEN, "serial", serial.port.clone())?;
                Some(serial)
            }
            None => None,
        };
        let rtc_ticker = if config.machine.rtc {
            let irq = irqfd(&vm, RTC_IRQ, "irqfd registration for the RTC")?;
            let (rtc, ticker) = create_rtc(irq, config.rtc_localtime).map_err(io_err("cannot create the RTC timer"))?;
            add_device(&mut pio, u64::from(RTC_PORT), RTC_PORT_LEN, "rtc", rtc)?;
            Some(ticker)
        } else {
            None
        };

        let (device_loop, inventory) = if config.devices.is_empty() {
            (None, DeviceInventory::default())
        } else {
            let mut event_loop = DeviceEventLoop::new().map_err(Error::EventLoop)?;
            let inventory = create_devices(
                &config.devices,
                &config.packed_rings,
                &vm,
                &mem,
                &mut mmio,
                &mut event_loop,
                &mut muxes,
            )?;
            // Every device on an iothread: the virtio thread would serve nothing.
            (inventory.uses_virtio_thread.then_some(event_loop), inventory)
        };
        step("devices");
        let restored = incoming.is_some();
        // A restore with dirty-page tracking counts the next diff from the snapshot it
        // restored (unless RAM is a shared backend the snapshot did not hold).
        let diff_base =
            incoming.as_ref().filter(|s| config.track_dirty_pages && s.memory.is_some()).map(|s| s.state_crc);
        let (vcpus, restored_clock) = match incoming {
            None => (boot(config, &kvm, &vm, &mem, &inventory, &mut power)?, None),
            Some(snapshot) => {
                let (vcpus, clock) = restore(snapshot, &kvm, &vm, created, &mut power, [&pio, &mmio])?;
                (vcpus, Some(clock))
            }
        };
        if let Some(vmgenid) = &config.vmgenid {
            power.generation = Some(crate::vmgenid::start(vmgenid, &mem, restored, &power.control)?);
        }
        step("vcpus");
        // Last: a monitor with wait=on blocks here until its client connects.
        let monitors = MonitorServer::open(&config.monitors)?;
        step("monitors");
        let clock = Arc::new(StartupClock::new(start, config.report_start_time));
        let acpi_tables = power.tables.map(|t| (t.rsdp_address, t.end));
        let host_tsc_khz = vcpus.first().and_then(Vcpu::tsc_khz);
        let (pio, mmio) = (Arc::new(pio), Arc::new(mmio));
        let (buses_pio, buses_mmio) = (pio.clone(), mmio.clone());
        Ok(Vm {
            vcpus,
            snapshotter: Snapshotter {
                kvm,
                vm,
                mem,
                shape,
                acpi_tables,
                shared_memory,
                pio: buses_pio,
                mmio: buses_mmio,
                anonymous_memory: config.memory == crate::config::MemoryConfig::default(),
                host_tsc_khz,
                file_backed: file_backend,
                diff_base: std::cell::Cell::new(diff_base),
            },
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
            config: config.clone(),
            boot_trace,
            restored,
            restored_clock,
            api: None,
            prefetch,
            running_signal: None,
        })
    }

    /// Every region the guest can reach: RAM, KVM's in-kernel devices, and
    /// what is really on this VM's port and MMIO buses.
    pub fn address_map(&self) -> Vec<Region> {
        address_map(self.config.mem_size, self.config.machine.pit, &self.pio, &self.mmio, &self.power)
    }
}

/// Whether guest RAM is a `share=on` file backend another process can map (x-ignore-shared).
/// A named file backend outlives the process: x-ignore-shared leaves RAM in it, and a
/// restore maps it again, shared or (clones of a template, as Kata's) private.
fn file_backend(config: &VmConfig) -> bool {
    matches!(&config.memory.backend, MemoryBackend::File { path } if !path.is_dir())
}

/// A fresh boot: ACPI tables, the kernel and its command line, the MP table and boot
/// page tables in guest RAM, and vCPUs at the kernel's entry.
fn boot(
    config: &VmConfig,
    kvm: &Kvm,
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    inventory: &DeviceInventory,
    power: &mut PowerDevices,
) -> Result<Vec<Vcpu>, Error> {
    let device_entries = &inventory.cmdline_entries;
    let auto_entries: &[String] = if config.machine.auto_kernel_cmdline { device_entries } else { &[] };
    let cmdline = build_cmdline(&config.kernel.cmdline, auto_entries)?;
    if config.machine.acpi {
        power.tables = Some(write_tables(config, mem)?);
    }
    let rsdp = power.tables.map(|t| t.rsdp_address);
    let entry = load_kernel(mem, config.mem_size, &config.kernel, &cmdline, rsdp)?;
    arch::mptable::setup_mptable(mem, config.vcpu_count)?;
    write_boot_gdt(mem)?;
    if let BootEntry::Linux64 { .. } = entry {
        write_identity_page_tables(mem)?;
    }
    step("kernel");
    create_vcpus(kvm, vm, config.vcpu_count, entry, &config.cpu)
}

/// A restore: guest RAM already holds the kernel and everything it wrote; the KVM
/// state (interrupt controllers, PIT, clock) and every vCPU's state are loaded, before
/// any vCPU runs.
fn restore(
    snapshot: LoadedSnapshot,
    kvm: &Kvm,
    vm: &VmFd,
    created: Vec<Vcpu>,
    power: &mut PowerDevices,
    [pio, mmio]: [&Bus; 2],
) -> Result<(Vec<Vcpu>, crate::snapshot::RestoredClock), Error> {
    let host_checked = snapshot.host_checked;
    let state = snapshot.snapshot;
    power.tables = state.acpi_tables.map(|(rsdp_address, end)| acpi::AcpiLayout { rsdp_address, end });
    let fits = XsaveFits::check(kvm)?;
    // A clone's were made ahead with their untimed state (`PreparedVm`); else made now.
    let prepared = !created.is_empty() && created.iter().map(Vcpu::id).eq(state.vcpus.iter().map(|v| v.id));
    let mut vcpus = created;
    if !prepared {
        vcpus = state.vcpus.iter().map(|saved| Vcpu::new(vm, saved.id)).collect::<Result<_, _>>()?;
    }
    // Before any state is loaded: a host without the guest's CPU is one clear line.
    if !host_checked {
        let tsc_here = vcpus.first().and_then(Vcpu::tsc_khz);
        crate::snapshot::check_host(kvm, &state, tsc_here).map_err(SnapshotError::from)?;
    }
    // The clock last, as the vCPUs start (`Vm::restored_clock`).
    state.vm.restore_chips(vm).map_err(SnapshotError::from)?;
    for (vcpu, saved) in vcpus.iter_mut().zip(&state.vcpus) {
        if !prepared {
            vcpu.restore_untimed(saved, fits)?;
        }
        vcpu.restore_timed(saved)?;
    }
    // Last: a device re-raising a pending interrupt must find the interrupt controllers
    // and LAPICs already restored, or their state would overwrite it.
    pio.restore_all(state.devices.pio).map_err(SnapshotError::from)?;
    mmio.restore_all(state.devices.mmio).map_err(SnapshotError::from)?;
    Ok((vcpus, state.vm.clock(snapshot.clock)))
}

pub(crate) fn address_map(mem_size: u64, pit: bool, pio: &Bus, mmio: &Bus, power: &PowerDevices) -> Vec<Region> {
    let mut regions = ram_regions(mem_size);
    regions.extend(power.tables.as_ref().map(tables_region));
    regions.extend(power.generation.map(|_| vmgenid_region()));
    regions.extend(kvm_regions(pit));
    for (bus, space) in [(pio, Space::Io), (mmio, Space::Memory)] {
        regions.extend(bus.ranges().map(|(base, len, name)| Region::new(space, base, len, name, Owner::Vmm)));
    }
    regions
}

fn add_device(
    bus: &mut Bus,
    base: u64,
    len: u64,
    name: &'static str,
    dev: Arc<Mutex<dyn BusDevice>>,
) -> Result<(), Error> {
    bus.insert(base, len, name, dev).map_err(|source| Error::Bus { name, source })
}

fn create_serial(vm: &VmFd, backend: &SerialConfig, muxes: &mut [Mux]) -> Result<SerialChardev, Error> {
    let irq = irqfd(vm, SERIAL_COM1_IRQ, "irqfd registration for the serial port")?;
    SerialChardev::open(backend, irq, muxes)
}

fn create_vcpus(
    kvm: &Kvm,
    vm: &VmFd,
    count: u8,
    entry: BootEntry,
    features: &arch::cpu_features::CpuFeatures,
) -> Result<Vec<Vcpu>, Error> {
    // A custom CPU template's `kvm_capabilities` (Firecracker checks them before the vCPUs).
    if let Some(cap) = features.template.required_capabilities().find(|&c| kvm.check_extension_raw(c.into()) <= 0) {
        return Err(arch::cpu_template::TemplateError::MissingCapability(cap).into());
    }
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|source| crate::kvm::KvmError::Ioctl { what: "KVM_GET_SUPPORTED_CPUID", source })?;
    let mut template = CpuidTemplate {
        supported,
        tsc_khz: None,
        tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
        features: features.clone(),
    };
    let mut vcpus = Vec::with_capacity(usize::from(count));
    for id in 0..count {
        let mut vcpu = Vcpu::new(vm, id)?;
        if id == 0 && kvm.check_extension(Cap::GetTscKhz) {
            template.tsc_khz = vcpu.tsc_khz();
        }
        let not_applied = vcpu.configure(&template, count, (id == 0).then_some(entry))?;
        if id == 0 && !not_applied.is_empty() {
            use arch::cpu_model_cpuid::{feature_description, unsupported_message};
            if features.enforce {
                let model = features.model.as_ref().map_or("host".into(), |m| m.versioned_name());
                return Err(Error::CpuEnforce {
                    model,
                    features: not_applied.iter().map(|f| feature_description(f)).collect(),
                });
            }
            not_applied.iter().for_each(|f| log::warn!("{}", unsupported_message(f)));
        }
        vcpus.push(vcpu);
    }
    Ok(vcpus)
}
