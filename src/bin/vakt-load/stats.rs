//! Counters and the latency histogram, kept per task and merged at the end (no sharing on
//! the hot path).

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::panel::{FrameKind, Verdict};

/// Everything one task observed.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// ACK latency in microseconds.
    pub(crate) latency: Histogram<u64>,
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

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            sent: 0,
            acks: 0,
            acks_null: 0,
            loose_acks: 0,
            naks: 0,
            duhs: 0,
            wrong: 0,
            timeouts: 0,
            timeouts_null: 0,
            connect_errors: 0,
            io_errors: 0,
        }
    }
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
                let us = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                self.latency.saturating_record(us);
            }
            Verdict::Nak => self.naks += 1,
            Verdict::Duh => self.duhs += 1,
            Verdict::Wrong => self.wrong += 1,
        }
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
        self.latency.add(&o.latency).expect("same histogram bounds");
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

    /// Frames sent that got anything but their ACK (or nothing).
    pub(crate) fn failures(&self) -> u64 {
        self.naks + self.duhs + self.wrong + self.timeouts + self.connect_errors + self.io_errors
    }
}
