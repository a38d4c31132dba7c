//! The VM-wide KVM state: the in-kernel interrupt controllers (two PICs, the IOAPIC), the
//! PIT, and the KVM clock (kvmclock's base), read at snapshot and written back at restore
//! before any vCPU runs. The clock goes last, just before the vCPUs first run
//! ([`RestoredClock`]): the guest's time runs from KVM_SET_CLOCK on, so whatever the VMM
//! does after it (its threads, its sandbox; 50 to 400 ms in the loaded rig) the guest would
//! find elapsed, with the timers it brings due, at its first instruction.

use kvm_bindings::{
    kvm_clock_data, kvm_irqchip, kvm_pit_state2, KVM_CLOCK_REALTIME, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE,
};
use kvm_ioctls::VmFd;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("cannot {what} the VM's {part}: {source}")]
pub struct VmStateError {
    what: &'static str,
    part: &'static str,
    source: kvm_ioctls::Error,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VmState {
    /// PIC master, PIC slave, IOAPIC, in that order.
    pub irqchips: Vec<kvm_irqchip>,
    /// `None` with `pit=off`.
    pub pit: Option<kvm_pit_state2>,
    pub clock: kvm_clock_data,
}

const CHIPS: [(u32, &str); 3] =
    [(KVM_IRQCHIP_PIC_MASTER, "PIC master"), (KVM_IRQCHIP_PIC_SLAVE, "PIC slave"), (KVM_IRQCHIP_IOAPIC, "IOAPIC")];

/// How the guest's clock goes on after a restore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClockPolicy {
    /// From the instant it was saved, as if no time had passed (QEMU's and
    /// Firecracker's default): timers the guest set are not all due at once.
    #[default]
    Continue,
    /// Forward by the wall-clock time since the snapshot (Firecracker's
    /// `clock_realtime`): the guest's time of day is right at once.
    CatchUp,
}

impl VmState {
    /// Whether the saved KVM clock carries the wall-clock time it was read at, which
    /// `clock=realtime` (Firecracker's `clock_realtime`) needs to catch up from.
    pub fn has_wall_clock(&self) -> bool {
        self.clock.flags & KVM_CLOCK_REALTIME != 0
    }

    pub fn save(vm: &VmFd, pit: bool) -> Result<Self, VmStateError> {
        let err = |part| move |source| VmStateError { what: "read", part, source };
        let mut irqchips = Vec::with_capacity(CHIPS.len());
        for (chip_id, part) in CHIPS {
            let mut chip = kvm_irqchip { chip_id, ..Default::default() };
            vm.get_irqchip(&mut chip).map_err(err(part))?;
            irqchips.push(chip);
        }
        let pit = if pit { Some(vm.get_pit2().map_err(err("PIT"))?) } else { None };
        Ok(VmState { irqchips, pit, clock: vm.get_clock().map_err(err("KVM clock"))? })
    }

    /// Writes the state into a new VM built with the same irqchip and PIT.
    pub fn restore(&self, vm: &VmFd, policy: ClockPolicy) -> Result<(), VmStateError> {
        self.restore_chips(vm)?;
        self.clock(policy).set(vm)
    }

    /// The interrupt controllers and the PIT, not the clock (see [`Self::clock`]).
    pub fn restore_chips(&self, vm: &VmFd) -> Result<(), VmStateError> {
        let err = |part| move |source| VmStateError { what: "restore", part, source };
        for (chip, (chip_id, part)) in self.irqchips.iter().zip(CHIPS) {
            if chip.chip_id != chip_id {
                return Err(err(part)(kvm_ioctls::Error::new(libc::EINVAL)));
            }
            vm.set_irqchip(chip).map_err(err(part))?;
        }
        if let Some(pit) = &self.pit {
            vm.set_pit2(pit).map_err(err("PIT"))?;
        }
        Ok(())
    }

    /// The KVM clock to set as the vCPUs start, as `policy` says.
    pub fn clock(&self, policy: ClockPolicy) -> RestoredClock {
        let mut clock = self.clock;
        // KVM_SET_CLOCK takes only KVM_CLOCK_REALTIME from the flags KVM_GET_CLOCK
        // reports; with it, KVM adds the wall-clock time elapsed since `realtime`.
        clock.flags = match policy {
            ClockPolicy::CatchUp if self.clock.flags & KVM_CLOCK_REALTIME != 0 => KVM_CLOCK_REALTIME,
            ClockPolicy::CatchUp => {
                // KVM reports the wall-clock time with its clock only while it runs on its
                // master clock (a TSC clocksource on the saving host): without it there is
                // nothing to catch up from, and saying so beats a silent default.
                log::warn!(
                    "clock=realtime: the snapshot holds no wall-clock time (the saving host's KVM was not on \
                     a stable TSC); the guest's clock goes on from the saved instant"
                );
                0
            }
            ClockPolicy::Continue => 0,
        };
        RestoredClock(clock)
    }
}

/// A restored VM's KVM clock, to be set just before its vCPUs first run.
#[derive(Clone, Copy, Debug)]
pub struct RestoredClock(kvm_clock_data);

impl RestoredClock {
    pub fn set(&self, vm: &VmFd) -> Result<(), VmStateError> {
        vm.set_clock(&self.0).map_err(|source| VmStateError { what: "restore", part: "KVM clock", source })
    }
}
