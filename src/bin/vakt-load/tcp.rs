//! Panels on TCP: a long-lived connection with up to W frames in flight, or one frame per
//! connection (connect, send, read the answer, close) as many panels do.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::panel::{split_answer, Panel, Sent, Verdict};
use crate::stats::Stats;

/// When and how much one connection sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Frames in flight at most.
    pub(crate) window: usize,
    /// Open loop: one frame every `interval`; closed loop: `None` (send when the window allows).
    pub(crate) interval: Option<Duration>,
    /// First send.
    pub(crate) start: Instant,
    /// No new frames after this.
    pub(crate) stop: Instant,
    /// An answer later than this counts as a timeout.
    pub(crate) timeout: Duration,
}

/// tokio's timers fire on 1 ms ticks, a deadline rounded up to the next: a task that slept until
/// a frame's due time wrote it 1.0 ms late at the median (2.7–3.0 ms at the p99, 10,000 frames/s
/// over 1,000 connections), and that lateness was counted as the receiver's latency. So an
/// open-loop task wakes up to a tick early and writes every frame due within the coming tick.
const TICK: Duration = Duration::from_millis(1);

impl Pace {
    /// Open loop: whether the frame due at `due` is written now (it is due within a tick).
    pub(crate) fn due_now(due: Instant, now: Instant) -> bool {
        due <= now + TICK
    }

    /// Open loop: when to wake for the frame due at `due`.
    pub(crate) fn wake_for(due: Instant) -> Instant {
        due.checked_sub(TICK).unwrap_or(due)
    }

    /// Open loop: where a frame's latency counts from: its due time, or its write if that came
    /// first. A frame written early cannot be answered before it is written; one written late
    /// charges the receiver for the wait, as a receiver that holds up the window must be (no
    /// coordinated omission).
    pub(crate) fn clock_start(due: Instant, now: Instant) -> Instant {
        due.min(now)
    }
}

/// Opens a connection from `source` (any local address when `None`).
pub(crate) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    // Small buffers: at 100,000 connections the defaults would be gigabytes of kernel memory.
    let _ = socket.set_recv_buffer_size(4096);
    let _ = socket.set_send_buffer_size(4096);
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs one long-lived connection until `pace.stop`, then waits for the answers in flight.
pub(crate) async fn persistent(stream: TcpStream, mut panel: Panel, pace: Pace) -> Stats {
    let mut stats = Stats::default();
    let (mut rd, mut wr) = stream.into_split();
    // Each frame with where its latency counts from, when it was due and when it was written.
    let mut inflight: VecDeque<(Sent, Instant, Instant, Instant)> =
        VecDeque::with_capacity(pace.window);
    let mut rbuf = BytesMut::with_capacity(128);
    let mut wbuf = BytesMut::with_capacity(128);
    let mut scratch = Vec::new();
    let mut next_send = pace.start;
    let mut written = 0;
    sleep_until(pace.start).await;
    loop {
        let now = Instant::now();
        let sending = now < pace.stop;
        if !sending && inflight.is_empty() {
            break;
        }
        while sending && inflight.len() < pace.window {
            let (t0, due) = match pace.interval {
                None => (now, now),
                Some(_) if !Pace::due_now(next_send, now) => break,
                // Open loop: latency counts from when the frame was due (see `clock_start`),
                // so a receiver that makes us wait is charged for it.
                Some(i) => {
                    let due = next_send;
                    next_send += i;
                    (Pace::clock_start(due, now), due)
                }
            };
            let sent = panel.next_frame(&mut wbuf);
            inflight.push_back((sent, t0, due, due));
            stats.sent += 1;
            written += 1;
        }
        if !wbuf.is_empty() {
            if wr.write_all(&wbuf).await.is_err() {
                stats.io_errors += inflight.len() as u64;
                return stats;
            }
            wbuf.clear();
            let at = Instant::now();
            for f in inflight.iter_mut().rev().take(written) {
                f.3 = at;
            }
        }
        written = 0;
        let give_up = inflight.front().map(|(_, t0, _, _)| *t0 + pace.timeout);
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
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(0) | Err(_) => {
                    stats.io_errors += inflight.len() as u64;
                    return stats;
                }
                Ok(_) => {
                    while let Some((skip, end)) = split_answer(&rbuf) {
                        let answer = rbuf.split_to(end);
                        let Some((sent, t0, due, at)) = inflight.pop_front() else {
                            stats.wrong += 1;
                            continue;
                        };
                        let v = panel.check(&answer[skip..], sent, &mut scratch);
                        stats.answer(v, sent.kind, t0.elapsed());
                        if pace.interval.is_some() && v.is_ack() {
                            stats.written(at.elapsed(), at.saturating_duration_since(due));
                        }
                    }
                }
            },
            _ = sleep_until(wake) => {
                if give_up.is_some_and(|g| Instant::now() >= g) {
                    // Answers come in order on a connection: once one is missing the rest
                    // cannot be matched. Count them all and stop this connection.
                    for (sent, ..) in inflight.drain(..) {
                        stats.timeout(sent.kind);
                    }
                    return stats;
                }
            }
        }
    }
    stats
}

/// Runs one-frame-per-connection panels until `pace.stop`.
pub(crate) async fn per_frame(
    addr: SocketAddr,
    source: Option<IpAddr>,
    mut panel: Panel,
    pace: Pace,
) -> Stats {
    let mut stats = Stats::default();
    let mut wbuf = BytesMut::with_capacity(128);
    let mut rbuf = BytesMut::with_capacity(128);
    let mut scratch = Vec::new();
    let mut next_send = pace.start;
    sleep_until(pace.start).await;
    while Instant::now() < pace.stop {
        let t0 = match pace.interval {
            None => Instant::now(),
            Some(i) => {
                sleep_until(Pace::wake_for(next_send)).await;
                let due = next_send;
                next_send += i;
                Pace::clock_start(due, Instant::now())
            }
        };
        let mut stream = match connect(addr, source).await {
            Ok(s) => s,
            Err(_) => {
                stats.connect_errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        wbuf.clear();
        rbuf.clear();
        let sent = panel.next_frame(&mut wbuf);
        stats.sent += 1;
        if stream.write_all(&wbuf).await.is_err() {
            stats.io_errors += 1;
            continue;
        }
        let deadline = t0 + pace.timeout;
        let verdict = loop {
            match timeout_at(deadline, stream.read_buf(&mut rbuf)).await {
                Err(_) => break None,
                Ok(Ok(0)) | Ok(Err(_)) => break Some(Verdict::Wrong),
                Ok(Ok(_)) => {
                    if let Some((skip, end)) = split_answer(&rbuf) {
                        break Some(panel.check(&rbuf[skip..end], sent, &mut scratch));
                    }
                }
            }
        };
        match verdict {
            Some(v) => stats.answer(v, sent.kind, t0.elapsed()),
            None => stats.timeout(sent.kind),
        }
    }
    stats
}
