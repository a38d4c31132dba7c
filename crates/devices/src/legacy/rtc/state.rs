//! The CMOS clock as saved in a snapshot.
//!
//! The clock is saved as its distance from the host's wall clock (`offset_ns`), not as
//! the time it showed: restored later, it shows the host's time plus the same offset,
//! so it has moved on by the time the snapshot sat on disk, as a battery-backed clock
//! does, and never runs backwards (restoring the same snapshot twice shows two later
//! times, not the same one). A guest that set the clock keeps its setting. The guest's
//! own clock (kvmclock) is the VMM's to restore; Linux reads the CMOS clock only at boot
//! and on `hwclock`.

use super::{nanos, Rtc, RtcTimer, CMOS_SIZE};
use crate::state::{DeviceState, StateError};
use serde::{Deserialize, Serialize};
use vm_superio::Trigger;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RtcState {
    /// The index register (port 0x70).
    pub index: u8,
    /// All 128 registers and RAM bytes (the time registers as last frozen or written).
    pub cmos: Vec<u8>,
    /// Guest time minus the host's wall clock, ns.
    pub offset_ns: i128,
    /// Pending flags of register C, and the guest time up to which they are accounted
    /// for: the time between save and restore counts as time that passed (an update
    /// interrupt the guest enabled fires once after restore, not once per second missed).
    pub flags: u8,
    pub flags_until_ns: i128,
    /// The IRQ line is asserted (until the guest reads register C).
    pub line: bool,
    pub century_written: bool,
}

impl<T: Trigger, M: RtcTimer> Rtc<T, M> {
    pub fn save_state(&self) -> RtcState {
        RtcState {
            index: self.index,
            cmos: self.cmos.to_vec(),
            offset_ns: self.offset,
            flags: self.flags,
            flags_until_ns: self.flags_until,
            line: self.line,
            century_written: self.century_written,
        }
    }

    /// Loads `state` and arms the owner's timer for the next event it implies.
    pub fn restore_state(&mut self, state: RtcState) -> Result<(), StateError> {
        let cmos: [u8; CMOS_SIZE] =
            state.cmos.try_into().map_err(|_| StateError::Invalid { device: "rtc", what: "CMOS (not 128 bytes)" })?;
        if state.index >= CMOS_SIZE as u8 {
            return Err(StateError::Invalid { device: "rtc", what: "index register" });
        }
        self.index = state.index;
        self.cmos = cmos;
        self.offset = state.offset_ns;
        self.flags = state.flags;
        // Never ahead of the restored clock by more than the time it was saved at: a host
        // whose clock is behind the saving host's would otherwise hold every event back.
        let now = nanos((self.clock)()) + self.offset;
        self.flags_until = state.flags_until_ns.min(now);
        self.line = state.line;
        self.century_written = state.century_written;
        self.account(now);
        self.rearm(now);
        Ok(())
    }
}

impl<T: Trigger + Send, M: RtcTimer> Rtc<T, M> {
    pub(super) fn save_device(&mut self) -> Result<DeviceState, StateError> {
        Ok(DeviceState::Rtc(self.save_state()))
    }

    pub(super) fn restore_device(&mut self, state: DeviceState) -> Result<(), StateError> {
        match state {
            DeviceState::Rtc(state) => self.restore_state(state),
            other => Err(other.mismatch("rtc")),
        }
    }
}
