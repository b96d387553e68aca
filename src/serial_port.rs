//! Opening a serial port with the configured line settings (receivers in, automation out).

use std::io;
use std::time::Duration;

use tokio_serial::{DataBits, FlowControl, SerialPortBuilderExt, SerialStream, StopBits};

use crate::config::{Parity, SerialPort};

/// Opens `port` for async reading and writing, without flow control (receivers' automation
/// ports use none; the ACK/NAK handshake paces them).
pub fn open(port: &SerialPort) -> io::Result<SerialStream> {
    let data_bits = match port.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let parity = match port.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop_bits = if port.stop_bits == 2 {
        StopBits::Two
    } else {
        StopBits::One
    };
    let mut stream = tokio_serial::new(&port.device, port.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(FlowControl::None)
        .timeout(Duration::from_secs(1))
        .open_native_async()
        .map_err(io::Error::from)?;
    // Another process writing ACKs into our receiver's line would be a silent disaster.
    let _ = stream.set_exclusive(true);
    Ok(stream)
}

/// Reconnection delays: 0.5 s doubling to 30 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(500),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        d
    }

    /// After a success.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}
