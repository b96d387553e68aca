//! Panels on UDP: one socket per simulated panel, up to W datagrams in flight, answers matched
//! by sequence number (datagrams may be answered out of order).

use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};
use vakt_protocol::dc09::{parse_frame, Quirks};

use crate::panel::{Panel, Sent};
use crate::stats::Stats;
use crate::tcp::Pace;

/// Runs one UDP panel until `pace.stop`, then waits for the answers in flight.
pub(crate) async fn panel(
    addr: SocketAddr,
    source: Option<IpAddr>,
    mut panel: Panel,
    pace: Pace,
) -> Stats {
    let mut stats = Stats::default();
    let any: IpAddr = if addr.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    let socket = match UdpSocket::bind(SocketAddr::new(source.unwrap_or(any), 0)).await {
        Ok(s) if s.connect(addr).await.is_ok() => s,
        _ => {
            stats.connect_errors += 1;
            return stats;
        }
    };
    let mut inflight: Vec<(Sent, Instant)> = Vec::with_capacity(pace.window);
    let mut wbuf = BytesMut::with_capacity(128);
    let mut rbuf = vec![0u8; 2048];
    let mut scratch = Vec::new();
    let mut next_send = pace.start;
    sleep_until(pace.start).await;
    loop {
        let now = Instant::now();
        let sending = now < pace.stop;
        // Expire what waited too long.
        inflight.retain(|(sent, t0)| {
            let alive = now < *t0 + pace.timeout;
            if !alive {
                stats.timeout(sent.kind);
            }
            alive
        });
        if !sending && inflight.is_empty() {
            break;
        }
        while sending && inflight.len() < pace.window {
            let t0 = match pace.interval {
                None => now,
                Some(_) if !Pace::due_now(next_send, now) => break,
                Some(i) => {
                    let due = next_send;
                    next_send += i;
                    Pace::clock_start(due, now)
                }
            };
            wbuf.clear();
            let sent = panel.next_frame(&mut wbuf);
            stats.sent += 1;
            if socket.send(&wbuf).await.is_err() {
                stats.io_errors += 1;
                continue;
            }
            inflight.push((sent, t0));
        }
        let give_up = inflight.iter().map(|(_, t0)| *t0 + pace.timeout).min();
        let next = match pace.interval {
            Some(_) if sending && inflight.len() < pace.window => {
                Some(Pace::wake_for(next_send).min(pace.stop))
            }
            _ if sending && inflight.is_empty() => Some(pace.stop),
            _ => None,
        };
        let wake = [give_up, next]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(pace.stop);
        tokio::select! {
            r = socket.recv(&mut rbuf) => {
                let Ok(n) = r else { continue };
                let answer = &rbuf[..n];
                let seq = parse_frame(answer, &Quirks::default())
                    .ok()
                    .and_then(|f| f.header.sequence.parse::<u16>().ok());
                match inflight.iter().position(|(s, _)| Some(s.seq) == seq) {
                    Some(i) => {
                        let (sent, t0) = inflight.swap_remove(i);
                        let v = panel.check(answer, sent, &mut scratch);
                        stats.answer(v, sent.kind, t0.elapsed());
                    }
                    // A NAK carries sequence 0000: charge it to the oldest frame.
                    None if !inflight.is_empty() => {
                        let (sent, t0) = inflight.remove(0);
                        let v = panel.check(answer, sent, &mut scratch);
                        stats.answer(v, sent.kind, t0.elapsed());
                    }
                    None => stats.wrong += 1,
                }
            }
            _ = sleep_until(wake) => {}
        }
    }
    stats
}
