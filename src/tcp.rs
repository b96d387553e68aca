//! DC-09 over TCP: one task per connection, frames answered in order. Works for panels that
//! connect per message and for panels that keep the connection and send many.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use metrics::{counter, gauge, histogram};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use vakt_protocol::codec::{Dc09Codec, Item};

use crate::clock::unix_micros;
use crate::pipeline::{Origin, Pipeline};

/// Initial read buffer per connection (a typical frame is 60–200 bytes).
const READ_BUFFER: usize = 256;

/// Limits applied to every connection of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_frame: usize,
    pub idle_timeout: Duration,
}

/// Accepts connections until `cancel` fires; connections are tracked by `tracker` so shutdown
/// can wait for the frames in flight.
pub async fn serve(
    listener: TcpListener,
    origin: Origin,
    pipeline: Arc<Pipeline>,
    limits: Limits,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                warn!(listener = %origin.listener, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            counter!("vakt_connections_refused_total", "listener" => origin.listener.to_string())
                .increment(1);
            warn!(listener = %origin.listener, %peer, limit = limits.max_connections,
                "connection limit reached: closing the new connection");
            drop(stream);
            continue;
        };
        let (origin, pipeline, cancel) = (origin.clone(), pipeline.clone(), cancel.clone());
        tracker.spawn(async move {
            connection(stream, peer, &origin, &pipeline, limits, &cancel).await;
            drop(permit);
        });
    }
    info!(listener = %origin.listener, "stopped accepting");
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    origin: &Origin,
    pipeline: &Pipeline,
    limits: Limits,
    cancel: &CancellationToken,
) {
    let label = origin.listener.to_string();
    counter!("vakt_connections_total", "listener" => label.clone()).increment(1);
    gauge!("vakt_connections_open", "listener" => label.clone()).increment(1.0);
    // Looked up once per connection, not once per frame.
    let ack_latency = histogram!("vakt_ack_latency_seconds", "transport" => "tcp");
    // As stored with every event: written once here rather than for each frame.
    let peer_text = peer.to_string();
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    // A small read buffer: most connections are idle most of the time, and it grows when a
    // frame needs it.
    let mut frames = FramedRead::with_capacity(rd, Dc09Codec::new(limits.max_frame), READ_BUFFER);
    debug!(listener = %origin.listener, %peer, "connected");
    // Both futures live as long as the connection. Made anew for every frame they cost a
    // timer-wheel insert and removal and a waiter-list lock each, for timers that almost never
    // fire. The idle timer is polled only while no frame is waiting, and when it fires early
    // (frames came meanwhile) it is set again from the last frame.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    let mut waiting_since = tokio::time::Instant::now();
    loop {
        // Shutdown interrupts only the wait for the next frame, never a frame being handled;
        // a frame already read wins over the idle timer.
        let next = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            r = frames.next() => r,
            _ = &mut idle => {
                let deadline = waiting_since + limits.idle_timeout;
                if tokio::time::Instant::now() < deadline {
                    idle.as_mut().reset(deadline);
                    continue;
                }
                debug!(listener = %origin.listener, %peer, "idle timeout: closing");
                counter!("vakt_idle_closes_total", "listener" => label.clone()).increment(1);
                break;
            }
        };
        let item = match next {
            None => break,
            Some(Err(e)) => {
                debug!(listener = %origin.listener, %peer, error = %e, "read failed");
                break;
            }
            Some(Ok(item)) => item,
        };
        let raw = match item {
            Item::Frame(raw) => raw,
            Item::Junk { len, reason } => {
                counter!("vakt_framing_errors_total", "transport" => "tcp", "reason" => reason.name())
                    .increment(1);
                warn!(listener = %origin.listener, %peer, len, reason = reason.name(),
                    "bytes outside any frame dropped, no answer");
                waiting_since = tokio::time::Instant::now();
                continue;
            }
        };
        let read_at = Instant::now();
        let answer = pipeline.dc09(&raw, origin, &peer_text, unix_micros()).await;
        if let Some(bytes) = answer.frame {
            if let Err(e) = wr.write_all(&bytes).await {
                warn!(listener = %origin.listener, %peer, error = %e, outcome = answer.outcome,
                    "could not write the answer");
                break;
            }
            if answer.outcome == "ack" {
                ack_latency.record(read_at.elapsed().as_secs_f64());
            }
        }
        waiting_since = tokio::time::Instant::now();
    }
    let _ = wr.shutdown().await;
    gauge!("vakt_connections_open", "listener" => label).decrement(1.0);
}
