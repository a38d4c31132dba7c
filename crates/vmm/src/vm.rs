//! The VM builder and runner.

use crate::address_map::{kvm_regions, ram_regions, Owner, Region, Space};
use crate::boot::{build_cmdline, load_kernel};
use crate::boot_trace::{BootTimes, BootTraceConfig};
use crate::config::{SerialConfig, VmConfig};
use crate::event_loop::{ExitWatcher, StdinForwarder};
use crate::exit::{ExitNotifier, VmExit};
use crate::kvm::{create_irqchip, create_vm, kvm_device_path, open_kvm};
use crate::memory::{create_guest_memory, register_memory};
use crate::rtc::{create_rtc, RtcTicker};
use crate::signals::StopSignals;
use crate::startup::StartupClock;
use crate::vcpu::{install_kick_handler, kick_signal, CpuidTemplate, Vcpu, VcpuContext};
use crate::virtio_devices::{create_devices, DeviceEventLoop};
use crate::Error;
use arch::layout::{
    I8042_COMMAND_PORT, MAX_MEM_SIZE, MAX_VCPUS, MIN_MEM_SIZE, RTC_IRQ, RTC_PORT, RTC_PORT_LEN, SERIAL_COM1_IRQ,
    SERIAL_COM1_PORT, SERIAL_PORT_LEN,
};
use arch::regs::{write_boot_gdt, write_identity_page_tables, BootEntry};
use devices::bus::{Bus, BusDevice};
use devices::debug_port::{BootTracePort, GuestCheckpoints, BOOT_TRACE_PORT};
use devices::legacy::{I8042Reset, SerialPort};
use devices::terminal::RawTerminal;
use devices::EventFdTrigger;
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Cap, Kvm, VmFd};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::signal::Killable;

/// A fully built microVM, ready to run.
pub struct Vmm {
    // Field order is drop order: vCPUs and the VM go before the memory
    // their slots point into.
    vcpus: Vec<Vcpu>,
    _vm: VmFd,
    _kvm: Kvm,
    _mem: GuestMemoryMmap,
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    serial: Option<(SerialConfig, Arc<Mutex<SerialPort>>)>,
    /// The CMOS clock's timer, served by the main thread's event loop (`rtc=on`).
    rtc_ticker: Option<RtcTicker>,
    /// Serves the virtio devices' queues and backends; `None` without devices.
    device_loop: Option<DeviceEventLoop>,
    reset: EventFd,
    exit: Arc<ExitNotifier>,
    signals: StopSignals,
    clock: Arc<StartupClock>,
    mem_size: u64,
    pit: bool,
    boot_trace: Option<(BootTraceConfig, Arc<GuestCheckpoints>)>,
}

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn validate(config: &VmConfig) -> Result<(), Error> {
    if !(MIN_MEM_SIZE..=MAX_MEM_SIZE).contains(&config.mem_size) {
        return Err(Error::Config(format!(
            "guest memory of {} MiB is out of range ({} MiB to {} GiB)",
            config.mem_size >> 20,
            MIN_MEM_SIZE >> 20,
            MAX_MEM_SIZE >> 30
        )));
    }
    if !(1..=MAX_VCPUS).contains(&config.vcpu_count) {
        return Err(Error::Config(format!("{} vCPUs is out of range (1 to {MAX_VCPUS})", config.vcpu_count)));
    }
    Ok(())
}

impl Vmm {
    /// Does every piece of set-up, so that `run` only starts threads.
    /// `start` is when the process started (for start-up timing).
    pub fn new(config: &VmConfig, start: Instant) -> Result<Vmm, Error> {
        validate(config)?;
        // Before any thread exists, so that every thread inherits the mask.
        let signals = StopSignals::install().map_err(io_err("cannot set up signal handling"))?;
        let kvm = open_kvm(&kvm_device_path())?;
        let vm = create_vm(&kvm)?;
        let mem = create_guest_memory(config.mem_size)?;
        register_memory(&vm, &mem)?;
        create_irqchip(&vm, config.machine.pit)?;

        let exit = Arc::new(ExitNotifier::new().map_err(io_err("cannot create the exit event"))?);
        let reset = EventFd::new(EFD_NONBLOCK).map_err(io_err("cannot create the reset event"))?;
        let mut pio = Bus::new();
        let i8042 = I8042Reset::new(EventFdTrigger::new(reset.try_clone().map_err(io_err("eventfd"))?));
        add_device(&mut pio, u64::from(I8042_COMMAND_PORT), 1, "i8042", Arc::new(Mutex::new(i8042)))?;
        let boot_trace = match &config.trace_boot {
            Some(trace) => {
                let checkpoints = Arc::new(GuestCheckpoints::new(start));
                let port = BootTracePort::new(checkpoints.clone());
                add_device(&mut pio, u64::from(BOOT_TRACE_PORT), 1, "boot-trace", Arc::new(Mutex::new(port)))?;
                Some((trace.clone(), checkpoints))
            }
            None => None,
        };
        let serial = match config.serial {
            Some(backend) => {
                let port = Arc::new(Mutex::new(create_serial(&vm, backend)?));
                add_device(&mut pio, u64::from(SERIAL_COM1_PORT), SERIAL_PORT_LEN, "serial", port.clone())?;
                Some((backend, port))
            }
            None => None,
        };
        let rtc_ticker = if config.machine.rtc {
            let irq = irqfd(&vm, RTC_IRQ, "irqfd registration for the RTC")?;
            let (rtc, ticker) = create_rtc(irq).map_err(io_err("cannot create the RTC timer"))?;
            add_device(&mut pio, u64::from(RTC_PORT), RTC_PORT_LEN, "rtc", rtc)?;
            Some(ticker)
        } else {
            None
        };

        let mut mmio = Bus::new();
        let (device_loop, device_entries) = if config.devices.is_empty() {
            (None, Vec::new())
        } else {
            let mut event_loop = DeviceEventLoop::new().map_err(|e| Error::EventLoop(format!("{e:?}")))?;
            let entries = create_devices(&config.devices, &vm, &mem, &mut mmio, &mut event_loop)?;
            (Some(event_loop), entries)
        };
        let auto_entries: &[String] = if config.machine.auto_kernel_cmdline { &device_entries } else { &[] };
        let cmdline = build_cmdline(&config.kernel.cmdline, auto_entries)?;
        let entry = load_kernel(&mem, config.mem_size, &config.kernel, &cmdline)?;
        arch::mptable::setup_mptable(&mem, config.vcpu_count)?;
        write_boot_gdt(&mem)?;
        if let BootEntry::Linux64 { .. } = entry {
            write_identity_page_tables(&mem)?;
        }

        let vcpus = create_vcpus(&kvm, &vm, config.vcpu_count, entry)?;
        let clock = Arc::new(StartupClock::new(start, config.report_start_time));
        Ok(Vmm {
            vcpus,
            _vm: vm,
            _kvm: kvm,
            _mem: mem,
            pio: Arc::new(pio),
            mmio: Arc::new(mmio),
            serial,
            rtc_ticker,
            device_loop,
            reset,
            exit,
            signals,
            clock,
            mem_size: config.mem_size,
            pit: config.machine.pit,
            boot_trace,
        })
    }

    /// Every region the guest can reach: RAM, KVM's in-kernel devices, and
    /// what is really on this VM's port and MMIO buses.
    pub fn address_map(&self) -> Vec<Region> {
        let mut regions = ram_regions(self.mem_size);
        regions.extend(kvm_regions(self.pit));
        for (bus, space) in [(&self.pio, Space::Io), (&self.mmio, Space::Memory)] {
            regions.extend(bus.ranges().map(|(base, len, name)| Region::new(space, base, len, name, Owner::Vmm)));
        }
        regions
    }

    /// Runs the guest until it ends; returns why it ended.
    pub fn run(self) -> Result<VmExit, Error> {
        let mut manager = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new()
            .map_err(|e| Error::EventLoop(format!("{e:?}")))?;
        let _raw_terminal = match &self.serial {
            Some((SerialConfig::Stdio, port)) => {
                manager.add_subscriber(Arc::new(Mutex::new(StdinForwarder { serial: port.clone() })));
                RawTerminal::enter(std::io::stdin().as_raw_fd())
            }
            _ => None,
        };
        if let Some(ticker) = self.rtc_ticker {
            manager.add_subscriber(Arc::new(Mutex::new(ticker)));
        }
        manager.add_subscriber(Arc::new(Mutex::new(ExitWatcher {
            exit: self.exit.clone(),
            reset: self.reset,
            signals: self.signals,
        })));

        if let Some(mut device_loop) = self.device_loop {
            let exit = self.exit.clone();
            std::thread::Builder::new()
                .name("virtio".into())
                .spawn(move || loop {
                    if let Err(e) = device_loop.run() {
                        exit.notify(VmExit::DeviceError(format!("virtio event loop failed: {e:?}")));
                        return;
                    }
                })
                .map_err(|source| Error::Io { what: "cannot start the virtio device thread", source })?;
        }
        install_kick_handler().map_err(io_err("cannot install the vCPU kick handler"))?;
        let clock = self.clock.clone();
        let ctx = Arc::new(VcpuContext {
            pio: self.pio,
            mmio: self.mmio,
            exit: self.exit.clone(),
            clock: self.clock,
            stop: AtomicBool::new(false),
        });
        let mut threads = Vec::with_capacity(self.vcpus.len());
        for vcpu in self.vcpus {
            threads.push(vcpu.spawn(ctx.clone())?);
        }
        let outcome = loop {
            if let Err(e) = manager.run() {
                break Err(Error::EventLoop(format!("{e:?}")));
            }
            if let Some(reason) = self.exit.reason() {
                break Ok(reason);
            }
        };
        let guest_exit = clock.elapsed();
        // Guest memory is unmapped when `self` is dropped: every vCPU must
        // be out of KVM_RUN first, or it would run on a vanished mapping.
        stop_vcpus(&ctx, threads);
        let _ = std::io::stdout().flush();
        if let Some((trace, checkpoints)) = &self.boot_trace {
            let times = BootTimes::new(clock.first_run().map(|f| f.wall), checkpoints, Some(guest_exit));
            report_boot_times(&times, trace)?;
        }
        outcome
    }
}

fn report_boot_times(times: &BootTimes, trace: &BootTraceConfig) -> Result<(), Error> {
    eprint!("{}", times.table());
    if let Some(path) = &trace.json {
        std::fs::write(path, times.json())
            .map_err(|e| Error::Report(format!("cannot write the boot trace to {}: {e}", path.display())))?;
    }
    Ok(())
}

/// How long teardown waits for vCPU threads before giving up on them.
const VCPU_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Kicks every vCPU thread out of KVM_RUN until it ends. The kick repeats:
/// a signal that lands just before a thread enters KVM_RUN is not seen by it.
fn stop_vcpus(ctx: &VcpuContext, threads: Vec<JoinHandle<()>>) {
    ctx.stop.store(true, Ordering::Release);
    let deadline = Instant::now() + VCPU_STOP_TIMEOUT;
    for thread in threads {
        while !thread.is_finished() {
            if Instant::now() > deadline {
                // Leave it: the process is about to exit, which ends it.
                log::warn!("a vCPU thread did not stop in time");
                return;
            }
            let _ = thread.kill(kick_signal());
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = thread.join();
    }
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

/// An edge-triggered interrupt line: writing the eventfd injects `gsi` in the kernel.
fn irqfd(vm: &VmFd, gsi: u32, what: &'static str) -> Result<EventFdTrigger, Error> {
    let irq = EventFd::new(EFD_NONBLOCK).map_err(io_err("eventfd"))?;
    vm.register_irqfd(&irq, gsi).map_err(|source| crate::kvm::KvmError::Ioctl { what, source })?;
    Ok(EventFdTrigger::new(irq))
}

fn create_serial(vm: &VmFd, backend: SerialConfig) -> Result<SerialPort, Error> {
    let irq = irqfd(vm, SERIAL_COM1_IRQ, "irqfd registration for the serial port")?;
    let out: Box<dyn Write + Send> = match backend {
        SerialConfig::Stdio => Box::new(std::io::stdout()),
        SerialConfig::Null => Box::new(std::io::sink()),
    };
    Ok(SerialPort::new(irq, out))
}

fn create_vcpus(kvm: &Kvm, vm: &VmFd, count: u8, entry: BootEntry) -> Result<Vec<Vcpu>, Error> {
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|source| crate::kvm::KvmError::Ioctl { what: "KVM_GET_SUPPORTED_CPUID", source })?;
    let mut template = CpuidTemplate {
        supported: supported.as_slice().to_vec(),
        tsc_khz: None,
        tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
    };
    let mut vcpus = Vec::with_capacity(usize::from(count));
    for id in 0..count {
        let vcpu = Vcpu::new(vm, id)?;
        if id == 0 && kvm.check_extension(Cap::GetTscKhz) {
            template.tsc_khz = vcpu.tsc_khz();
        }
        vcpu.configure(&template, count, (id == 0).then_some(entry))?;
        vcpus.push(vcpu);
    }
    Ok(vcpus)
}
