use crate::bus::BusDevice;
use crate::EventFdTrigger;
use std::collections::VecDeque;
use std::io::Write;
use vm_superio::serial::NoEvents;
use vm_superio::Serial;

/// A 16550A UART (vm-superio's model) whose transmitter writes to `out` and
/// whose receiver is fed by the VMM's event loop.
pub struct SerialPort {
    uart: Serial<EventFdTrigger, NoEvents, Box<dyn Write + Send>>,
    /// Host input the guest has not had room for yet: the UART's FIFO is
    /// small, and nothing typed may be lost.
    pending_input: VecDeque<u8>,
    output_failed: bool,
}

impl SerialPort {
    pub fn new(interrupt: EventFdTrigger, out: Box<dyn Write + Send>) -> Self {
        SerialPort { uart: Serial::new(interrupt, out), pending_input: VecDeque::new(), output_failed: false }
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
                Ok(0) => break,
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
