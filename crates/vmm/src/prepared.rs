//! The half of building a VM that depends only on the machine, not on its backends: the
//! KVM VM, guest RAM and its slot, the in-kernel interrupt controllers and the vCPUs'
//! file descriptors. `Vm::new` makes it as its first steps; the clone server's waiting
//! clone makes it for a restore before any request arrives (`Vm::prepare_restore`), so a
//! request only pays for what the request can change: its devices and backends, the saved
//! state loaded into KVM, and its threads (docs/snapshot.md, "The clone server").
//!
//! Nothing here runs guest code or loads saved state: a VM prepared early and used later
//! starts from the same point as one made at once (the guest's clock and TSC are set when
//! the state is loaded, at the request).

use crate::config::VmConfig;
use crate::error::Error;
use crate::kvm::{create_irqchip, create_vm, kvm_device_path, open_kvm};
use crate::memory::{create_guest_memory, lock_guest_memory, register_memory};
use crate::snapshot::memory_file::{map_memory, read_memory};
use crate::snapshot::{prefetch, LoadedSnapshot, SnapshotError};
use crate::startup::step;
use crate::vcpu::{Vcpu, VcpuError, VcpuState, XsaveFits};
use devices::guest_memory::GuestMemoryMmap;
use kvm_ioctls::{Kvm, VmFd};

/// The machine's KVM objects and memory, made for one configuration.
pub struct PreparedVm {
    // Field order is drop order: vCPUs and the VM before the memory their slots point into.
    /// A clone's vCPUs, created with the part of their saved state that does not count
    /// time loaded (`Vcpu::restore_untimed`); empty when the build makes them.
    pub(crate) vcpus: Vec<Vcpu>,
    pub(crate) vm: VmFd,
    pub(crate) kvm: Kvm,
    pub(crate) mem: GuestMemoryMmap,
    /// A restore's working-set list, already being read ahead.
    pub(crate) prefetch: Option<prefetch::PageList>,
    /// What it was made for: the settings of `VmConfig` this half depends on.
    made_for: MachineKey,
}

/// The settings the prepared half depends on. A configuration that differs in any of them
/// (a clone's request asking for another memory backend, say) cannot use it.
#[derive(Clone, Debug, PartialEq)]
struct MachineKey {
    mem_size: u64,
    memory: crate::config::MemoryConfig,
    mem_lock: bool,
    mem_merge: bool,
    track_dirty_pages: bool,
    pit: bool,
    pit_reinject: bool,
    vcpu_count: u8,
}

impl MachineKey {
    fn of(config: &VmConfig) -> MachineKey {
        MachineKey {
            mem_size: config.mem_size,
            memory: config.memory.clone(),
            mem_lock: config.mem_lock,
            mem_merge: config.machine.mem_merge,
            track_dirty_pages: config.track_dirty_pages,
            pit: config.machine.pit,
            pit_reinject: config.machine.pit_reinject,
            vcpu_count: config.vcpu_count,
        }
    }
}

impl PreparedVm {
    /// The VM, its memory (mapped from the snapshot when `incoming` restores into default
    /// memory) and its interrupt controllers; with `vcpus`, the vCPUs of `incoming` too,
    /// their untimed state loaded.
    pub(crate) fn make(config: &VmConfig, incoming: Option<&LoadedSnapshot>, vcpus: bool) -> Result<PreparedVm, Error> {
        let kvm = open_kvm(&kvm_device_path())?;
        let vm = create_vm(&kvm)?;
        step("KVM_CREATE_VM");
        let (mem, prefetch) = guest_memory(config, incoming)?;
        if config.mem_lock {
            lock_guest_memory(&mem)?;
        }
        // `mem-merge=on`'s KSM advice waits until the VM has run a while (after_start.rs).
        register_memory(&vm, &mem)?;
        step("memory");
        create_irqchip(&vm, config.machine.pit, config.machine.pit_reinject)?;
        step("irqchip");
        let vcpus = match incoming {
            Some(s) if vcpus => {
                let fits = XsaveFits::check(&kvm)?;
                let load = |saved: &VcpuState| {
                    let mut vcpu = Vcpu::new(&vm, saved.id)?;
                    vcpu.restore_untimed(saved, fits)?;
                    Ok::<_, VcpuError>(vcpu)
                };
                s.snapshot.vcpus.iter().map(load).collect::<Result<_, _>>()?
            }
            _ => Vec::new(),
        };
        Ok(PreparedVm { vcpus, vm, kvm, mem, prefetch, made_for: MachineKey::of(config) })
    }

    /// Whether this half was made for `config`'s machine.
    pub(crate) fn fits(&self, config: &VmConfig) -> bool {
        self.made_for == MachineKey::of(config)
    }
}

/// Guest RAM: mapped from the snapshot's file when restoring into default memory (only
/// the pages the guest touches are read), copied into a memory backend otherwise. With
/// a working-set list beside the snapshot, its pages are read ahead now (asynchronous
/// I/O) and returned, for the main thread to fault in once the vCPUs run.
fn guest_memory(
    config: &VmConfig,
    incoming: Option<&LoadedSnapshot>,
) -> Result<(GuestMemoryMmap, Option<prefetch::PageList>), Error> {
    let memory_error = |s: &LoadedSnapshot| {
        let path = s.path.clone();
        move |source| Error::Snapshot(SnapshotError::Memory { path, source })
    };
    match incoming.and_then(|s| s.memory.as_ref().map(|m| (s, m))) {
        Some((s, (file, offset))) if config.memory == crate::config::MemoryConfig::default() => {
            let mem = map_memory(file, *offset, config.mem_size, config.track_dirty_pages).map_err(memory_error(s))?;
            let list = prefetch::listed(s);
            if let Some(list) = &list {
                prefetch::read_ahead(&mem, &list.runs);
            }
            Ok((mem, list))
        }
        Some((s, (file, offset))) => {
            let mem = create_guest_memory(config.mem_size, &config.memory, config.track_dirty_pages)?;
            read_memory(&mem, file, *offset).map_err(memory_error(s))?;
            Ok((mem, None))
        }
        None => Ok((create_guest_memory(config.mem_size, &config.memory, config.track_dirty_pages)?, None)),
    }
}
