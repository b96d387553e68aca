//! Automation outputs: every stored event, in commit order, to automation software as Sur-Gard
//! MLR2 packets over TCP (vakt connects) or a serial port, one packet at a time, each waiting
//! for the automation's ACK (0x06) and sent again on NAK (0x15) or silence.
//!
//! The output reads the event log, not the live stream: its position (the last event the
//! automation acknowledged) is in the database, so a backlog survives restarts and outages and
//! is caught up as fast as the automation acknowledges. The position is written after every
//! ACK, before the next packet goes out: after a restart nothing acknowledged is sent again —
//! except the one packet whose ACK arrived in the instant before a crash, which no protocol
//! without an idempotency key can avoid. A lease in the same row lets one node of several on a
//! database feed each output.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use metrics::{counter, gauge};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use vakt_protocol::contact_id::parse_adm_cid;
use vakt_protocol::surgard::{encode_contact_id, encode_heartbeat, encode_sia, ACK, NAK};

use crate::clock::unix_micros;
use crate::config::{OutputConfig, OutputStart};
use crate::serial_port::{self, Backoff};
use crate::store::{Db, OutputEvent};

/// How long a node holds an output without renewing; a node that dies is replaced after this.
const LEASE: Duration = Duration::from_secs(30);
/// How often a caught-up output looks for new events.
const POLL: Duration = Duration::from_millis(100);
/// Events read per query.
const BATCH: i64 = 256;
/// Unanswered sends of one packet after which a TCP connection is taken for dead.
const TCP_TIMEOUTS_BEFORE_RECONNECT: u32 = 3;

/// The packet for one event, or `None` for an event that has no Sur-Gard form (a frame stored
/// unprocessed, or the second and later events of a SIA block, which went with the first).
pub fn packet(cfg: &OutputConfig, e: &OutputEvent) -> Option<BytesMut> {
    let data = e.data.as_deref()?;
    let mut out = BytesMut::new();
    match e.scheme.as_deref() {
        Some("contact_id") => {
            let cid = parse_adm_cid(data.as_bytes()).ok()?;
            let account = cid
                .account
                .map(|a| a.as_str().to_owned())
                .unwrap_or_else(|| e.account.clone());
            encode_contact_id(&cfg.receiver, &cfg.line, &account, &cid, &mut out);
        }
        Some("sia") if e.seq_in_frame == 0 => {
            encode_sia(&cfg.receiver, &cfg.line, data.as_bytes(), &mut out);
        }
        _ => return None,
    }
    Some(out)
}

/// Why a session with the automation ended.
enum End {
    Cancelled,
    /// The connection or port failed; reconnect.
    Lost(String),
    /// Another node holds the output now.
    LeaseLost,
}

/// Runs output `cfg` until `cancel`.
pub async fn run(cfg: OutputConfig, db: Db, node: String, cancel: CancellationToken) {
    let name = cfg.name.clone();
    gauge!("vakt_output_connected", "output" => name.clone()).set(0.0);
    let mut backoff = Backoff::default();
    // The position as last saved, read by the backlog gauge (which must move while the
    // automation is away, when no session runs).
    let shared = Arc::new(AtomicI64::new(-1));
    let backlog = tokio::spawn(backlog_gauge(db.clone(), name.clone(), shared.clone()));
    'outer: loop {
        // Hold the lease first: only then is the stored position ours to advance.
        let position = loop {
            let start = match cfg.start {
                OutputStart::Start => Ok(0),
                OutputStart::End => db.max_event_id().await,
            };
            let now = unix_micros();
            let claim = match start {
                Ok(start) => {
                    db.claim_output(&name, &node, start, now, now + micros(LEASE))
                        .await
                }
                Err(e) => Err(e),
            };
            match claim {
                Ok(Some(p)) => break p,
                Ok(None) => debug!(output = %name, "another node feeds this output"),
                Err(e) => {
                    warn!(output = %name, error = %format!("{e:#}"), "cannot read the output's position; will retry")
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break 'outer,
                _ = tokio::time::sleep(LEASE / 3) => {}
            }
        };
        gauge!("vakt_output_position", "output" => name.clone()).set(position as f64);
        shared.store(position, Ordering::Relaxed);
        let end = match connect(&cfg, &cancel).await {
            None => End::Cancelled,
            Some(Err(e)) => End::Lost(format!("connecting: {e}")),
            Some(Ok(Stream::Tcp(s))) => {
                session(s, &cfg, &db, &node, position, &shared, &cancel, true).await
            }
            Some(Ok(Stream::Serial(s))) => {
                session(s, &cfg, &db, &node, position, &shared, &cancel, false).await
            }
        };
        gauge!("vakt_output_connected", "output" => name.clone()).set(0.0);
        match end {
            End::Cancelled => break,
            End::LeaseLost => {
                warn!(output = %name, "lease lost to another node; standing by");
            }
            End::Lost(reason) => {
                counter!("vakt_output_reconnects_total", "output" => name.clone()).increment(1);
                let delay = backoff.next_delay();
                warn!(output = %name, reason = %reason, retry_in_ms = delay.as_millis() as u64,
                    "automation not reachable; events wait in the database");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        }
        backoff.reset();
    }
    backlog.abort();
    let _ = db.release_output(&name, &node).await;
    info!(output = %name, "output stopped");
}

enum Stream {
    Tcp(TcpStream),
    Serial(tokio_serial::SerialStream),
}

async fn connect(
    cfg: &OutputConfig,
    cancel: &CancellationToken,
) -> Option<std::io::Result<Stream>> {
    let attempt = async {
        match (&cfg.connect, cfg.port()) {
            (Some(addr), _) => {
                let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                    })??;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            (None, Some(port)) => serial_port::open(&port).map(Stream::Serial),
            (None, None) => Err(std::io::Error::other(
                "output has neither connect nor device",
            )),
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => None,
        r = attempt => Some(r),
    }
}

/// Keeps `vakt_output_backlog` (events stored after the output's position) current.
async fn backlog_gauge(db: Db, name: String, position: Arc<AtomicI64>) {
    loop {
        let p = position.load(Ordering::Relaxed);
        if p >= 0 {
            if let Ok(max) = db.max_event_id().await {
                gauge!("vakt_output_backlog", "output" => name.clone())
                    .set((max - p).max(0) as f64);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Feeds the automation over one connection until it fails, the lease is lost or `cancel`.
#[allow(clippy::too_many_arguments)]
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    cfg: &OutputConfig,
    db: &Db,
    node: &str,
    mut position: i64,
    shared: &AtomicI64,
    cancel: &CancellationToken,
    tcp: bool,
) -> End {
    let name = cfg.name.as_str();
    info!(
        output = name,
        position, "automation connected; sending from the stored position"
    );
    gauge!("vakt_output_connected", "output" => name.to_owned()).set(1.0);
    let heartbeat = Duration::from_secs(cfg.heartbeat_secs);
    let mut last_sent = tokio::time::Instant::now();
    let mut last_renew = tokio::time::Instant::now();
    loop {
        if cancel.is_cancelled() {
            return End::Cancelled;
        }
        let events = match db.events_after(position, BATCH).await {
            Ok(e) => e,
            Err(e) => {
                warn!(output = name, error = %format!("{e:#}"), "reading events failed; will retry");
                Vec::new()
            }
        };
        if events.is_empty() {
            if last_sent.elapsed() >= heartbeat {
                let mut hb = BytesMut::new();
                encode_heartbeat(&cfg.receiver, &cfg.line, &mut hb);
                match deliver(&mut s, &hb, cfg, tcp, cancel).await {
                    Ok(()) => counter!("vakt_output_heartbeats_total", "output" => name.to_owned())
                        .increment(1),
                    Err(end) => return end,
                }
                last_sent = tokio::time::Instant::now();
            }
            if last_renew.elapsed() >= LEASE / 3 {
                let now = unix_micros();
                match db
                    .advance_output(name, node, position, now, now + micros(LEASE))
                    .await
                {
                    Ok(true) => last_renew = tokio::time::Instant::now(),
                    Ok(false) => return End::LeaseLost,
                    Err(e) => {
                        warn!(output = name, error = %format!("{e:#}"), "renewing the lease failed")
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return End::Cancelled,
                _ = tokio::time::sleep(POLL) => {}
                // The automation closing the connection while idle is noticed here.
                r = peek_closed(&mut s) => return End::Lost(r),
            }
            continue;
        }
        for e in &events {
            if let Some(p) = packet(cfg, e) {
                if let Err(end) = deliver(&mut s, &p, cfg, tcp, cancel).await {
                    return end;
                }
                counter!("vakt_output_sent_total", "output" => name.to_owned()).increment(1);
                last_sent = tokio::time::Instant::now();
            } else {
                counter!("vakt_output_skipped_total", "output" => name.to_owned()).increment(1);
            }
            // Durable before the next packet goes out; retried until it is.
            loop {
                let now = unix_micros();
                match db
                    .advance_output(name, node, e.id, now, now + micros(LEASE))
                    .await
                {
                    Ok(true) => break,
                    Ok(false) => return End::LeaseLost,
                    Err(err) => {
                        warn!(output = name, error = %format!("{err:#}"), "saving the position failed; will retry");
                        tokio::select! {
                            _ = cancel.cancelled() => return End::Cancelled,
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                }
            }
            position = e.id;
            shared.store(position, Ordering::Relaxed);
            last_renew = tokio::time::Instant::now();
            gauge!("vakt_output_position", "output" => name.to_owned()).set(position as f64);
        }
    }
}

/// Resolves when the automation closes the connection or sends something while vakt is idle
/// (stray bytes are read and dropped).
async fn peek_closed<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b).await {
            Ok(0) => return "closed by the automation".into(),
            Ok(_) => continue,
            Err(e) => return e.to_string(),
        }
    }
}

/// Sends one packet until the automation ACKs it.
async fn deliver<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    packet: &[u8],
    cfg: &OutputConfig,
    tcp: bool,
    cancel: &CancellationToken,
) -> Result<(), End> {
    let name = cfg.name.as_str();
    let mut timeouts = 0;
    loop {
        let sent = async {
            s.write_all(packet).await?;
            s.flush().await
        };
        if let Err(e) = sent.await {
            return Err(End::Lost(format!("writing: {e}")));
        }
        let answer = tokio::select! {
            // Shutdown waits for the answer to a packet already sent, up to its timeout.
            r = tokio::time::timeout(cfg.ack_timeout(), read_answer(s)) => r,
            _ = async { cancel.cancelled().await; tokio::time::sleep(cfg.ack_timeout()).await } => {
                return Err(End::Cancelled)
            }
        };
        match answer {
            Ok(Ok(ACK)) => return Ok(()),
            Ok(Ok(_)) => {
                counter!("vakt_output_naks_total", "output" => name.to_owned()).increment(1);
                warn!(output = name, "automation answered NAK: sending again");
            }
            Ok(Err(e)) => return Err(End::Lost(e)),
            Err(_) => {
                timeouts += 1;
                counter!("vakt_output_timeouts_total", "output" => name.to_owned()).increment(1);
                warn!(
                    output = name,
                    timeout_s = cfg.ack_timeout_secs,
                    "no ACK from the automation: sending again"
                );
                if tcp && timeouts >= TCP_TIMEOUTS_BEFORE_RECONNECT {
                    return Err(End::Lost(format!("{timeouts} packets unanswered")));
                }
            }
        }
    }
}

/// The next ACK or NAK byte (others are skipped).
async fn read_answer<S: AsyncRead + Unpin>(s: &mut S) -> Result<u8, String> {
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(0) => return Err("closed by the automation".into()),
            Ok(_) if b[0] == ACK || b[0] == NAK => return Ok(b[0]),
            Ok(_) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OutputConfig {
        toml::from_str("name = \"a\"\nkind = \"surgard\"\nconnect = \"127.0.0.1:1\"").unwrap()
    }

    fn ev(scheme: &str, data: &str, seq: i32) -> OutputEvent {
        OutputEvent {
            id: 1,
            account: "1234".into(),
            scheme: Some(scheme.into()),
            data: Some(data.into()),
            seq_in_frame: seq,
            class: "alarm".into(),
        }
    }

    #[test]
    fn packets() {
        let c = cfg();
        let p = packet(&c, &ev("contact_id", "#1234|1130 01 003", 0)).unwrap();
        assert_eq!(&p[..], b"5011 181234E13001003\x14");
        let p = packet(&c, &ev("sia", "#1234|Nri1/BA501/BR501", 0)).unwrap();
        assert_eq!(&p[..], b"S011[#1234|Nri1/BA501/BR501]\x14");
        assert!(packet(&c, &ev("sia", "#1234|Nri1/BA501/BR501", 1)).is_none());
        let mut raw = ev("contact_id", "garbage", 0);
        raw.scheme = None;
        assert!(packet(&c, &raw).is_none());
    }
}
