use crate::bus::BusDevice;
use crate::state::{DeviceState, StateError};
use crate::EventFdTrigger;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write;
use vm_superio::serial::SerialEvents;
use vm_superio::Serial;

/// vm-superio's `SerialState` (the UART's registers and receive FIFO), mirrored for
/// serde, plus the host input the FIFO had no room for yet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SerialState {
    pub baud_divisor_low: u8,
    pub baud_divisor_high: u8,
    pub interrupt_enable: u8,
    pub interrupt_identification: u8,
    pub line_control: u8,
    pub line_status: u8,
    pub modem_control: u8,
    pub modem_status: u8,
    pub scratch: u8,
    /// The receive FIFO (at most 64 bytes, vm-superio's FIFO size).
    pub in_buffer: Vec<u8>,
    /// Typed on the host, not yet in the FIFO.
    pub pending_input: Vec<u8>,
}

impl From<vm_superio::serial::SerialState> for SerialState {
    fn from(s: vm_superio::serial::SerialState) -> Self {
        SerialState {
            baud_divisor_low: s.baud_divisor_low,
            baud_divisor_high: s.baud_divisor_high,
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            in_buffer: s.in_buffer,
            pending_input: Vec::new(),
        }
    }
}

impl SerialState {
    fn uart(&self) -> vm_superio::serial::SerialState {
        vm_superio::serial::SerialState {
            baud_divisor_low: self.baud_divisor_low,
            baud_divisor_high: self.baud_divisor_high,
            interrupt_enable: self.interrupt_enable,
            interrupt_identification: self.interrupt_identification,
            line_control: self.line_control,
            line_status: self.line_status,
            modem_control: self.modem_control,
            modem_status: self.modem_status,
            scratch: self.scratch,
            in_buffer: self.in_buffer.clone(),
        }
    }
}

/// Counts the guest's bytes in and out for Firecracker's `uart` metrics.
#[derive(Clone, Copy, Debug)]
pub struct UartCounters;

impl SerialEvents for UartCounters {
    fn buffer_read(&self) {
        metrics::UART.read_count.inc();
    }
    fn out_byte(&self) {
        metrics::UART.write_count.inc();
    }
    fn tx_lost_byte(&self) {
        metrics::UART.missed_write_count.inc();
    }
    fn in_buffer_empty(&self) {}
}

/// A 16550A UART (vm-superio's model) whose transmitter writes to `out` and
/// whose receiver is fed by the VMM's event loop.
pub struct SerialPort {
    uart: Serial<EventFdTrigger, UartCounters, Box<dyn Write + Send>>,
    /// Host input the guest has not had room for yet: the UART's FIFO is
    /// small, and nothing typed may be lost.
    pending_input: VecDeque<u8>,
    output_failed: bool,
}

impl SerialPort {
    pub fn new(interrupt: EventFdTrigger, out: Box<dyn Write + Send>) -> Self {
        SerialPort {
            uart: Serial::with_events(interrupt, UartCounters, out),
            pending_input: VecDeque::new(),
            output_failed: false,
        }
    }

    /// Queues host input for the guest and moves as much as fits into the
    /// UART's receive FIFO (raising the RX interrupt if the guest enabled it).
    pub fn queue_input(&mut self, bytes: &[u8]) {
        self.pending_input.extend(bytes);
        self.flush_input();
    }

    /// Moves pending input into the FIFO; returns true while some is left.
    pub fn flush_input(&mut self) -> bool {
        while !self.pending_input.is_empty() {
            let (front, _) = self.pending_input.as_slices();
            match self.uart.enqueue_raw_bytes(front) {
                // A full FIFO is the guest not reading yet: the input waits here (it
                // used to be one warning line per chunk of input, a flood on stderr).
                Ok(0) | Err(vm_superio::serial::Error::FullFifo) => break,
                Ok(n) => drop(self.pending_input.drain(..n)),
                Err(e) => {
                    log::warn!("serial: cannot raise the receive interrupt: {e:?}");
                    break;
                }
            }
        }
        !self.pending_input.is_empty()
    }
}

impl SerialPort {
    fn restore_state(&mut self, state: SerialState) -> Result<(), StateError> {
        let backend = |op, e: std::io::Error| StateError::Backend { device: "serial", op, source: e };
        let trigger = self.uart.interrupt_evt().try_clone().map_err(|e| backend("cannot clone its interrupt", e))?;
        let spare = self.uart.interrupt_evt().try_clone().map_err(|e| backend("cannot clone its interrupt", e))?;
        // The output stays the one this process opened; only the registers come from the file.
        let placeholder = Serial::with_events(spare, UartCounters, Box::new(std::io::sink()) as Box<dyn Write + Send>);
        let out = std::mem::replace(&mut self.uart, placeholder).into_writer();
        // from_state refuses an over-full FIFO before using `out`, but takes it by value:
        // check first so the output is never lost.
        let full_fifo = || StateError::Invalid { device: "serial", what: "receive FIFO (over 64 bytes)" };
        if state.in_buffer.len() > 64 {
            self.uart = Serial::with_events(trigger, UartCounters, out);
            return Err(full_fifo());
        }
        // from_state raises the interrupt again if the saved registers say one is pending.
        self.uart = Serial::from_state(&state.uart(), trigger, UartCounters, out).map_err(|e| match e {
            vm_superio::serial::Error::Trigger(e) | vm_superio::serial::Error::IOError(e) => {
                backend("cannot raise its interrupt", e)
            }
            vm_superio::serial::Error::FullFifo => full_fifo(),
        })?;
        self.pending_input = state.pending_input.into();
        Ok(())
    }
}

impl BusDevice for SerialPort {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Some(first), Ok(reg)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.uart.read(reg);
        }
        // A read may have made room in the receive FIFO.
        if !self.pending_input.is_empty() {
            self.flush_input();
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let (Some(&value), Ok(reg)) = (data.first(), u8::try_from(offset)) else { return };
        if let Err(e) = self.uart.write(reg, value) {
            // Guest output has nowhere to go (stdout closed): say so once and
            // keep the guest running, as a real UART with no cable would.
            if !self.output_failed {
                log::warn!("serial: output lost: {e:?}");
                self.output_failed = true;
            }
        }
    }

    fn save(&mut self) -> Result<DeviceState, StateError> {
        let mut state = SerialState::from(self.uart.state());
        state.pending_input = self.pending_input.iter().copied().collect();
        Ok(DeviceState::Serial(state))
    }

    fn restore(&mut self, state: DeviceState) -> Result<(), StateError> {
        match state {
            DeviceState::Serial(state) => self.restore_state(state),
            other => Err(other.mismatch("serial")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use vmm_sys_util::eventfd::EventFd;

    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);
    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const DATA: u64 = 0;
    const IER: u64 = 1;
    const LSR: u64 = 5;
    const LSR_DATA_READY: u8 = 1;

    fn port() -> (SerialPort, SharedBuf, EventFd) {
        let irq = EventFd::new(libc_nonblock()).unwrap();
        let out = SharedBuf::default();
        let port = SerialPort::new(EventFdTrigger::new(irq.try_clone().unwrap()), Box::new(out.clone()));
        (port, out, irq)
    }

    fn libc_nonblock() -> i32 {
        vmm_sys_util::eventfd::EFD_NONBLOCK
    }

    #[test]
    fn transmitted_bytes_reach_the_output() {
        let (mut port, out, _irq) = port();
        for b in b"hi\n" {
            port.write(DATA, &[*b]);
        }
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hi\n");
    }

    #[test]
    fn input_larger_than_the_fifo_is_delivered_in_order_without_loss() {
        let (mut port, _out, irq) = port();
        port.write(IER, &[1]); // receive-data interrupt on
        let input: Vec<u8> = (0..200u8).collect();
        port.queue_input(&input);
        assert!(irq.read().unwrap() >= 1, "RX interrupt raised");
        let mut received = Vec::new();
        let mut byte = [0u8];
        while received.len() < input.len() {
            port.read(LSR, &mut byte);
            assert_ne!(byte[0] & LSR_DATA_READY, 0, "data ready after {} bytes", received.len());
            port.read(DATA, &mut byte);
            received.push(byte[0]);
        }
        assert_eq!(received, input);
        port.read(LSR, &mut byte);
        assert_eq!(byte[0] & LSR_DATA_READY, 0);
        assert!(!port.flush_input());
    }

    /// Registers, the FIFO and the input waiting for it survive; output keeps going to
    /// the restoring port's own writer.
    #[test]
    fn state_round_trips_into_a_fresh_port() {
        let (mut dev, _out, _irq) = port();
        dev.write(3, &[0x80]); // DLAB
        dev.write(DATA, &[0x0c]); // divisor low: 9600 baud
        dev.write(3, &[0x03]); // 8N1, DLAB off
        dev.write(7, &[0x5a]); // scratch
        dev.write(IER, &[1]);
        let input: Vec<u8> = (0..100u8).collect();
        dev.queue_input(&input);
        let saved = dev.save().unwrap();

        let (mut fresh, out, irq) = port();
        fresh.restore(saved.clone()).unwrap();
        assert!(irq.read().is_ok(), "the pending receive interrupt is raised again");
        assert_eq!(fresh.save().unwrap(), saved);
        let mut byte = [0u8];
        fresh.read(7, &mut byte);
        assert_eq!(byte, [0x5a]);
        let mut received = Vec::new();
        while received.len() < input.len() {
            fresh.read(DATA, &mut byte);
            received.push(byte[0]);
        }
        assert_eq!(received, input);
        fresh.write(DATA, b"!");
        assert_eq!(out.0.lock().unwrap().as_slice(), b"!");
    }

    #[test]
    fn a_bad_saved_fifo_or_kind_is_refused() {
        let (mut dev, out, _irq) = port();
        let DeviceState::Serial(mut state) = dev.save().unwrap() else { panic!("serial state") };
        state.in_buffer = vec![0; 65];
        assert!(matches!(dev.restore(DeviceState::Serial(state)), Err(StateError::Invalid { .. })));
        assert!(matches!(dev.restore(DeviceState::Stateless), Err(StateError::KindMismatch { .. })));
        dev.write(DATA, b"x");
        assert_eq!(out.0.lock().unwrap().as_slice(), b"x", "the output survived the refusal");
    }

    #[test]
    fn wide_and_out_of_range_accesses_are_harmless() {
        let (mut port, out, _irq) = port();
        let mut wide = [0xffu8; 4];
        port.read(LSR, &mut wide);
        assert_eq!(&wide[1..], &[0, 0, 0]);
        port.write(u64::MAX, b"x");
        port.write(DATA, &[]);
        assert!(out.0.lock().unwrap().is_empty());
    }
}
