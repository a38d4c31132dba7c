//! ISA devices of the legacy mode: the 16550A serial port, and the i8042
//! command port, kept only because writing 0xFE to it is how PCs reset; the
//! CMOS clock of `rtc=on`; the whole i8042 with a keyboard of `-device i8042`;
//! QEMU's isa-debug-exit port, for test guests.

mod debug_exit;
mod i8042;
mod keyboard;
mod rtc;
mod serial;

pub use debug_exit::{exit_status, DebugExit, ExitWith};
pub use i8042::I8042Reset;
pub use keyboard::{I8042Controller, I8042Port, I8042PortDevice, I8042State, Key, PendingWrite, KEYS};
pub use rtc::{host_clock, local_clock, Clock, Rtc, RtcState, RtcTimer};
pub use serial::{SerialPort, SerialState};
