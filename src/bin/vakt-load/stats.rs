//! Counters and latency samples, kept per task and merged at the end (no sharing on the hot
//! path). Samples are kept raw (4 bytes each, written in order) and put into one histogram at
//! the end: a histogram per task would be hundreds of KiB each, and at 1,000 tasks recording
//! into them cost more in cache misses than the rest of the load generator's own work.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::panel::{FrameKind, Verdict};

/// Everything one task observed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    /// ACK latencies in microseconds.
    pub(crate) latency_us: Vec<u32>,
    /// Open loop, long-lived TCP: the same ACKs' latencies counted from when the frame was
    /// written instead of when it was due, and how long after its due time each frame was
    /// written. Not the figure the run reports (that one charges the receiver for any wait it
    /// causes): a diagnosis of how much of it is this generator's own lateness (its timer
    /// wakes on 1 ms ticks, and it shares a CPU with whatever else runs; see `tcp::TICK`).
    pub(crate) since_write_us: Vec<u32>,
    pub(crate) late_us: Vec<u32>,
    pub(crate) sent: u64,
    pub(crate) acks: u64,
    pub(crate) acks_null: u64,
    /// ACKs that were not valid DC-09 frames (also counted in `acks`).
    pub(crate) loose_acks: u64,
    pub(crate) naks: u64,
    pub(crate) duhs: u64,
    pub(crate) wrong: u64,
    pub(crate) timeouts: u64,
    pub(crate) timeouts_null: u64,
    pub(crate) connect_errors: u64,
    pub(crate) io_errors: u64,
}

impl Stats {
    /// Records an answer.
    pub(crate) fn answer(&mut self, v: Verdict, kind: FrameKind, latency: Duration) {
        match v {
            Verdict::Ack | Verdict::LooseAck => {
                if v == Verdict::LooseAck {
                    self.loose_acks += 1;
                }
                self.acks += 1;
                if kind == FrameKind::Null {
                    self.acks_null += 1;
                }
                self.latency_us.push(micros(latency));
            }
            Verdict::Nak => self.naks += 1,
            Verdict::Duh => self.duhs += 1,
            Verdict::Wrong => self.wrong += 1,
        }
    }

    /// Open loop: records an ACK's latency from the frame's write, and how late the write was.
    pub(crate) fn written(&mut self, since_write: Duration, late: Duration) {
        self.since_write_us.push(micros(since_write));
        self.late_us.push(micros(late));
    }

    /// Records a frame that got no answer in time.
    pub(crate) fn timeout(&mut self, kind: FrameKind) {
        self.timeouts += 1;
        if kind == FrameKind::Null {
            self.timeouts_null += 1;
        }
    }

    /// Adds another task's observations.
    pub(crate) fn merge(&mut self, o: &Self) {
        self.latency_us.extend_from_slice(&o.latency_us);
        self.since_write_us.extend_from_slice(&o.since_write_us);
        self.late_us.extend_from_slice(&o.late_us);
        self.sent += o.sent;
        self.acks += o.acks;
        self.acks_null += o.acks_null;
        self.loose_acks += o.loose_acks;
        self.naks += o.naks;
        self.duhs += o.duhs;
        self.wrong += o.wrong;
        self.timeouts += o.timeouts;
        self.timeouts_null += o.timeouts_null;
        self.connect_errors += o.connect_errors;
        self.io_errors += o.io_errors;
    }

    /// The latency samples as a histogram (1 µs to 1 hour, 3 significant digits).
    pub(crate) fn histogram(&self) -> Histogram<u64> {
        histogram(&self.latency_us)
    }

    /// Open loop: latencies from the write, and write lateness (see [`Stats::since_write_us`]);
    /// `None` when nothing was recorded (closed loop, other modes).
    pub(crate) fn write_histograms(&self) -> Option<(Histogram<u64>, Histogram<u64>)> {
        (!self.late_us.is_empty())
            .then(|| (histogram(&self.since_write_us), histogram(&self.late_us)))
    }

    /// Frames sent that got anything but their ACK (or nothing).
    pub(crate) fn failures(&self) -> u64 {
        self.naks + self.duhs + self.wrong + self.timeouts + self.connect_errors + self.io_errors
    }
}

/// Microseconds, at least 1 (the histogram's lowest value).
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX).max(1)
}

fn histogram(samples_us: &[u32]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds");
    for &us in samples_us {
        h.saturating_record(u64::from(us));
    }
    h
}
