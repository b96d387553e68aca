//! Zone state a busy SQLite writer has stored the events of but not yet written to `zones`.
//!
//! With 1,000 sites the zone rows of one commit share almost no B-tree leaf, and SQLite writes
//! each changed leaf whole to the WAL: in a burst where every event changes a zone that was
//! half of SQLite's work per event. So a busy writer (the same rule as for `site_events`,
//! `src/site_copy.rs`) keeps the rows here, one per zone, and writes them sorted by site and
//! zone, where many share each leaf. The events are stored before their ACK as always; `zones`
//! is state derived from them, brought up to `derived_upto.upto` with `site_events`. A reader
//! adds the events above that mark ([`crate::store::Db::site_state`]); after a crash the
//! writer rebuilds the backlog from them.
//!
//! The rows are written in a *cycle* of pieces rather than in one transaction: written at
//! once, 16,384 rows held the writer, and every ACK behind it, for ~70 ms. A cycle takes the
//! rows held so far, sorted, and the newest event id then stored; each piece (a transaction
//! of its own, between two commits) writes the next rows in key order, and the last also
//! copies `site_events` up to that id and moves the mark there. Rows of later events wait for
//! the next cycle. A piece applied before the mark moves is harmless to a reader: folding a
//! stored row with the row of events it already reflects changes nothing
//! ([`crate::site_state::fold_zone`]).

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};

use crate::site_state::{fold_zone, ZoneRow};

/// The rows not yet written, by account and zone, and whether they are known to be all of
/// them: at start-up, and after a commit failed (it may have been stored all the same), they
/// are read again from the events above the mark before the next commit.
#[derive(Debug, Default)]
pub struct ZoneBacklog {
    /// Rows of events after the cycle's (all of them while no cycle runs), found by their
    /// own account and zone: a map keyed by a copy of both copied two strings per row.
    rows: HashTable<ZoneRow>,
    hasher: foldhash::fast::RandomState,
    cycle: Option<Cycle>,
    known: bool,
}

/// Rows being written a piece at a time, sorted, and the newest event id they cover.
#[derive(Debug)]
struct Cycle {
    rows: Vec<ZoneRow>,
    next: usize,
    upto: i64,
}

impl ZoneBacklog {
    /// Whether the backlog holds every zone change above the mark.
    pub fn is_known(&self) -> bool {
        self.known
    }

    /// Unknown until read again (after an error, or for a new connection).
    pub fn forget(&mut self) {
        self.rows.clear();
        self.cycle = None;
        self.known = false;
    }

    /// The backlog as read from the events above the mark.
    pub fn rebuilt(rows: Vec<ZoneRow>) -> Self {
        let mut b = Self {
            rows: HashTable::with_capacity(rows.len()),
            hasher: Default::default(),
            cycle: None,
            known: true,
        };
        b.absorb(rows);
        b
    }

    /// The rows of later events (a committed batch's), folded into those held.
    pub fn absorb(&mut self, rows: impl IntoIterator<Item = ZoneRow>) {
        let hasher = &self.hasher;
        for row in rows {
            let hash = hasher.hash_one(key(&row));
            match self.rows.entry(
                hash,
                |held| key(held) == key(&row),
                |r| hasher.hash_one(key(r)),
            ) {
                Entry::Occupied(mut held) => fold_zone(held.get_mut(), row),
                Entry::Vacant(v) => {
                    v.insert(row);
                }
            }
        }
    }

    /// Everything held was written (the backlog stays known, now empty).
    pub fn written(&mut self) {
        self.rows.clear();
        self.cycle = None;
    }

    /// What is held in the order it must be written: the rest of a cycle (older events),
    /// then the later rows, each part in key order so that consecutive rows share B-tree
    /// leaves. Written as two parts: a zone may be in both.
    pub fn unwritten(&self) -> [Vec<&ZoneRow>; 2] {
        let cycle = self
            .cycle
            .as_ref()
            .map(|c| c.rows[c.next..].iter().collect())
            .unwrap_or_default();
        [cycle, sorted(self.rows.iter())]
    }

    /// Whether a cycle is under way.
    pub fn cycling(&self) -> bool {
        self.cycle.is_some()
    }

    /// Starts a cycle with the rows held now, which cover the events up to `upto`.
    pub fn start_cycle(&mut self, upto: i64) {
        debug_assert!(self.cycle.is_none(), "one cycle at a time");
        let mut rows: Vec<ZoneRow> = self.rows.drain().collect();
        rows.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        self.cycle = Some(Cycle {
            rows,
            next: 0,
            upto,
        });
    }

    /// The cycle's next piece of at most `max` rows, and whether it is the last; `None`
    /// without a cycle.
    pub fn piece(&self, max: usize) -> Option<(Vec<&ZoneRow>, bool)> {
        let c = self.cycle.as_ref()?;
        let end = c.rows.len().min(c.next.saturating_add(max.max(1)));
        Some((c.rows[c.next..end].iter().collect(), end == c.rows.len()))
    }

    /// The newest event id the cycle covers.
    pub fn cycle_upto(&self) -> Option<i64> {
        self.cycle.as_ref().map(|c| c.upto)
    }

    /// The piece [`Self::piece`] gave (`rows` long) was written; after the last the cycle
    /// is over.
    pub fn piece_written(&mut self, rows: usize) {
        if let Some(c) = self.cycle.as_mut() {
            c.next += rows;
            if c.next >= c.rows.len() {
                self.cycle = None;
            }
        }
    }

    /// Zones held (a zone both in the cycle and later counts twice).
    pub fn len(&self) -> usize {
        self.rows.len() + self.cycle.as_ref().map_or(0, |c| c.rows.len() - c.next)
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A row's key in `zones`, whose order the writes follow.
fn key(r: &ZoneRow) -> (&str, &str) {
    (&r.account, &r.zone)
}

/// Rows in key order.
fn sorted<'a>(rows: impl Iterator<Item = &'a ZoneRow>) -> Vec<&'a ZoneRow> {
    let mut rows: Vec<&ZoneRow> = rows.collect();
    rows.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    rows
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::site_state::changes;
    use crate::store::EventRow;

    /// A Contact ID zone event: alarm (`1`) or restore (`3`) of `zone` in `partition`.
    fn event(i: usize, account: &str, zone: u8, partition: u8, restore: bool) -> EventRow {
        EventRow {
            account: account.into(),
            received_at: i as i64,
            frame_ref: format!("f{i}"),
            scheme: Some("contact_id"),
            code: Some("130".into()),
            qualifier: Some(if restore { "3" } else { "1" }.into()),
            class: if restore { "restore" } else { "alarm" },
            kind: Some("burglary"),
            partition: Some(format!("{partition:02}")),
            zone: Some(format!("{zone:03}")),
            ..Default::default()
        }
    }

    proptest! {
        /// However the events are cut into commits, the backlog holds what one commit of them
        /// all would write.
        #[test]
        fn folding_commits_is_committing_them_together(
            spec in prop::collection::vec((0..2usize, 0..4u8, 1..3u8, any::<bool>()), 0..60),
            cuts in prop::collection::vec(0..60usize, 0..6),
        ) {
            let events: Vec<EventRow> = spec
                .iter()
                .enumerate()
                .map(|(i, &(a, z, p, r))| event(i, ["A1", "B2"][a], z, p, r))
                .collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(events.len())).collect();
            cuts.push(0);
            cuts.push(events.len());
            cuts.sort_unstable();
            let mut backlog = ZoneBacklog::rebuilt(Vec::new());
            for w in cuts.windows(2) {
                backlog.absorb(changes(&events[w[0]..w[1]]).zones);
            }
            let mut together = changes(&events).zones;
            together.sort_by(|a, b| (&a.account, &a.zone).cmp(&(&b.account, &b.zone)));
            let [cycle, held] = backlog.unwritten();
            prop_assert!(cycle.is_empty());
            let held: Vec<ZoneRow> = held.into_iter().cloned().collect();
            prop_assert_eq!(held, together);
        }

        /// A cycle started anywhere, written in pieces of any size while later commits go on
        /// (the writer's way), leaves the table as one commit of all the events would, and a
        /// reader who folds the events above the mark into the table meanwhile sees the same.
        #[test]
        fn a_cycle_in_pieces_writes_what_one_commit_would(
            spec in prop::collection::vec((0..2usize, 0..4u8, 1..3u8, any::<bool>()), 1..60),
            commit_len in 1..8usize,
            start_after in 0..8usize,
            piece in 1..6usize,
        ) {
            let events: Vec<EventRow> = spec
                .iter()
                .enumerate()
                .map(|(i, &(a, z, p, r))| event(i, ["A1", "B2"][a], z, p, r))
                .collect();
            // The table, with the upsert's rule (src/store.rs `zone_keeps_state!`).
            let mut table: HashMap<(String, String), ZoneRow> = HashMap::new();
            let write = |table: &mut HashMap<(String, String), ZoneRow>, rows: Vec<&ZoneRow>| {
                for r in rows {
                    let key = (r.account.clone(), r.zone.clone());
                    match table.get_mut(&key) {
                        Some(held) => fold_zone(held, r.clone()),
                        None => {
                            table.insert(key, r.clone());
                        }
                    }
                }
            };
            // What a reader sees: the table with the events above the mark folded in.
            let read = |table: &HashMap<(String, String), ZoneRow>, above: &[EventRow]| {
                let mut seen = table.clone();
                write(&mut seen, changes(above).zones.iter().collect());
                let mut rows: Vec<(String, String, &'static str, i64)> = seen
                    .into_values()
                    .map(|r| (r.account, r.zone, r.state, r.since))
                    .collect();
                rows.sort();
                rows
            };
            let mut backlog = ZoneBacklog::rebuilt(Vec::new());
            let mut mark = 0;
            for (n, commit) in events.chunks(commit_len).enumerate() {
                let stored = (n * commit_len + commit.len()) as i64;
                backlog.absorb(changes(commit).zones);
                if n >= start_after && !backlog.cycling() {
                    backlog.start_cycle(stored);
                }
                if let Some((rows, last)) = backlog.piece(piece) {
                    let written = rows.len();
                    write(&mut table, rows);
                    if last {
                        mark = backlog.cycle_upto().unwrap() as usize;
                    }
                    backlog.piece_written(written);
                }
                let upto = stored as usize;
                prop_assert_eq!(
                    read(&table, &events[mark..upto]),
                    read(&HashMap::new(), &events[..upto])
                );
            }
            for part in backlog.unwritten() {
                write(&mut table, part);
            }
            prop_assert_eq!(read(&table, &[]), read(&HashMap::new(), &events));
        }
    }
}
