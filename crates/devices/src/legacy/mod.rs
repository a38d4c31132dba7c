//! ISA devices of the legacy mode: the 16550A serial port, and the i8042
//! command port, kept only because writing 0xFE to it is how PCs reset; and the
//! CMOS clock of `rtc=on`.

mod i8042;
mod rtc;
mod serial;

pub use i8042::I8042Reset;
pub use rtc::{host_clock, Clock, Rtc, RtcTimer};
pub use serial::SerialPort;
