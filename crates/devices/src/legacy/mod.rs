//! ISA devices of the legacy mode: the 16550A serial port, and the i8042
//! command port, kept only because writing 0xFE to it is how PCs reset; and the
//! CMOS clock of `rtc=on`; QEMU's isa-debug-exit port, for test guests.

mod debug_exit;
mod i8042;
mod rtc;
mod serial;

pub use debug_exit::{exit_status, DebugExit, ExitWith};
pub use i8042::I8042Reset;
pub use rtc::{host_clock, local_clock, Clock, Rtc, RtcTimer};
pub use serial::SerialPort;
