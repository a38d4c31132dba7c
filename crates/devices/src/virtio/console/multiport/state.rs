//! What a snapshot keeps of QEMU's multiport virtio-serial beyond its queues.

use super::super::state::{restore_tx, save_tx, TxChainState};
use super::MultiportConsole;
use crate::state::StateError;
use crate::virtio::VirtioState;
use serde::{Deserialize, Serialize};

/// One port, as QEMU's virtio-serial migrates it: its open state on both sides and
/// its data in transit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PortState {
    /// The guest has the port open (its last PORT_OPEN).
    pub guest_open: bool,
    /// The driver sent PORT_READY for it.
    pub ready: bool,
    /// What the guest was told of the host side. If the restoring process's chardev is
    /// in another state (no client yet on a socket), the device tells the guest on its
    /// first turn, as for any change.
    pub host_open: bool,
    pub pending: Vec<u8>,
    pub tx: Option<TxChainState>,
    /// Output the chardev accepted but its peer had not taken.
    pub output: Vec<u8>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MultiportState {
    /// Control messages for the driver still waiting for control receive buffers.
    pub control_out: Vec<Vec<u8>>,
    pub ports: Vec<PortState>,
}

impl MultiportConsole {
    pub(super) fn save_state(&self) -> VirtioState {
        let ports = self
            .ports
            .iter()
            .map(|p| PortState {
                guest_open: p.guest_open,
                ready: p.ready,
                host_open: p.host_open,
                pending: p.pending.iter().copied().collect(),
                tx: save_tx(&p.tx),
                output: p.backend.chardev.buffered_output(),
            })
            .collect();
        VirtioState::MultiportConsole(MultiportState { control_out: self.control_out.iter().cloned().collect(), ports })
    }

    /// After the transport re-activated the device (which cleared the ports).
    pub(super) fn restore_state(&mut self, state: VirtioState) -> Result<(), StateError> {
        let VirtioState::MultiportConsole(saved) = state else { return Err(state.mismatch("virtio-serial")) };
        if saved.ports.len() != self.ports.len() {
            let (saved, now) = (saved.ports.len() as u64, self.ports.len() as u64);
            return Err(StateError::Config { device: "virtio-serial", what: "number of ports", saved, now });
        }
        let txs =
            saved.ports.iter().map(|p| restore_tx(p.tx.clone(), "virtio-serial")).collect::<Result<Vec<_>, _>>()?;
        for ((port, p), tx) in self.ports.iter_mut().zip(saved.ports).zip(txs) {
            port.guest_open = p.guest_open;
            port.ready = p.ready;
            port.host_open = p.host_open;
            // Clients this process's chardev accepted so far are not a change the guest
            // missed: only what happens from here on is.
            port.host_clients = port.backend.chardev.clients_accepted();
            port.pending = p.pending.into();
            port.tx = tx;
            port.rx_starved = false;
            port.backend.chardev.restore_output(&p.output);
        }
        self.control_out = saved.control_out.into();
        Ok(())
    }
}
