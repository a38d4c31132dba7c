//! `-incoming defer` + `migrate-incoming`: a snapshot loaded into a VM that is already
//! built, its threads started and parked before their first KVM_RUN (QEMU's `inmigrate`).
//! The same checks as a restore at start come first; then guest RAM (the file mapped over
//! the anonymous RAM, MAP_FIXED, so pages are read as the guest touches them), the VM's
//! KVM state, each vCPU's state (loaded by its own thread), and the devices, last.

use super::memory_file::{map_over, read_memory};
use super::{check_host, LoadedSnapshot, SnapshotError, Snapshotter};
use crate::vcpu::{VcpuHandle, XsaveFits};
use std::sync::Arc;
use std::time::Duration;

/// How long each vCPU may take to load its state.
const LOAD_TIMEOUT: Duration = Duration::from_secs(2);

impl Snapshotter {
    /// Loads `loaded` into this VM, whose vCPUs (`vcpus`) are parked and never ran.
    pub fn restore_live(&self, vcpus: &[VcpuHandle], loaded: LoadedSnapshot) -> Result<(), SnapshotError> {
        let LoadedSnapshot { snapshot: state, memory, path, clock, state_crc, .. } = loaded;
        let fits = XsaveFits::check(&self.kvm)?;
        check_host(&self.kvm, &state, self.host_tsc_khz)?;
        let memory_error = |source| SnapshotError::Memory { path: path.clone(), source };
        match &memory {
            Some((file, offset)) if self.anonymous_memory => {
                map_over(&self.mem, file, *offset).map_err(memory_error)?
            }
            Some((file, offset)) => read_memory(&self.mem, file, *offset).map_err(memory_error)?,
            // x-ignore-shared: RAM is the backend file this VM already maps.
            None => {}
        }
        state.vm.restore(&self.vm, clock)?;
        for (handle, saved) in vcpus.iter().zip(state.vcpus) {
            handle.restore(Arc::new(saved), fits, LOAD_TIMEOUT)?;
        }
        self.pio.restore_all(state.devices.pio)?;
        self.mmio.restore_all(state.devices.mmio)?;
        // With tracking, the next diff counts from the snapshot just loaded (its memory was
        // mapped or copied without marking anything, and no vCPU has run).
        if memory.is_some() && devices::guest_memory::is_tracked(&self.mem) {
            self.diff_base.set(Some(state_crc));
        }
        Ok(())
    }
}
