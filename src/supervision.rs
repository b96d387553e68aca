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
use crate::store::EventRow;

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

    /// Puts back what a failed commit took (keeping the later time of each account).
    pub fn restore(&self, seen: Vec<(String, i64)>) {
        for (a, at) in seen {
            self.note(&a, at);
        }
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
        s.restore(v);
        s.note("A", 9);
        let mut v = s.take();
        v.sort();
        assert_eq!(v, [("A".into(), 9), ("B".into(), 1)]);
    }
}
