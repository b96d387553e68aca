//! Serial listeners: a receiver's automation output (Sur-Gard / Bosch packets) or raw Contact
//! ID lines on a serial port. Each packet goes through the same durable store as DC-09 and is
//! answered ACK (0x06) only after its commit, NAK (0x15) when it cannot be read. The port is
//! reopened with backoff when it fails or vanishes, and the receiver's heartbeat is supervised.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use metrics::{counter, gauge, histogram};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use vakt_protocol::codec::{Item, JunkReason, SerialCodec, SerialFraming};
use vakt_protocol::surgard::{SerialOptions, ACK, NAK};

use crate::clock::unix_micros;
use crate::config::{ListenerConfig, SerialFormat, SerialPort};
use crate::escape::escape;
use crate::pipeline::{count_answer, Pipeline};
use crate::serial_packet::{self, Parsed};
use crate::serial_port::{self, Backoff};
use crate::store::{rfc3339_micros, EventRow};

/// A serial listener's settings.
#[derive(Debug, Clone)]
pub struct SerialListener {
    pub name: String,
    pub port: SerialPort,
    pub format: SerialFormat,
    pub options: SerialOptions,
    pub max_packet: usize,
    /// Silence after which the line is in communication failure; `None`: not supervised.
    pub heartbeat_timeout: Option<Duration>,
}

impl SerialListener {
    /// From a `kind = "serial"` listener entry (already checked).
    pub fn from_config(l: &ListenerConfig) -> Option<Self> {
        Some(Self {
            name: l.label(),
            port: l.port()?,
            format: l.format?,
            options: SerialOptions {
                line_digits: l.line_digits,
                ..SerialOptions::default()
            },
            max_packet: l.max_packet_bytes,
            heartbeat_timeout: l.heartbeat_timeout(),
        })
    }
}

/// What the API shows of a serial line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LineState {
    pub listener: String,
    pub device: String,
    /// `9600 8N1` style.
    pub settings: String,
    pub format: String,
    /// The device is open.
    pub open: bool,
    /// `ok`, `failed` (heartbeat missing) or `unsupervised`.
    pub communication: &'static str,
    /// Since when the line has been in communication failure.
    pub failed_since: Option<String>,
    pub last_packet_at: Option<String>,
    pub packets: u64,
    pub naks: u64,
    /// Times the device was opened (more than 1: it was lost and reopened).
    pub opens: u64,
    /// Why the device is not open, when it is not.
    pub last_error: Option<String>,
}

/// A serial line's live state, shared with the API.
#[derive(Debug)]
pub struct Line {
    state: Mutex<LineState>,
    /// Milliseconds since `epoch` of the last packet (garbage excluded).
    last_traffic_ms: AtomicU64,
    epoch: Instant,
}

impl Line {
    fn new(l: &SerialListener) -> Self {
        Self {
            state: Mutex::new(LineState {
                listener: l.name.clone(),
                device: l.port.device.clone(),
                settings: l.port.describe(),
                format: match l.format {
                    SerialFormat::Surgard => "surgard".into(),
                    SerialFormat::ContactId => "contact-id".into(),
                },
                communication: if l.heartbeat_timeout.is_some() {
                    "ok"
                } else {
                    "unsupervised"
                },
                ..LineState::default()
            }),
            last_traffic_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> LineState {
        self.state.lock().expect("line state lock").clone()
    }

    fn update(&self, f: impl FnOnce(&mut LineState)) {
        f(&mut self.state.lock().expect("line state lock"));
    }

    fn traffic(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_traffic_ms.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_traffic_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Every serial line, for the API.
pub type Lines = Arc<Vec<Arc<Line>>>;

/// Registers a line and returns it.
pub fn line(l: &SerialListener) -> Arc<Line> {
    Arc::new(Line::new(l))
}

/// Reads packets from the port until `cancel`, reopening it whenever it fails. A packet being
/// handled when `cancel` fires is finished (stored and answered) first.
pub async fn serve(
    l: SerialListener,
    line: Arc<Line>,
    pipeline: Arc<Pipeline>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut failures_logged = 0u32;
    let name = l.name.clone();
    gauge!("vakt_serial_port_open", "listener" => name.clone()).set(0.0);
    loop {
        let stream = match serial_port::open(&l.port) {
            Ok(s) => s,
            Err(e) => {
                counter!("vakt_serial_open_failures_total", "listener" => name.clone())
                    .increment(1);
                let delay = backoff.next_delay();
                // Log the first failures and then every tenth: a receiver left unplugged for a
                // night should not write thousands of lines.
                if failures_logged < 3 || failures_logged % 10 == 0 {
                    warn!(listener = %name, device = %l.port.device, error = %e,
                        retry_in_ms = delay.as_millis() as u64, "cannot open serial port");
                }
                failures_logged += 1;
                line.update(|s| {
                    s.open = false;
                    s.last_error = Some(e.to_string());
                });
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        info!(listener = %name, device = %l.port.device, settings = %l.port.describe(), "serial port open");
        backoff.reset();
        failures_logged = 0;
        gauge!("vakt_serial_port_open", "listener" => name.clone()).set(1.0);
        line.update(|s| {
            s.open = true;
            s.opens += 1;
            s.last_error = None;
        });
        let lost = read_port(stream, &l, &line, &pipeline, &cancel).await;
        gauge!("vakt_serial_port_open", "listener" => name.clone()).set(0.0);
        line.update(|s| s.open = false);
        match lost {
            None => break,
            Some(reason) => {
                counter!("vakt_serial_reopens_total", "listener" => name.clone()).increment(1);
                warn!(listener = %name, device = %l.port.device, reason = %reason,
                    "serial port lost; reopening");
                line.update(|s| s.last_error = Some(reason));
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    info!(listener = %name, "serial listener stopped");
}

/// Reads and answers packets; `None` when cancelled, otherwise why the port was lost.
async fn read_port(
    stream: tokio_serial::SerialStream,
    l: &SerialListener,
    line: &Line,
    pipeline: &Pipeline,
    cancel: &CancellationToken,
) -> Option<String> {
    let framing = match l.format {
        SerialFormat::Surgard => SerialFraming::Dc4,
        SerialFormat::ContactId => SerialFraming::Line,
    };
    let (rd, mut wr) = tokio::io::split(stream);
    let mut packets = FramedRead::new(rd, SerialCodec::new(framing, l.max_packet));
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return None,
            n = packets.next() => n,
        };
        let answer = match next {
            None => return Some("end of file".into()),
            Some(Err(e)) => return Some(e.to_string()),
            Some(Ok(Item::Frame(packet))) => {
                let read_at = Instant::now();
                let answer = handle(&packet, l, line, pipeline).await;
                if answer == Some(ACK) {
                    histogram!("vakt_ack_latency_seconds", "transport" => "serial")
                        .record(read_at.elapsed().as_secs_f64());
                }
                answer
            }
            Some(Ok(Item::Junk { len, reason })) => {
                counter!("vakt_framing_errors_total", "transport" => "serial", "reason" => reason.name())
                    .increment(1);
                if reason == JunkReason::Oversize {
                    warn!(listener = %l.name, len, limit = l.max_packet, "over-long packet dropped: NAK");
                    counter!("vakt_answers_total", "answer" => "nak", "reason" => "oversize")
                        .increment(1);
                    line.update(|s| s.naks += 1);
                    Some(NAK)
                } else {
                    warn!(listener = %l.name, len, reason = reason.name(), "bytes between packets skipped");
                    None
                }
            }
        };
        if let Some(byte) = answer {
            if let Err(e) = async {
                wr.write_all(&[byte]).await?;
                wr.flush().await
            }
            .await
            {
                return Some(format!("writing the answer: {e}"));
            }
        }
    }
}

/// Stores one packet's events and says what to answer (`None`: nothing, so the receiver sends
/// it again after its own timeout).
async fn handle(packet: &[u8], l: &SerialListener, line: &Line, pipeline: &Pipeline) -> Option<u8> {
    let received_at = unix_micros();
    line.traffic();
    line.update(|s| {
        s.packets += 1;
        s.last_packet_at = Some(rfc3339_micros(received_at));
    });
    let base = EventRow {
        frame_ref: pipeline.frame_ref(),
        received_at,
        listener: l.name.clone(),
        transport: "serial",
        peer: l.port.device.clone(),
        raw: packet.to_vec(),
        ..EventRow::default()
    };
    let count = |token, outcome, reason| count_answer("serial", token, outcome, reason);
    match serial_packet::parse(packet, l.format, &l.options, &base) {
        Ok(Parsed::Heartbeat) => {
            counter!("vakt_supervision_total", "transport" => "serial").increment(1);
            count("heartbeat", "ack", "supervision");
            debug!(listener = %l.name, "receiver heartbeat: ACK");
            Some(ACK)
        }
        Ok(Parsed::Events(rows)) => {
            let token = if rows.first().is_some_and(|r| r.token == "SIA-DCS") {
                "SIA-DCS"
            } else {
                "ADM-CID"
            };
            let account = rows.first().map(|r| r.account.clone()).unwrap_or_default();
            match pipeline.store_rows(rows).await {
                Ok(()) => {
                    count(token, "ack", "stored");
                    debug!(listener = %l.name, account, "packet stored: ACK");
                    Some(ACK)
                }
                Err(reason) => {
                    count(token, "none", reason);
                    warn!(listener = %l.name, account, reason,
                        "packet not stored: no answer, the receiver will send it again");
                    None
                }
            }
        }
        Err(e) => {
            count("unknown", "nak", e.kind());
            line.update(|s| s.naks += 1);
            warn!(listener = %l.name, reason = e.kind(), detail = %e,
                bytes = %escape(&packet[..packet.len().min(120)]), "unreadable packet: NAK");
            Some(NAK)
        }
    }
}

/// Raises a receiver communication failure (`YC`, stored as an event of account `@listener`)
/// when the line has been silent longer than `timeout`, and the restore (`YK`) when it talks
/// again. Checks four times a second; a store that fails is tried again at the next check.
pub async fn supervise(
    l: SerialListener,
    timeout: Duration,
    line: Arc<Line>,
    pipeline: Arc<Pipeline>,
    cancel: CancellationToken,
) {
    // A line that never speaks after start-up fails after one timeout too.
    line.traffic();
    let mut failed = false;
    let name = l.name.clone();
    gauge!("vakt_serial_line_up", "listener" => name.clone()).set(1.0);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let silent = line.silent_for();
        let now_failed = silent > timeout;
        if now_failed == failed {
            continue;
        }
        let at = unix_micros();
        let base = EventRow {
            frame_ref: pipeline.frame_ref(),
            received_at: at,
            listener: name.clone(),
            transport: "serial",
            peer: l.port.device.clone(),
            ..EventRow::default()
        };
        let row = serial_packet::line_event(&base, now_failed);
        if let Err(reason) = pipeline.store_rows(vec![row]).await {
            warn!(listener = %name, reason, "could not store the line's communication state; will retry");
            continue;
        }
        failed = now_failed;
        gauge!("vakt_serial_line_up", "listener" => name.clone()).set(if failed {
            0.0
        } else {
            1.0
        });
        if failed {
            counter!("vakt_serial_line_failures_total", "listener" => name.clone()).increment(1);
            warn!(listener = %name, silent_s = silent.as_secs(), timeout_s = timeout.as_secs(),
                "receiver communication failure: no heartbeat or packet");
        } else {
            info!(listener = %name, "receiver communication restored");
        }
        line.update(|s| {
            s.communication = if failed { "failed" } else { "ok" };
            s.failed_since = failed.then(|| rfc3339_micros(at));
        });
    }
}
