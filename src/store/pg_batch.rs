//! PostgreSQL: a batch's events and zone changes as whole arrays (`UNNEST`), and the statement
//! that claims the batch's identities, inserts its events and zones and reads the alarm epoch
//! in one round trip.
//!
//! Every statement of a PostgreSQL commit is a round trip, and at 10,000 events/s a commit
//! holds about twenty frames: its time is mostly round trips (six of ~0.16 ms each besides the
//! work, `RUST_LOG=sqlx::query=debug`), and the next batch waits for it. Data-modifying `WITH`
//! clauses run to completion whether or not the final `SELECT` reads them, so the four steps
//! can go together. The claim's outcome is only known afterwards: the statement inserts every
//! frame as new, and the writer rolls it back and commits step by step if any identity was
//! not claimed (another node stored that frame within the duplicate window, which only a
//! panel failing over between nodes makes happen). The ids the rolled-back insert drew stay
//! unused, as after any rolled-back PostgreSQL insert; outputs and queries read ids as
//! "after this one", never as a count.

use std::sync::OnceLock;

use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Postgres, Row};

use super::{EventRow, EVENT_COLUMNS, EVENT_COLUMN_COUNT};
use crate::dedup::Key;
use crate::site_state::ZoneRow;

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// PostgreSQL types of [`EVENT_COLUMNS`], in order.
const EVENT_TYPES: [&str; EVENT_COLUMN_COUNT] = [
    "text", "bigint", "text", "text", "text", "text", "text", "bool", "text", "text", "text",
    "text", "text", "bigint", "text", "text", "int", "text", "text", "text", "text", "text",
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "bytea", "bytea",
];

/// Columns of `zones` in the order [`bind_zones`] binds them, and their types.
const ZONE_COLUMNS: &str = "account, zone, partition, state, since, code, frame_ref, seq_in_frame";
const ZONE_TYPES: [&str; 8] = [
    "text", "text", "text", "text", "bigint", "text", "text", "int",
];

/// `UNNEST($first::t1[], $first+1::t2[], …)`.
fn unnest(types: &[&str], first: usize) -> String {
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect();
    format!("UNNEST({})", arrays.join(", "))
}

/// The events INSERT with its arrays from parameter `first` on. `ORDER BY ord` keeps the ids
/// in the batch's order, so the events of a frame get ascending ids as they do with VALUES.
fn events_insert(first: usize) -> String {
    format!(
        "INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM {} \
         WITH ORDINALITY AS u({EVENT_COLUMNS}, ord) ORDER BY ord",
        unnest(&EVENT_TYPES, first)
    )
}

/// The zones upsert with its arrays from parameter `first` on; `keeping`: a stored row in the
/// reported state is kept (see [`ZoneRow::replaces`]).
fn zones_upsert(first: usize, keeping: bool) -> String {
    format!(
        "INSERT INTO zones ({ZONE_COLUMNS}) SELECT * FROM {}{}{}",
        unnest(&ZONE_TYPES, first),
        zone_upsert!(),
        if keeping { zone_keeps_state!() } else { "" }
    )
}

/// A batch's events in one statement, one array per column, whatever the batch's size
/// (multi-row VALUES in fixed chunk sizes cost a round trip per chunk).
pub(super) fn events_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| events_insert(1))
}

/// A batch's zone rows in one statement (`keeping`: see [`zones_upsert`]).
pub(super) fn zones_sql(keeping: bool) -> &'static str {
    static KEEPING: OnceLock<String> = OnceLock::new();
    static REPLACING: OnceLock<String> = OnceLock::new();
    let cell = if keeping { &KEEPING } else { &REPLACING };
    cell.get_or_init(|| zones_upsert(1, keeping))
}

/// The duplicate claim: an identity older than the window (`$3`) is taken over, since the same
/// content after that long is a new event, not a retransmission. Returns the claimed keys.
pub(super) const CLAIM_SQL: &str = "INSERT INTO dedup (key, seen_at) SELECT k, $2 FROM \
    UNNEST($1::bytea[]) AS k ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at \
    WHERE dedup.seen_at < $3 RETURNING key";

/// Where each part's parameters start, in the order [`Batch::bind`] binds them: the claim's
/// `$1..$3`, the events' arrays, the keeping and the replacing zones' arrays, and (the one-trip
/// statement only) the alarm epoch.
const EVENTS_AT: usize = 4;
const KEEPING_AT: usize = EVENTS_AT + EVENT_COLUMN_COUNT;
const REPLACING_AT: usize = KEEPING_AT + ZONE_TYPES.len();
const EPOCH_AT: usize = REPLACING_AT + ZONE_TYPES.len();

/// Claim, events, both zone upserts and the alarm epoch in one statement: parameters
/// `$1..$3` the claim's, then the events' arrays, then the keeping and the replacing zones'.
fn together_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH claimed AS ({CLAIM_SQL}), ev AS ({}), zk AS ({}), zr AS ({}) \
             SELECT (SELECT n FROM alarm_epoch WHERE id = 1), ARRAY(SELECT key FROM claimed)",
            events_insert(EVENTS_AT),
            zones_upsert(KEEPING_AT, true),
            zones_upsert(REPLACING_AT, false)
        )
    })
}

/// The one-trip commit (see [`one_trip`]): what [`together_sql`] does, each source gated on the
/// writers' lock, then the guard. Parameters as in [`together_sql`], then the alarm epoch the
/// batch's alarm work assumed (NULL: it has none).
///
/// The lock is a `MATERIALIZED` CTE that every other clause's rows wait for (`WHERE EXISTS`, an
/// uncorrelated one-time filter evaluated before the clause's first row), so it is taken before
/// any identity is claimed, event id drawn or zone row locked, as `BEGIN; SELECT
/// pg_advisory_xact_lock(…)` takes it in the transaction path: another writer holding it and
/// waiting on a row this statement holds cannot happen.
fn one_trip_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let gate = " WHERE EXISTS (SELECT FROM writers_lock)";
        let claim = CLAIM_SQL.replace(" AS k ON CONFLICT", &format!(" AS k{gate} ON CONFLICT"));
        let events_sql =
            events_insert(EVENTS_AT).replace(" ORDER BY ord", &format!("{gate} ORDER BY ord"));
        let zones = |first, keeping| {
            zones_upsert(first, keeping).replace(
                &format!("{} ON CONFLICT", unnest(&ZONE_TYPES, first)),
                &format!("{}{gate} ON CONFLICT", unnest(&ZONE_TYPES, first)),
            )
        };
        let sql = format!(
            "WITH writers_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({})), \
             claimed AS ({claim}), ev AS ({events_sql}), zk AS ({}), zr AS ({}) \
             SELECT vakt_one_trip_guard((SELECT count(*) FROM claimed) = cardinality($1::bytea[]), \
             ${EPOCH_AT}::bigint IS NULL OR (SELECT n FROM alarm_epoch WHERE id = 1) = ${EPOCH_AT})",
            writers_lock!(),
            zones(KEEPING_AT, true),
            zones(REPLACING_AT, false)
        );
        // Every source gated (the replacements above all matched), checked once per process:
        // a statement without the lock would commit out of the nodes' order.
        assert_eq!(sql.matches(gate).count(), 4, "every source gated: {sql}");
        sql
    })
}

/// The guard's SQLSTATE (migrations/postgres/0008_one_trip_guard.sql).
const GUARD_REFUSED: &str = "VK001";

/// What [`one_trip`] did.
pub(super) enum OneTrip {
    /// Committed: every frame new, the alarm cache current.
    Committed,
    /// Rolled back whole: a frame was claimed by another node, or the alarm epoch moved.
    Refused,
}

/// Commits `batch` in one statement outside any explicit transaction (its implicit transaction
/// ends with it): one round trip where the transaction path takes three (`BEGIN` with the lock,
/// [`together`], `COMMIT`). For a batch that changes nothing else: no supervision step, no
/// partition or not-ready row, no alarm to open, raise or mark, given the alarm cache as of
/// `epoch` (`None`: the batch has no alarm work). The statement assumes every frame new and
/// `epoch` current; if either is wrong its guard raises and nothing of it stands.
pub(super) async fn one_trip(
    c: &mut PgConnection,
    batch: &Batch<'_>,
    epoch: Option<i64>,
) -> Result<OneTrip, sqlx::Error> {
    match batch.bind(one_trip_sql()).bind(epoch).execute(c).await {
        Ok(_) => Ok(OneTrip::Committed),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(GUARD_REFUSED) => {
            tracing::debug!(reason = %e.message(), "one-trip commit refused: committing step by step");
            Ok(OneTrip::Refused)
        }
        Err(e) => Err(e),
    }
}

/// A batch as [`together`] and [`one_trip`] write it: each frame's identity (once), the rows,
/// and its zone rows split into those that keep a stored row in their state and those that
/// replace it.
pub(super) struct Batch<'q> {
    keys: &'q [&'q [u8]],
    rows: &'q [(&'q mut EventRow, Option<&'q Key>)],
    keeping: Vec<&'q ZoneRow>,
    replacing: Vec<&'q ZoneRow>,
    now_micros: i64,
    cutoff_micros: i64,
}

impl<'q> Batch<'q> {
    pub(super) fn new(
        keys: &'q [&'q [u8]],
        rows: &'q [(&'q mut EventRow, Option<&'q Key>)],
        zones: &'q [ZoneRow],
        now_micros: i64,
        cutoff_micros: i64,
    ) -> Self {
        let (replacing, keeping) = super::split_zones(zones);
        Self {
            keys,
            rows,
            keeping,
            replacing,
            now_micros,
            cutoff_micros,
        }
    }

    /// `sql` with the claim's parameters, then the events' and both zone kinds' arrays.
    fn bind(&self, sql: &'q str) -> PgQuery<'q> {
        let q = sqlx::query(sql)
            .bind(self.keys)
            .bind(self.now_micros)
            .bind(self.cutoff_micros);
        bind_zones(
            bind_zones(bind_events(q, self.rows), &self.keeping),
            &self.replacing,
        )
    }
}

/// Binds the events' columns, one array each, in [`EVENT_COLUMNS`] order.
pub(super) fn bind_events<'q>(
    q: PgQuery<'q>,
    rows: &'q [(&mut EventRow, Option<&Key>)],
) -> PgQuery<'q> {
    macro_rules! col {
        (|$r:ident| $e:expr) => {
            rows.iter().map(|($r, _)| $e).collect::<Vec<_>>()
        };
    }
    q.bind(col!(|r| r.frame_ref.as_str()))
        .bind(col!(|r| r.received_at))
        .bind(col!(|r| r.listener.as_str()))
        .bind(col!(|r| r.transport))
        .bind(col!(|r| r.peer.as_str()))
        .bind(col!(|r| r.account.as_str()))
        .bind(col!(|r| r.token.as_str()))
        .bind(col!(|r| r.encrypted))
        .bind(col!(|r| r.sequence.as_str()))
        .bind(col!(|r| r.receiver.as_deref()))
        .bind(col!(|r| r.prefix.as_deref()))
        .bind(col!(|r| r.outcome))
        .bind(col!(|r| r.reason.as_deref()))
        .bind(col!(|r| r.panel_time))
        .bind(col!(|r| r.data.as_deref()))
        .bind(col!(|r| r.xdata.as_deref()))
        .bind(col!(|r| r.seq_in_frame))
        .bind(col!(|r| r.scheme))
        .bind(col!(|r| r.code.as_deref()))
        .bind(col!(|r| r.qualifier.as_deref()))
        .bind(col!(|r| r.class))
        .bind(col!(|r| r.kind))
        .bind(col!(|r| r.meaning))
        .bind(col!(|r| r.mapped_code.as_deref()))
        .bind(col!(|r| r.partition.as_deref()))
        .bind(col!(|r| r.address.as_deref()))
        .bind(col!(|r| r.address_kind))
        .bind(col!(|r| r.zone.as_deref()))
        .bind(col!(|r| r.user_no.as_deref()))
        .bind(col!(|r| r.text.as_deref()))
        .bind(col!(|r| r.event_time.as_deref()))
        .bind(
            rows.iter()
                .map(|(_, k)| k.map(|k| k.as_slice()))
                .collect::<Vec<_>>(),
        )
        .bind(col!(|r| r.raw.as_slice()))
}

/// Binds zone rows, one array per column, in [`ZONE_COLUMNS`] order.
pub(super) fn bind_zones<'q>(q: PgQuery<'q>, z: &[&'q ZoneRow]) -> PgQuery<'q> {
    q.bind(z.iter().map(|r| r.account.as_str()).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.zone.as_str()).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.partition.as_str()).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.state).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.since).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.code.as_deref()).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.frame_ref.as_str()).collect::<Vec<_>>())
        .bind(z.iter().map(|r| r.seq_in_frame).collect::<Vec<_>>())
}

/// What [`together`] found.
pub(super) struct Together {
    /// The alarm epoch, read inside the transaction (for [`super::queue`]'s cache).
    pub epoch: i64,
    /// Every identity of the batch was claimed: the statement's writes stand. Otherwise the
    /// caller must roll back.
    pub all_claimed: bool,
}

/// Claims the batch's identities and inserts its rows and both kinds of zone rows as if every
/// frame were new, in one round trip (see the module's note).
pub(super) async fn together(
    c: &mut PgConnection,
    batch: &Batch<'_>,
) -> Result<Together, sqlx::Error> {
    let row = batch.bind(together_sql()).fetch_one(c).await?;
    let (epoch, claimed): (i64, Vec<Vec<u8>>) = (row.try_get(0)?, row.try_get(1)?);
    Ok(Together {
        epoch,
        // Keys are distinct (one per frame, and the window lets no frame in twice), and
        // RETURNING gives one row per key claimed.
        all_claimed: claimed.len() == batch.keys.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-trip statement takes the lock before every clause's rows, and its guard reads
    /// the last parameter as the epoch (the statement is built once; a wrong number would bind
    /// the epoch to a zone array and every commit would be refused or fail).
    #[test]
    fn the_one_trip_statement_is_gated_and_numbered() {
        let sql = one_trip_sql();
        assert!(sql.starts_with(&format!(
            "WITH writers_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({}))",
            writers_lock!()
        )));
        let last = 3 + EVENT_COLUMN_COUNT + 2 * ZONE_TYPES.len() + 1;
        assert!(sql.contains(&format!("${last}::bigint IS NULL")), "{sql}");
        assert!(!sql.contains(&format!("${}", last + 1)), "{sql}");
        assert!(sql.contains("SELECT vakt_one_trip_guard("), "{sql}");
    }
}
