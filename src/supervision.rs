//! Site supervision (issue #5): each site with a supervision interval must be heard from
//! (any accepted message, `NULL` heartbeats included) within that interval, or vakt raises a
//! communication failure for it; traffic resuming records the restore.
//!
//! The pipeline notes every message in [`Seen`] (a map in memory: cheap on the event path).
//! Once a [`SupervisionConfig::check_every`] the writer moves what was seen into the
//! `supervision` table and claims the sites whose deadline has passed, in the transaction that
//! stores the `YC` (failure) and `YK` (restore) events they cause, so those events go through
//! the same site-state and alarm rules as a panel's, and a failure is raised by exactly one
//! node. Due sites are found through an index on the deadline: a check costs time in
//! proportion to the sites that are due, not to all sites.
//!
//! Last-seen times reach the database up to one check period late; a crash loses at most that
//! much of them, which can only make a failure come that much earlier, never hide one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use vakt_protocol::event::sia_events;
use vakt_protocol::sia_dcs::parse_sia_data;

use crate::pipeline::event_row;
use crate::store::{EventRow, Upkeep};

/// `[supervision]` settings.
#[derive(Debug, Clone, Copy)]
pub struct SupervisionConfig {
    /// How often last-seen times are written and due sites checked.
    pub check_every: Duration,
    /// How long past its deadline a site may be before the failure is raised (covers network
    /// delay and the check period).
    pub grace: Duration,
}

/// Accounts heard from since the last check, with when (unix microseconds).
#[derive(Debug, Default)]
pub struct Seen(Mutex<HashMap<String, i64>>);

impl Seen {
    /// Notes a message from `account` at `at`.
    pub fn note(&self, account: &str, at: i64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(account) {
            Some(t) => *t = (*t).max(at),
            None => {
                m.insert(account.to_owned(), at);
            }
        }
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Vec<(String, i64)> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *m).into_iter().collect()
    }
}

/// The supervision step, spread over commits: the last-seen times noted since the step
/// before are written to `supervision`, then the sites past their deadline are claimed (the
/// check). All of a busy station's times in one commit held every ACK queued behind it (on
/// PostgreSQL 1,000 sites' times took 5.4 ms, once a second, and made the p99 at 10,000
/// events/s). So while frames wait, each commit writes a piece of them; a commit with no frame
/// waiting writes the rest; the check goes with the last piece, once every time of the step is
/// written, so a site heard from in time is never claimed. Each account's time is still
/// written once per step.
#[derive(Debug, Default)]
pub struct Step {
    /// The step's times not yet written, one per account.
    unwritten: Vec<(String, i64)>,
    /// A step is under way (its check not yet committed).
    under_way: bool,
}

impl Step {
    /// Starts a step with everything noted, unless one is under way.
    pub fn start(&mut self, noted: &Seen) {
        if !self.under_way {
            self.unwritten = noted.take();
            self.under_way = true;
        }
    }

    /// The last step, at shutdown: everything noted joins the step under way, if any, keeping
    /// each account's latest time.
    pub fn start_last(&mut self, noted: &Seen) {
        let more = noted.take();
        if self.unwritten.is_empty() {
            self.unwritten = more;
        } else {
            let mut all: HashMap<String, i64> = self.unwritten.drain(..).collect();
            for (account, at) in more {
                let t = all.entry(account).or_insert(at);
                *t = (*t).max(at);
            }
            self.unwritten = all.into_iter().collect();
        }
        self.under_way = true;
    }

    /// What the next commit writes of the step under way, if any: at most `piece` times when
    /// frames wait for that commit, the rest when none do; with the last piece, the check of
    /// the deadlines before `check_before` (none at shutdown).
    pub fn next(
        &mut self,
        frames_waiting: bool,
        piece: usize,
        check_before: Option<i64>,
    ) -> Option<Upkeep> {
        if !self.under_way {
            return None;
        }
        let n = if frames_waiting {
            piece.max(1).min(self.unwritten.len())
        } else {
            self.unwritten.len()
        };
        let rest = self.unwritten.split_off(n);
        let seen = std::mem::replace(&mut self.unwritten, rest);
        let last = self.unwritten.is_empty();
        Some(Upkeep {
            seen,
            check_before: if last { check_before } else { None },
        })
    }

    /// The commit of `u` failed: its times are written again before the check.
    pub fn retry(&mut self, mut u: Upkeep) {
        u.seen.append(&mut self.unwritten);
        self.unwritten = u.seen;
    }

    /// The commit of what [`Step::next`] gave is durable. True when that completed the step.
    pub fn written(&mut self) -> bool {
        let done = self.under_way && self.unwritten.is_empty();
        if done {
            self.under_way = false;
        }
        done
    }
}

/// The event vakt stores for a site's supervision: SIA `YC` (communication fail) when the
/// deadline passed, `YK` (restored) when the site is heard from again. The data block is a SIA
/// block for the site's account, so automation outputs forward it like a panel's own.
pub fn event(account: &str, failed: bool, at: i64, frame_ref: String) -> EventRow {
    let data = format!("#{account}|N{}", if failed { "YC" } else { "YK" });
    let base = EventRow {
        frame_ref,
        received_at: at,
        listener: "supervision".into(),
        transport: "internal",
        peer: "vakt".into(),
        account: account.to_owned(),
        token: "SIA-DCS".into(),
        sequence: "0000".into(),
        outcome: "ack",
        data: Some(data.clone()),
        raw: data.clone().into_bytes(),
        ..EventRow::default()
    };
    match parse_sia_data(data.as_bytes()) {
        Ok(d) => event_row(&base, 0, &sia_events(&d)[0]),
        // Accounts are hex, so the block always parses; if one ever does not, the event is
        // still stored (as unprocessed) rather than lost.
        Err(_) => EventRow {
            class: "unprocessed",
            ..base
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_and_restore_events() {
        let f = event("12AB", true, 5, "r1".into());
        assert_eq!(f.code.as_deref(), Some("YC"));
        assert_eq!(f.kind, Some("communication"));
        assert_eq!(f.account, "12AB");
        assert_eq!(
            crate::alarm::category(&f),
            Some(crate::alarm::Category::Supervision)
        );
        let r = event("12AB", false, 6, "r2".into());
        assert_eq!(r.code.as_deref(), Some("YK"));
        assert_eq!(r.class, "restore");
    }

    #[test]
    fn seen_keeps_the_latest_time_per_account() {
        let s = Seen::default();
        s.note("A", 5);
        s.note("A", 3);
        s.note("B", 1);
        let mut v = s.take();
        v.sort();
        assert_eq!(v, [("A".into(), 5), ("B".into(), 1)]);
        assert!(s.take().is_empty());
    }

    fn accounts(u: &Upkeep) -> Vec<&str> {
        let mut a: Vec<&str> = u.seen.iter().map(|(a, _)| a.as_str()).collect();
        a.sort_unstable();
        a
    }

    #[test]
    fn a_step_writes_in_pieces_while_frames_wait_and_checks_last() {
        let noted = Seen::default();
        for (i, a) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            noted.note(a, i as i64);
        }
        let mut step = Step::default();
        assert!(step.next(true, 2, Some(9)).is_none(), "no step under way");
        step.start(&noted);
        // Noted during the step: the next step's.
        noted.note("F", 7);
        step.start(&noted);
        let mut written = Vec::new();
        for _ in 0..2 {
            let u = step.next(true, 2, Some(9)).expect("a piece");
            assert_eq!((u.seen.len(), u.check_before), (2, None));
            written.extend(accounts(&u).into_iter().map(str::to_owned));
            assert!(!step.written());
        }
        // The commit of the last piece fails: it comes again, with the check.
        let u = step.next(true, 2, Some(9)).expect("the last piece");
        assert_eq!((u.seen.len(), u.check_before), (1, Some(9)));
        step.retry(u);
        let u = step.next(true, 2, Some(9)).expect("the last piece again");
        assert_eq!((u.seen.len(), u.check_before), (1, Some(9)));
        written.extend(accounts(&u).into_iter().map(str::to_owned));
        assert!(step.written());
        written.sort();
        assert_eq!(written, ["A", "B", "C", "D", "E"]);
        // The next step has F only, and with no frame waiting writes it at once.
        assert!(step.next(false, 2, Some(10)).is_none());
        step.start(&noted);
        let u = step.next(false, 2, Some(10)).expect("the step");
        assert_eq!((accounts(&u), u.check_before), (vec!["F"], Some(10)));
        assert!(step.written());
    }

    #[test]
    fn the_last_step_takes_everything_noted_with_each_accounts_latest_time() {
        let noted = Seen::default();
        noted.note("A", 1);
        noted.note("B", 2);
        let mut step = Step::default();
        step.start(&noted);
        let u = step.next(true, 1, Some(5)).expect("a piece");
        step.retry(u);
        // Shutdown while the step is under way: B again, later, and C.
        noted.note("B", 8);
        noted.note("C", 3);
        step.start_last(&noted);
        let mut u = step.next(false, 1, None).expect("the rest");
        u.seen.sort();
        assert_eq!(u.seen, [("A".into(), 1), ("B".into(), 8), ("C".into(), 3)]);
        assert_eq!(u.check_before, None);
        assert!(step.written());
    }
}
