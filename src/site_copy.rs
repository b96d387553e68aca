//! When the writer brings the tables derived from `events` up to date (SQLite): it copies
//! stored events into `site_events`, where a site's events are found
//! (migrations/sqlite/0006_site_events.sql says why it is a copy and not an index), and writes
//! zone state to `zones` (`src/zone_backlog.rs`). Both follow the rule below, in the same
//! commit or the same bulk cycle, up to one mark (`derived_upto`).
//!
//! A copy writes each B-tree leaf it touches whole to the WAL, and with 1,000 sites the events
//! of one commit share almost no leaf: copied with every commit, that costs what the index did
//! (in a burst, 15.0–15.8 against 10.1–10.4 µs of SQLite work per event without it). Copied in
//! bulk, many entries share each leaf written, but the copy delays the next batch (~25 ms for
//! 16,384 events on this project's CI VM; 32,768 saved little more and took the burst's p99 to
//! 75–80 ms, against 60–70), too long for the ACKs of a station at 10,000 events/s, whose
//! writer has time to spare. So: with each commit while the writer stores fewer than
//! [`BUSY_RATE`] events a second, in bulk above it (README.md, "Results", has the A/B runs).

use std::time::{Duration, Instant};

/// Events per second from which the writer copies in bulk.
pub const BUSY_RATE: usize = 20_000;
/// Over how long that rate is measured.
const RATE_WINDOW: Duration = Duration::from_millis(250);
/// A bulk copy once this many events wait, or once this long has passed since the last copy:
/// a site's newest events are read from an id range of at most about this many.
pub const BULK_ROWS: usize = 16_384;
const BULK_EVERY: Duration = Duration::from_secs(1);
/// Zone rows per piece of a bulk cycle (`src/zone_backlog.rs`): a few milliseconds of the
/// writer's time between two commits, where 16,384 rows at once held every ACK for ~70 ms.
pub const ZONE_PIECE: usize = 2_048;
/// A commit copies inline only what it can in a few milliseconds; more waits for a bulk copy.
const INLINE_BACKLOG: usize = 2_048;

/// The writer's record of what is not yet copied and how busy it is.
#[derive(Debug)]
pub struct CopyPolicy {
    uncopied: usize,
    last_copy: Instant,
    window_start: Instant,
    window_rows: usize,
    busy: bool,
}

impl CopyPolicy {
    /// At start-up what is uncopied is unknown (events stored just before a crash may not
    /// be), so a bulk copy is due at once.
    pub fn new(now: Instant) -> Self {
        Self {
            uncopied: BULK_ROWS,
            last_copy: now,
            window_start: now,
            window_rows: 0,
            busy: false,
        }
    }

    /// Whether the next commit copies (everything uncopied, its own events included).
    pub fn inline(&self) -> bool {
        !self.busy && self.uncopied <= INLINE_BACKLOG
    }

    /// After a commit that stored `rows` events; `copied`: it copied inline.
    pub fn committed(&mut self, rows: usize, copied: bool, now: Instant) {
        if copied {
            self.uncopied = 0;
            self.last_copy = now;
        } else {
            self.uncopied += rows;
        }
        self.window_rows += rows;
        let span = now.saturating_duration_since(self.window_start);
        if span >= RATE_WINDOW {
            self.busy = self.window_rows as f64 >= BUSY_RATE as f64 * span.as_secs_f64();
            self.window_start = now;
            self.window_rows = 0;
        }
    }

    /// Whether a bulk copy is due.
    pub fn bulk_due(&self, now: Instant) -> bool {
        self.uncopied > 0
            && (self.uncopied >= BULK_ROWS
                || now.saturating_duration_since(self.last_copy) >= BULK_EVERY)
    }

    /// After a bulk copy.
    pub fn copied(&mut self, now: Instant) {
        self.uncopied = 0;
        self.last_copy = now;
    }

    /// After a bulk copy failed, or a commit failed during a cycle: tried again in
    /// [`BULK_EVERY`] (or once about [`BULK_ROWS`] more events wait), not after every commit;
    /// meanwhile no commit copies (how much is uncopied is not known, and may be a whole
    /// cycle's worth, too much for a commit that ACKs wait for).
    pub fn failed(&mut self, now: Instant) {
        self.uncopied = INLINE_BACKLOG + 1;
        self.last_copy = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits of `rows` events every `gap`, `n` of them, from `*now`.
    fn run(p: &mut CopyPolicy, now: &mut Instant, rows: usize, gap: Duration, n: usize) {
        for _ in 0..n {
            *now += gap;
            let inline = p.inline();
            p.committed(rows, inline, *now);
            if p.bulk_due(*now) {
                p.copied(*now);
            }
        }
    }

    #[test]
    fn a_quiet_writer_copies_with_every_commit_a_busy_one_in_bulk() {
        let mut now = Instant::now();
        let mut p = CopyPolicy::new(now);
        assert!(!p.inline(), "unknown at start-up");
        assert!(p.bulk_due(now));
        p.copied(now);
        // 10,000 events/s in commits of 10: every commit copies, even after a larger one.
        run(&mut p, &mut now, 10, Duration::from_millis(1), 500);
        assert!(p.inline());
        p.committed(300, true, now);
        assert!(p.inline() && !p.bulk_due(now));
        // 200,000 events/s: after one rate window, bulk.
        run(&mut p, &mut now, 200, Duration::from_millis(1), 300);
        assert!(!p.inline());
        let mut bulk = 0;
        for _ in 0..1000 {
            now += Duration::from_millis(1);
            p.committed(200, p.inline(), now);
            if p.bulk_due(now) {
                assert!(p.uncopied >= BULK_ROWS && p.uncopied < BULK_ROWS + 200);
                p.copied(now);
                bulk += 1;
            }
        }
        assert_eq!(
            bulk,
            200_000 / BULK_ROWS,
            "one bulk copy per {BULK_ROWS} events"
        );
        // Back to quiet: inline again once the window shows it and the backlog is copied.
        run(&mut p, &mut now, 10, Duration::from_millis(1), 1_500);
        assert!(p.inline());
    }

    #[test]
    fn a_failed_bulk_copy_waits_before_it_is_tried_again() {
        let mut now = Instant::now();
        let mut p = CopyPolicy::new(now);
        assert!(p.bulk_due(now));
        p.failed(now);
        assert!(!p.bulk_due(now), "not again at once");
        assert!(!p.inline(), "nor inline: the backlog is unknown");
        now += BULK_EVERY;
        assert!(p.bulk_due(now));
        // A quiet writer with little uncopied does not copy inline after a failure either.
        p.copied(now);
        p.committed(10, false, now);
        assert!(p.inline());
        p.failed(now);
        assert!(!p.inline() && !p.bulk_due(now));
        assert!(p.bulk_due(now + BULK_EVERY));
    }
}
