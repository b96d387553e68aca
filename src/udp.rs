//! DC-09 over UDP: one frame per datagram, answered to the datagram's source.

use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, histogram};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::clock::unix_micros;
use crate::pipeline::{Origin, Pipeline};

/// Receives datagrams until `cancel` fires. Each is handled in its own task (storing takes a
/// commit), at most `max_in_flight` at a time; beyond that the socket is not read, and the
/// kernel's buffer and the panels' retries absorb the burst.
pub async fn serve(
    socket: UdpSocket,
    origin: Origin,
    pipeline: Arc<Pipeline>,
    max_in_flight: usize,
    max_frame: usize,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let socket = Arc::new(socket);
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut buf = vec![0u8; 65536];
    // Looked up once, not once per datagram.
    let ack_latency = histogram!("vakt_ack_latency_seconds", "transport" => "udp");
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let (len, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable from an earlier answer shows up here on Linux.
                    warn!(listener = %origin.listener, error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        let read_at = Instant::now();
        if len > max_frame {
            counter!("vakt_framing_errors_total", "transport" => "udp", "reason" => "oversize")
                .increment(1);
            warn!(listener = %origin.listener, %peer, len, "datagram longer than a frame: no answer");
            continue;
        }
        let raw = buf[..len].to_vec();
        let (socket, origin, pipeline) = (socket.clone(), origin.clone(), pipeline.clone());
        let ack_latency = ack_latency.clone();
        tracker.spawn(async move {
            let answer = pipeline.dc09(&raw, &origin, &peer.to_string(), unix_micros()).await;
            if let Some(bytes) = answer.frame {
                match socket.send_to(&bytes, peer).await {
                    Ok(_) if answer.outcome == "ack" => {
                        ack_latency.record(read_at.elapsed().as_secs_f64());
                    }
                    Ok(_) => {}
                    Err(e) => warn!(listener = %origin.listener, %peer, error = %e, "could not send the answer"),
                }
            }
            drop(permit);
        });
    }
    info!(listener = %origin.listener, "stopped receiving");
}
