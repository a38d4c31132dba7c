//! Power: what the guest uses to power off and reset, and what the host uses to ask it to
//! shut down. With `acpi=on`: the ACPI tables, the sleep registers (S5 = power-off,
//! 0x42 in the reset register = reset) and the Generic Event Device's power button. With
//! `-device i8042`: the keyboard controller, whose Ctrl-Alt-Delete Linux turns into a
//! reboot. Without it: the i8042's reset command alone. docs/ARCHITECTURE.md ("How the
//! VM ends") lists every path.

use crate::address_map::{Owner, Region, Space};
use crate::config::VmConfig;
use crate::error::{io_err, Error};
use crate::exit::{ExitNotifier, ResetByNotifier};
use crate::irqfd::irqfd;
use acpi::{AcpiLayout, IsaDevice, KeyboardController, MachineDescription, VirtioMmioSlot};
use arch::layout::{
    ACPI_GED_GSI, ACPI_GED_LEN, ACPI_GED_START, ACPI_SLEEP_REGS_LEN, ACPI_SLEEP_REGS_START, I8042_COMMAND_PORT,
    I8042_DATA_PORT, I8042_IRQ, VMGENID_GUID_LEN, VMGENID_GUID_START,
};
use devices::acpi::{GenericEventDevice, SleepControlRegisters};
use devices::bus::{Bus, BusDevice};
use devices::guest_memory::GuestMemoryMmap;
use devices::legacy::{I8042Controller, I8042Port, I8042PortDevice, I8042Reset, Key};
use devices::EventFdTrigger;
use kvm_ioctls::VmFd;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Names on the bus (and in `dump-mtree`), as QEMU names these regions.
const GED_NAME: &str = "acpi-ged-event";
const SLEEP_REGS_NAME: &str = "acpi-ged-regs";
const I8042_NAME: &str = "i8042";

/// What set-up built for power, split between the main loop (the power-off event) and
/// the monitor commands (the button and the keyboard).
pub struct PowerDevices {
    /// Fires when the guest writes S5 to the sleep control register; `None` without ACPI.
    pub poweroff: Option<EventFd>,
    pub control: PowerControl,
    /// Where the ACPI tables were written, for `dump-mtree`.
    pub tables: Option<AcpiLayout>,
    /// The VM generation ID this start wrote (`-device vmgenid`), for
    /// `query-vm-generation-id`.
    pub generation: Option<crate::guid::Guid>,
}

/// `dump-mtree`'s line for the VM generation ID: RAM the memory map reserves.
pub fn vmgenid_region() -> Region {
    Region::new(Space::Memory, VMGENID_GUID_START, VMGENID_GUID_LEN, "vmgenid", Owner::Ram)
}

/// What the host can press or type on.
#[derive(Default)]
pub struct PowerControl {
    ged: Option<Arc<Mutex<GenericEventDevice>>>,
    keyboard: Option<Arc<Mutex<I8042Controller>>>,
}

/// Where `system_powerdown` went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerdownRoute {
    /// The GED's power button (`acpi=on`).
    PowerButton,
    /// Ctrl-Alt-Delete on the i8042's keyboard (`acpi=off -device i8042`).
    CtrlAltDelete,
    /// Nothing can receive it: like QEMU, only the POWERDOWN event is sent.
    Nobody,
}

impl PowerControl {
    /// A restore wrote a new VM generation ID: the GED tells the guest (`-device vmgenid`
    /// exists only with `acpi=on`, so there is a GED).
    pub fn announce_new_generation(&self) {
        if let Some(ged) = &self.ged {
            if let Err(e) = lock(ged).announce_new_generation() {
                log::error!("cannot raise the GED interrupt: {e}");
            }
        }
    }

    /// `system_powerdown`: the power button if there is one, else Ctrl-Alt-Delete.
    pub fn powerdown(&self) -> PowerdownRoute {
        if let Some(ged) = &self.ged {
            if let Err(e) = lock(ged).press_power_button() {
                log::error!("cannot raise the GED interrupt: {e}");
            }
            PowerdownRoute::PowerButton
        } else if let Some(keyboard) = &self.keyboard {
            lock(keyboard).ctrl_alt_delete();
            PowerdownRoute::CtrlAltDelete
        } else {
            PowerdownRoute::Nobody
        }
    }

    /// Presses (`down`) or releases `key` on the keyboard; without `-device i8042` the
    /// key goes nowhere, as QEMU drops input no device takes.
    pub fn key_event(&self, key: Key, down: bool) {
        if let Some(keyboard) = &self.keyboard {
            lock(keyboard).key_event(key, down);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn eventfd() -> Result<EventFd, Error> {
    EventFd::new(EFD_NONBLOCK).map_err(io_err("cannot create a power eventfd"))
}

fn insert(bus: &mut Bus, base: u64, len: u64, name: &'static str, dev: Arc<Mutex<dyn BusDevice>>) -> Result<(), Error> {
    bus.insert(base, len, name, dev).map_err(|source| Error::Bus { name, source })
}

/// Builds the power devices of `config` onto the buses. `reset` is the VMM's reset
/// event (the main loop turns it into `VmExit::Reset`); `None` in solo mode, where the
/// i8042's reset port, the only one there (`VmConfig::runs_solo`), tells `exit` itself.
pub fn create_power_devices(
    config: &VmConfig,
    vm: &VmFd,
    pio: &mut Bus,
    mmio: &mut Bus,
    reset: Option<&EventFd>,
    exit: &Arc<ExitNotifier>,
) -> Result<PowerDevices, Error> {
    let mut control = PowerControl::default();
    let reset_trigger = || {
        let reset = reset.ok_or_else(|| std::io::Error::other("a solo VM has no reset event"));
        reset.and_then(EventFd::try_clone).map(EventFdTrigger::new).map_err(io_err("eventfd"))
    };
    if config.i8042 {
        let irq = irqfd(vm, I8042_IRQ, "irqfd registration for the i8042")?;
        let controller = Arc::new(Mutex::new(I8042Controller::new(reset_trigger()?, irq)));
        for (port, which) in [(I8042_DATA_PORT, I8042Port::Data), (I8042_COMMAND_PORT, I8042Port::Command)] {
            let dev = I8042PortDevice { controller: controller.clone(), port: which };
            insert(pio, u64::from(port), 1, I8042_NAME, Arc::new(Mutex::new(dev)))?;
        }
        control.keyboard = Some(controller);
    } else {
        let dev: Arc<Mutex<dyn BusDevice>> = match reset {
            Some(_) => Arc::new(Mutex::new(I8042Reset::new(reset_trigger()?))),
            None => Arc::new(Mutex::new(I8042Reset::new(ResetByNotifier(exit.clone())))),
        };
        insert(pio, u64::from(I8042_COMMAND_PORT), 1, I8042_NAME, dev)?;
    }
    let mut poweroff = None;
    if config.machine.acpi {
        let irq = irqfd(vm, ACPI_GED_GSI, "irqfd registration for the ACPI GED")?;
        let ged = Arc::new(Mutex::new(GenericEventDevice::new(irq)));
        insert(mmio, ACPI_GED_START, ACPI_GED_LEN, GED_NAME, ged.clone())?;
        let s5 = eventfd()?;
        let trigger = EventFdTrigger::new(s5.try_clone().map_err(io_err("eventfd"))?);
        let regs = SleepControlRegisters::new(trigger, reset_trigger()?);
        insert(mmio, ACPI_SLEEP_REGS_START, ACPI_SLEEP_REGS_LEN, SLEEP_REGS_NAME, Arc::new(Mutex::new(regs)))?;
        control.ged = Some(ged);
        poweroff = Some(s5);
    }
    Ok(PowerDevices { poweroff, control, tables: None, generation: None })
}

/// The machine as the ACPI tables describe it: what `config` built.
pub fn describe(config: &VmConfig) -> MachineDescription {
    let mut machine = MachineDescription::microvm(config.vcpu_count);
    machine.pit = config.machine.pit;
    machine.virtio_slots = (0..config.devices.len() as u32).filter_map(VirtioMmioSlot::microvm).collect();
    machine.com1 = config.serial.as_ref().map(|_| IsaDevice::com1());
    machine.rtc = config.machine.rtc.then(IsaDevice::rtc);
    machine.keyboard = config.i8042.then(KeyboardController::microvm);
    machine.vmgenid = config.vmgenid.map(|_| VMGENID_GUID_START);
    machine
}

/// Writes the tables of `config` into guest memory (`acpi=on`), and the reset stub: on
/// hardware-reduced ACPI without EFI, Linux reboots by jumping to the BIOS's reset vector.
pub fn write_tables(config: &VmConfig, mem: &GuestMemoryMmap) -> Result<AcpiLayout, Error> {
    arch::regs::write_reset_stub(mem)?;
    acpi::build_tables(&describe(config), mem).map_err(Error::Acpi)
}

/// `dump-mtree`'s line for the tables: RAM the memory map reserves.
pub fn tables_region(layout: &AcpiLayout) -> Region {
    Region::new(Space::Memory, layout.rsdp_address, layout.end - layout.rsdp_address, "acpi-tables", Owner::Ram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, SerialConfig};

    fn config() -> VmConfig {
        VmConfig {
            vcpu_count: 2,
            ..VmConfig::new(crate::config::KernelConfig {
                path: "vmlinux".into(),
                cmdline: String::new(),
                initrd: None,
            })
        }
    }

    #[test]
    fn description_follows_the_configuration() {
        let mut c = config();
        c.devices = vec![DeviceConfig::Rng(Default::default()), DeviceConfig::Rng(Default::default())];
        c.serial = Some(SerialConfig::Null);
        c.machine.rtc = true;
        c.machine.pit = false;
        c.i8042 = true;
        c.vmgenid = Some(Default::default());
        let d = describe(&c);
        assert_eq!(d.vcpu_count, 2);
        assert!(!d.pit);
        assert_eq!(
            d.virtio_slots.iter().map(|s| (s.index, s.base, s.gsi)).collect::<Vec<_>>(),
            [(0, 0xd000_0000, 5), (1, 0xd000_0200, 6)]
        );
        assert_eq!(d.com1, Some(IsaDevice::com1()));
        assert_eq!(d.rtc, Some(IsaDevice::rtc()));
        assert_eq!(d.keyboard, Some(KeyboardController::microvm()));
        assert_eq!(d.vmgenid, Some(VMGENID_GUID_START));
        let bare = describe(&config());
        assert!(bare.virtio_slots.is_empty() && bare.com1.is_none() && bare.rtc.is_none() && bare.keyboard.is_none());
        assert_eq!(bare.vmgenid, None);
    }

    #[test]
    fn powerdown_without_a_receiver_goes_nowhere() {
        assert_eq!(PowerControl::default().powerdown(), PowerdownRoute::Nobody);
    }

    #[test]
    fn powerdown_prefers_the_power_button_to_the_keyboard() {
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let kbd_irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let reset = EventFd::new(EFD_NONBLOCK).unwrap();
        let keyboard = Arc::new(Mutex::new(I8042Controller::new(
            EventFdTrigger::new(reset.try_clone().unwrap()),
            EventFdTrigger::new(kbd_irq.try_clone().unwrap()),
        )));
        let mut control = PowerControl { ged: None, keyboard: Some(keyboard) };
        assert_eq!(control.powerdown(), PowerdownRoute::CtrlAltDelete);
        assert_eq!(kbd_irq.read().unwrap(), 1, "the first scancode interrupts");
        control.ged =
            Some(Arc::new(Mutex::new(GenericEventDevice::new(EventFdTrigger::new(irq.try_clone().unwrap())))));
        assert_eq!(control.powerdown(), PowerdownRoute::PowerButton);
        assert_eq!(irq.read().unwrap(), 1);
    }
}
