//! Creates the virtio-mmio devices of a `VmConfig`: one slot each (MMIO
//! window, GSI), ioeventfds for queue notifications, an irqfd for the
//! interrupt, the transport on the MMIO bus, and the device's handler on the
//! device event loop. Also produces the `virtio_mmio.device=` kernel
//! command-line entries that tell the guest where the devices are.

use crate::chardev_config::{ChardevBackend, ChardevConfig};
use crate::device_info::{chardev_filename, BlockInfo, ChardevInfo};
use crate::device_registry::{DeviceHandle, DeviceRegistry};
use crate::device_thread::DeviceEventLoop;
use crate::error::Error;
use crate::kvm::KvmError;
use crate::monitor::mux::Mux;
use crate::slot::Slot;
use arch::layout::VIRTIO_MMIO_SLOT_SIZE;
use devices::bus::Bus;
use devices::chardev::Chardev;
use devices::guest_events::GuestEvents;
use devices::guest_memory::GuestMemoryMmap;
use devices::virtio::block::PoolWorker;
use devices::virtio::mmio::{MmioTransport, REG_QUEUE_NOTIFY};
use devices::virtio::ninep;
use devices::virtio::{Interrupt, VirtioDevice};
use event_manager::{MutEventSubscriber, SubscriberOps};
use kvm_ioctls::{IoEventAddress, VmFd};
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// A device that implements both halves: the transport's model and the
/// event loop's handler.
pub(crate) trait EventDevice: VirtioDevice + MutEventSubscriber {}
impl<T: VirtioDevice + MutEventSubscriber> EventDevice for T {}

/// What the devices are, for the kernel command line and the monitor's queries.
#[derive(Default)]
pub struct DeviceInventory {
    /// `virtio_mmio.device=` entries, one per slot in use.
    pub cmdline_entries: Vec<String>,
    pub chardevs: Vec<ChardevInfo>,
    pub blocks: Vec<BlockInfo>,
    /// Every device by id, with its typed handle.
    pub registry: DeviceRegistry,
    /// Where devices report the guest's changes for the monitors (only made when a
    /// device reports any: the balloon, a virtio-serial port with an id).
    pub guest_events: Option<Arc<GuestEvents>>,
    /// Each virtio-9p device's server, by its fsdev id: `Vm::run` starts it on a thread
    /// of its own (kind `ninep`).
    pub ninep_workers: Vec<(String, ninep::Worker)>,
    /// Each `aio=threads` drive's pool workers, by drive id: `Vm::run` starts each on a
    /// thread of its own (kind `aio-worker`).
    pub pool_workers: Vec<(String, Vec<PoolWorker>)>,
    /// The event loop of each `-object iothread` a device names, by its id, in the order
    /// first named: `Vm::run` runs each on a thread of its own (kind `iothread`). An
    /// iothread no device names gets none (nothing would run on it).
    pub iothreads: Vec<(String, DeviceEventLoop)>,
    /// A device's handler went to the shared `virtio` thread's loop: without one (every
    /// device on an iothread) that thread is not started.
    pub uses_virtio_thread: bool,
}

impl DeviceInventory {
    pub(crate) fn guest_events(&mut self) -> Result<Arc<GuestEvents>, Error> {
        if let Some(events) = &self.guest_events {
            return Ok(events.clone());
        }
        let events = GuestEvents::new().map_err(|source| Error::Io { what: "guest event queue", source })?;
        self.guest_events = Some(events.clone());
        Ok(events)
    }
}

/// What a device kind's `build` works with: its slot, the VM, and the inventory it adds
/// itself to.
pub struct BuildCtx<'a> {
    pub(crate) slot: Slot,
    vm: &'a VmFd,
    pub(crate) mem: &'a GuestMemoryMmap,
    mmio: &'a mut Bus,
    event_loop: &'a mut DeviceEventLoop,
    muxes: &'a mut [Mux],
    pub(crate) inventory: &'a mut DeviceInventory,
}

impl<'a> BuildCtx<'a> {
    pub(crate) fn new(
        slot: Slot,
        vm: &'a VmFd,
        mem: &'a GuestMemoryMmap,
        mmio: &'a mut Bus,
        event_loop: &'a mut DeviceEventLoop,
        muxes: &'a mut [Mux],
        inventory: &'a mut DeviceInventory,
    ) -> Self {
        BuildCtx { slot, vm, mem, mmio, event_loop, muxes, inventory }
    }

    /// Puts `device` in the slot (transport on the MMIO bus as `bus_name`, its handler
    /// on the device thread) and in the registry as `type_name`, under `id` if any.
    pub(crate) fn add<D: EventDevice + 'static>(
        &mut self,
        device: D,
        bus_name: &'static str,
        type_name: &'static str,
        id: Option<&str>,
    ) -> Result<(), Error> {
        self.add_on(device, bus_name, type_name, id, None)
    }

    /// [`Self::add`], the handler on the event loop of `iothread` (made when first named)
    /// instead of the device thread's when one is given.
    pub(crate) fn add_on<D: EventDevice + 'static>(
        &mut self,
        device: D,
        bus_name: &'static str,
        type_name: &'static str,
        id: Option<&str>,
        iothread: Option<&str>,
    ) -> Result<(), Error> {
        let event_loop = match iothread {
            None => {
                self.inventory.uses_virtio_thread = true;
                &mut *self.event_loop
            }
            Some(name) => {
                let loops = &mut self.inventory.iothreads;
                let at = match loops.iter().position(|(n, _)| n == name) {
                    Some(at) => at,
                    None => {
                        loops.push((name.to_owned(), DeviceEventLoop::new().map_err(Error::EventLoop)?));
                        loops.len() - 1
                    }
                };
                &mut loops[at].1
            }
        };
        let device = Arc::new(Mutex::new(device));
        attach(device.clone(), bus_name, self.slot, self.vm, self.mem, self.mmio, event_loop)?;
        let handle = DeviceHandle::new(type_name, device);
        Ok(self.inventory.registry.insert(id.map(str::to_owned), Some(self.slot), handle)?)
    }

    /// Opens a front end's chardev, listed for `query-chardev` unless it is a mux's
    /// front end (the mux is listed).
    pub(crate) fn chardev(&mut self, cfg: &ChardevConfig) -> Result<Chardev, Error> {
        let chardev = crate::monitor::mux::open_chardev(cfg, self.muxes)?;
        if !matches!(cfg.backend, ChardevBackend::MuxPort(_)) {
            let filename = chardev_filename(&cfg.backend, chardev.pty_path());
            self.inventory.chardevs.push(ChardevInfo { label: cfg.id.clone(), filename });
        }
        Ok(chardev)
    }
}

fn attach<D: EventDevice + 'static>(
    device: Arc<Mutex<D>>,
    name: &'static str,
    slot: Slot,
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    mmio: &mut Bus,
    event_loop: &mut DeviceEventLoop,
) -> Result<(), Error> {
    let io = |source| Error::Io { what: "cannot create a virtio eventfd", source };
    let irq = EventFd::new(EFD_NONBLOCK).map_err(io)?;
    vm.register_irqfd(&irq, slot.irq).map_err(|source| KvmError::Ioctl { what: "irqfd registration", source })?;
    let queue_count = device.lock().unwrap_or_else(|p| p.into_inner()).queue_max_sizes().len();
    let mut queue_events = Vec::with_capacity(queue_count);
    for queue in 0..queue_count as u32 {
        let evt = EventFd::new(EFD_NONBLOCK).map_err(io)?;
        let notify = IoEventAddress::Mmio(slot.addr + REG_QUEUE_NOTIFY);
        vm.register_ioevent(&evt, &notify, queue)
            .map_err(|source| KvmError::Ioctl { what: "ioeventfd registration", source })?;
        queue_events.push(evt);
    }
    let model: Arc<Mutex<dyn VirtioDevice>> = device.clone();
    let mut transport = MmioTransport::new(model, mem.clone(), Arc::new(Interrupt::new(irq)), queue_events)
        .map_err(|source| Error::Transport { name, source })?;
    transport.offer_packed_ring(slot.packed);
    mmio.insert(slot.addr, VIRTIO_MMIO_SLOT_SIZE, name, Arc::new(Mutex::new(transport)))
        .map_err(|source| Error::Bus { name, source })?;
    let handler: Arc<Mutex<dyn MutEventSubscriber + Send>> = device;
    event_loop.add_subscriber(handler);
    Ok(())
}
