//! The database: SQLite (embedded default) or PostgreSQL, one schema, one set of queries.
//!
//! Both backends are reached through [`Db`]; each query is written once and expanded for both
//! pool types by [`on_pool!`], so the two cannot drift apart. Placeholders are `$n` in order of
//! first use, which both SQLite and PostgreSQL read the same way.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use metrics::counter;
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, QueryBuilder, Row, SqlitePool};

use crate::dedup::Key;
use crate::site::{KeyForm, Quirk, SiteSpec};
use crate::zone_backlog::ZoneBacklog;

mod queue;
pub use queue::{AlarmCache, Supervised};

/// Migrations embedded in the binary.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection to the configured database.
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded SQLite: a connection for other writes, a pool for reads; the writer opens its
    /// own connection (with the write pool's options).
    Sqlite {
        /// Writes other than the writer's (site changes, operators, audit).
        write: SqlitePool,
        /// Reads (API, site lookups).
        read: SqlitePool,
    },
    /// PostgreSQL, shared by any number of vakt nodes.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool of whichever backend `$db` is.
macro_rules! on_pool {
    ($db:expr, $which:ident, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite { $which: $pool, .. } => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

#[macro_use]
mod access;
pub use access::{
    AttemptResult, AuditQuery, AuditRow, CodeAttempt, CodePolicy, Contact, OperatorInfo, SiteCodes,
};
mod alarms;
pub use alarms::{ActionError, Alarm, AlarmChange, AlarmFilter, SupervisionState, OUTCOMES};

/// One row of the `events` table, ready to insert.
#[derive(Debug, Clone, Default)]
pub struct EventRow {
    pub frame_ref: String,
    pub received_at: i64,
    pub listener: String,
    pub transport: &'static str,
    pub peer: String,
    pub account: String,
    pub token: String,
    pub encrypted: bool,
    pub sequence: String,
    pub receiver: Option<String>,
    pub prefix: Option<String>,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub panel_time: Option<i64>,
    pub data: Option<String>,
    pub xdata: Option<String>,
    pub seq_in_frame: i32,
    pub scheme: Option<&'static str>,
    pub code: Option<String>,
    pub qualifier: Option<String>,
    pub class: &'static str,
    pub kind: Option<&'static str>,
    pub meaning: Option<&'static str>,
    pub mapped_code: Option<String>,
    pub partition: Option<String>,
    pub address: Option<String>,
    pub address_kind: Option<&'static str>,
    pub zone: Option<String>,
    pub user_no: Option<String>,
    pub text: Option<String>,
    pub event_time: Option<String>,
    pub raw: Vec<u8>,
}

/// Columns of `events` in insert order (without `id`).
const EVENT_COLUMNS: &str = "frame_ref, received_at, listener, transport, peer, account, token, \
    encrypted, sequence, receiver, prefix, outcome, reason, panel_time, data, xdata, \
    seq_in_frame, scheme, code, qualifier, class, kind, meaning, mapped_code, partition, \
    address, address_kind, zone, user_no, text, event_time, dedup, raw";

const EVENT_COLUMN_COUNT: usize = 33;

/// A zone's upsert, after its `INSERT … VALUES`/`SELECT`: the reported state replaces the
/// stored one, and with `zone_keeps_state!` a zone already in the reported state keeps its
/// row: `since` and the event stay those that entered the state (and an unchanged row costs
/// no page write). Rows with [`crate::site_state::ZoneRow::replaces`] go without it.
macro_rules! zone_upsert {
    () => {
        " ON CONFLICT (account, zone) DO UPDATE SET partition = excluded.partition, \
         state = excluded.state, since = excluded.since, code = excluded.code, \
         frame_ref = excluded.frame_ref, seq_in_frame = excluded.seq_in_frame"
    };
}
macro_rules! zone_keeps_state {
    () => {
        " WHERE zones.state <> excluded.state OR zones.partition <> excluded.partition"
    };
}
/// The column list of the zones' chunked SQLite/PostgreSQL upserts.
const ZONES_INTO: &str =
    "INTO zones (account, zone, partition, state, since, code, frame_ref, seq_in_frame)";

/// The advisory lock PostgreSQL writers take in turns (`PG_BEGIN`, and the one-trip commit).
macro_rules! writers_lock {
    () => {
        "7451001"
    };
}

mod pg_batch;

/// PostgreSQL: the start of every writer transaction. Event ids must become visible in id
/// order, or an output reading "ids after my position" could pass over a smaller id that
/// another node commits later. Nodes take turns: the lock is held from before the ids are
/// drawn to the commit. (SQLite has one writer, so its ids commit in order anyway.) Taken in
/// the BEGIN's own simple query: one round trip for both.
const PG_BEGIN: &str = concat!("BEGIN; SELECT pg_advisory_xact_lock(", writers_lock!(), ")");

/// Rows of one site-state table in the fixed chunk sizes of `state_sql`, each chunk one
/// statement (the caller's `?` takes its error).
macro_rules! upsert_chunks {
    ($tx:expr, $backend:expr, $table:expr, $rows:expr, |$r:ident| $($bind:expr),+ $(,)?) => {{
        let mut rest = &$rows[..];
        while !rest.is_empty() {
            let (size, sql) = state_sql($table, $backend, rest.len());
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut q = sqlx::query(sql);
            for $r in chunk {
                q = q$(.bind($bind))+;
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// Zone rows: those that replace whatever is stored, and those that keep a stored row
/// already in their state (see [`crate::site_state::ZoneRow::replaces`]).
fn split_zones<'a>(
    rows: impl IntoIterator<Item = &'a crate::site_state::ZoneRow>,
) -> (
    Vec<&'a crate::site_state::ZoneRow>,
    Vec<&'a crate::site_state::ZoneRow>,
) {
    rows.into_iter().partition(|z| z.replaces)
}

/// The rows of the frames marked `fresh`, each with its frame's identity, in commit order.
fn fresh_rows<'a, 'k>(
    frames: &'a mut [(Option<&'k Key>, &mut [EventRow])],
    fresh: &[bool],
) -> Vec<(&'a mut EventRow, Option<&'k Key>)> {
    frames
        .iter_mut()
        .zip(fresh)
        .filter(|(_, new)| **new)
        .flat_map(|((key, rows), _)| {
            let key = *key;
            rows.iter_mut().map(move |r| (r, key))
        })
        .collect()
}

/// The rows of the frames marked `fresh` (as [`fresh_rows`]), with the site state and the alarm
/// work they make.
fn fresh_work<'a, 'k>(
    frames: &'a mut [(Option<&'k Key>, &mut [EventRow])],
    fresh: &[bool],
) -> (
    Vec<(&'a mut EventRow, Option<&'k Key>)>,
    crate::site_state::Changes,
    crate::alarm::Plan,
) {
    let rows = fresh_rows(frames, fresh);
    let state = crate::site_state::changes(rows.iter().map(|(r, _)| &**r));
    let plan = crate::alarm::plan(rows.iter().map(|(r, _)| &**r));
    (rows, state, plan)
}

/// The site-state tables the writer upserts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateTable {
    Partitions,
    Zones,
    /// Zone rows written whatever the stored row's state ([`crate::site_state::ZoneRow::replaces`]).
    ZonesReplacing,
    NotReady,
}

/// One statement in the fixed chunk sizes: (rows, SQLite text, PostgreSQL text).
type Chunked = Vec<(usize, String, String)>;

/// `INSERT INTO table (…) VALUES (…),(…) tail` for each of [`INSERT_CHUNKS`] rows of `cols`
/// columns, with `?` (SQLite) and `$n` (PostgreSQL) placeholders; `into` is the part from
/// `INTO` to the column list. Statements of a few fixed sizes, built once, are each prepared
/// once per connection and then found in its statement cache.
///
/// SQLite's text is `INSERT OR ROLLBACK`: a failing row then rolls back the whole transaction
/// instead of only the statement, which is what the writer does with any error anyway, and it
/// spares SQLite the statement journal, a copy of every page a multi-row statement touches.
fn chunked(into: &str, cols: usize, tail: &str) -> Chunked {
    let values = |n: usize, numbered: bool| {
        (0..n)
            .map(|row| {
                let cols: Vec<String> = (0..cols)
                    .map(|c| {
                        if numbered {
                            format!("${}", row * cols + c + 1)
                        } else {
                            "?".to_owned()
                        }
                    })
                    .collect();
                format!("({})", cols.join(","))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    INSERT_CHUNKS
        .iter()
        .map(|&n| {
            (
                n,
                format!(
                    "INSERT OR ROLLBACK {into} VALUES {}{tail}",
                    values(n, false)
                ),
                format!("INSERT {into} VALUES {}{tail}", values(n, true)),
            )
        })
        .collect()
}

/// The largest chunk of `sizes` that fits `rows`, and its text for `backend`.
fn pick(sizes: &'static Chunked, backend: Backend, rows: usize) -> (usize, &'static str) {
    let (n, sqlite, pg) = sizes
        .iter()
        .find(|(n, _, _)| *n <= rows)
        .unwrap_or_else(|| sizes.last().expect("chunk sizes"));
    (
        *n,
        if backend == Backend::Sqlite {
            sqlite
        } else {
            pg
        },
    )
}

/// The largest chunk size that fits `rows`, and the site-state upsert for it.
fn state_sql(table: StateTable, backend: Backend, rows: usize) -> (usize, &'static str) {
    static SQL: OnceLock<[Chunked; 4]> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        [
            chunked(
                "INTO partitions (account, partition, arming, user_no, changed_at, code, \
                 frame_ref, seq_in_frame)",
                8,
                " ON CONFLICT (account, partition) DO UPDATE SET arming = excluded.arming, \
                 user_no = excluded.user_no, changed_at = excluded.changed_at, \
                 code = excluded.code, frame_ref = excluded.frame_ref, \
                 seq_in_frame = excluded.seq_in_frame",
            ),
            chunked(ZONES_INTO, 8, concat!(zone_upsert!(), zone_keeps_state!())),
            chunked(ZONES_INTO, 8, zone_upsert!()),
            chunked(
                "INTO not_ready (account, partition, reason, zone, at, code, frame_ref, \
                 seq_in_frame)",
                8,
                "",
            ),
        ]
    });
    pick(&all[table as usize], backend, rows)
}

/// Rows per INSERT statement, largest first (33 columns × 64 rows stays far below either
/// database's limit on bound parameters). Powers of two, so a batch of n rows takes n / 64
/// statements plus one per set bit of the rest (57 rows: 32 + 16 + 8 + 1): each statement is
/// a round trip to SQLite's worker thread, and a commit of a few dozen frames is made of them.
const INSERT_CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The largest chunk size that fits `rows`, and the SQLite event INSERT for it.
fn insert_sql(rows: usize) -> (usize, &'static str) {
    static SQL: OnceLock<Chunked> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        chunked(
            &format!("INTO events ({EVENT_COLUMNS})"),
            EVENT_COLUMN_COUNT,
            "",
        )
    });
    pick(all, Backend::Sqlite, rows)
}

/// An event as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub frame_ref: String,
    pub received_at: String,
    pub listener: String,
    pub transport: String,
    pub peer: String,
    pub account: String,
    pub token: String,
    pub encrypted: bool,
    pub sequence: String,
    pub receiver: Option<String>,
    pub prefix: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub panel_time: Option<String>,
    pub data: Option<String>,
    pub xdata: Option<serde_json::Value>,
    pub seq_in_frame: i32,
    pub scheme: Option<String>,
    pub code: Option<String>,
    pub qualifier: Option<String>,
    pub class: String,
    pub kind: Option<String>,
    pub meaning: Option<String>,
    pub mapped_code: Option<String>,
    pub partition: Option<String>,
    pub address: Option<String>,
    pub address_kind: Option<String>,
    pub zone: Option<String>,
    pub user: Option<String>,
    pub text: Option<String>,
    pub event_time: Option<String>,
    /// The frame as received, with control bytes escaped (`\n`, `\r`, `\xNN`).
    pub raw: String,
}

/// The event that set a piece of state (find it with `frame_ref` in `/api/events`).
#[derive(Debug, Clone, Serialize)]
pub struct EventRef {
    pub frame_ref: String,
    pub seq_in_frame: i32,
}

/// A partition's arming as stored.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionState {
    pub partition: String,
    pub arming: String,
    pub user: Option<String>,
    pub changed_at: String,
    pub code: Option<String>,
    pub event: EventRef,
}

/// A zone's state as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneStateRow {
    pub zone: String,
    pub partition: String,
    pub state: String,
    pub since: String,
    pub code: Option<String>,
    pub event: EventRef,
}

/// A not-ready episode as stored.
#[derive(Debug, Clone, Serialize)]
pub struct NotReadyEpisode {
    pub id: i64,
    pub partition: String,
    pub reason: String,
    pub zone: Option<String>,
    pub at: String,
    pub code: Option<String>,
    pub event: EventRef,
}

/// Everything stored of a site's state.
#[derive(Debug, Clone)]
pub struct SiteStateRows {
    pub partitions: Vec<PartitionState>,
    pub zones: Vec<ZoneStateRow>,
    pub not_ready: Vec<NotReadyEpisode>,
}

/// What an automation output needs of an event.
#[derive(Debug, Clone)]
pub struct OutputEvent {
    pub id: i64,
    pub account: String,
    pub scheme: Option<String>,
    pub data: Option<String>,
    pub seq_in_frame: i32,
    pub class: String,
}

/// Filter for [`Db::events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub account: Option<String>,
    /// Received at or after (unix microseconds).
    pub since_micros: Option<i64>,
    /// Only ids below this (paging newest-first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Formats unix microseconds as RFC 3339 UTC.
pub fn rfc3339_micros(micros: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What a commit needs besides the frames.
pub struct CommitOptions<'a> {
    /// Unix microseconds.
    pub now: i64,
    /// Identities claimed before this are taken over (PostgreSQL duplicate check).
    pub dedup_cutoff: i64,
    /// New alarm events join a site's open alarm opened at or after this; else a new alarm opens.
    pub join_after: i64,
    /// The supervision step, when due.
    pub upkeep: Option<&'a Upkeep>,
    /// A frame reference for each event the commit makes itself (supervision).
    pub frame_ref: &'a (dyn Fn() -> String + Sync),
    /// SQLite: bring the tables derived from `events` up to this commit's events in it (copy
    /// what `site_events` lacks there, write the zone backlog and this commit's zone rows to
    /// `zones`), as an index would be written. Right while the writer is quiet; a busy one
    /// leaves both to a bulk step ([`Db::catch_up`], `src/site_copy.rs`), where many entries
    /// share each page, and this commit's zone rows join the backlog.
    pub catch_up: bool,
}

/// The supervision step of a commit.
#[derive(Debug, Default)]
pub struct Upkeep {
    /// Accounts heard from, with when.
    pub seen: Vec<(String, i64)>,
    /// Claim the sites whose deadline is before this (unix microseconds).
    pub check_before: Option<i64>,
}

/// What [`Db::catch_up`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CaughtUp {
    /// Events copied into `site_events`.
    pub events: u64,
    /// Zone rows written.
    pub zones: usize,
}

/// What a commit did.
#[derive(Debug)]
pub struct Committed {
    /// Per frame: stored (`false`: another node stored it within the duplicate window).
    pub fresh: Vec<bool>,
    /// Sites failed and restored by the supervision step.
    pub supervised: Supervised,
}

/// The WAL size (in pages) at which the writer's own commit checkpoints and the WAL restarts.
const WRITER_WAL_PAGES: u32 = 200_000;
/// The same bound for the pools' connections, which commit rarely (site changes, operators).
const POOL_WAL_PAGES: u32 = 50_000;

/// The writer's own connection, held across batches (taking one from the pool for every
/// batch costs a round of pool bookkeeping that a hot writer notices). On SQLite it is opened
/// by the writer thread itself, outside the pool, so that the connection's worker thread
/// starts on the writer's CPU (`[receiver] writer_cpu`).
#[derive(Debug)]
pub enum WriteConn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(PoolConnection<sqlx::Postgres>),
}

impl WriteConn {
    /// Closes the connection when the writer is done (SQLite: also ends its worker thread).
    pub async fn close(self) {
        match self {
            Self::Sqlite(c) => {
                if let Err(e) = c.close().await {
                    tracing::warn!(error = %e, "closing the writer's connection");
                }
            }
            Self::Postgres(c) => drop(c),
        }
    }
}

impl Db {
    /// A connection for the writer. On SQLite it commits with `synchronous=NORMAL`: a commit
    /// is durable only once the WAL file ([`Db::wal_path`]) has been fsynced, which the
    /// writer's [`crate::wal_sync`] thread does before any answer goes out.
    pub async fn writer_conn(&self) -> Result<WriteConn, sqlx::Error> {
        Ok(match self {
            Self::Sqlite { write, .. } => {
                let opts = (*write.connect_options())
                    .clone()
                    .synchronous(SqliteSynchronous::Normal)
                    // The checkpoint loop keeps the WAL copied into the database, but under a
                    // steady stream of commits the WAL never restarts by itself: it grows to this
                    // bound, where the commit that crosses it checkpoints and the next restarts
                    // the WAL, each with an fsync inside the commit. On the 2-core VM that
                    // commit took over 20 ms every time, at 10,000 events/s (20,000 WAL pages
                    // a second) every 2.5 s with 50,000 pages; 200,000 (800 MiB) makes that
                    // stall four times rarer (README, "ACK latency").
                    .pragma("wal_autocheckpoint", WRITER_WAL_PAGES.to_string());
                WriteConn::Sqlite(opts.connect().await?)
            }
            Self::Postgres(p) => WriteConn::Postgres(p.acquire().await?),
        })
    }

    /// Connects (creating an SQLite file on first run) and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let db = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("database url {url}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk when it returns. The writer's own connection
                // overrides this with NORMAL and fsyncs the WAL itself before answering
                // (`writer_conn`, `crate::wal_sync`).
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                // 64 MiB of page cache: the indexes the writer touches stay in memory.
                .pragma("cache_size", "-65536")
                // Statement journals (multi-row INSERTs) in memory, not in a temporary file.
                .pragma("temp_store", "memory")
                // Checkpoints run beside the writer (see `checkpoint`), not inside its commits;
                // this bound only applies if that task falls far behind.
                .pragma("wal_autocheckpoint", POOL_WAL_PAGES.to_string());
            // One for writes other than the writer's (which opens its own, `writer_conn`).
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await
                .with_context(|| format!("opening {url}"))?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .connect_with(opts)
                .await?;
            SQLITE_MIGRATIONS
                .run(&write)
                .await
                .context("migrating the SQLite schema")?;
            Self::Sqlite { write, read }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // synchronous_commit=on: COMMIT returns once the WAL is flushed, whatever the
            // server's default says.
            let opts = PgConnectOptions::from_str(url)
                .with_context(|| format!("database url {url}"))?
                .options([("synchronous_commit", "on")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await
                .with_context(|| format!("connecting to {}", redact_url(url)))?;
            // Takes an advisory lock, so nodes starting together migrate once.
            POSTGRES_MIGRATIONS
                .run(&pool)
                .await
                .context("migrating the PostgreSQL schema")?;
            Self::Postgres(pool)
        } else {
            anyhow::bail!("database url must start with sqlite: or postgres: (got {url:?})");
        };
        Ok(db)
    }

    /// SQLite: the WAL file the writer's commits must be fsynced through before they are
    /// answered (see [`Db::writer_conn`]). PostgreSQL commits are durable when they return.
    pub fn wal_path(&self) -> Option<std::path::PathBuf> {
        match self {
            Self::Sqlite { write, .. } => {
                let mut p = write
                    .connect_options()
                    .get_filename()
                    .as_os_str()
                    .to_owned();
                p.push("-wal");
                Some(p.into())
            }
            Self::Postgres(_) => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Self::Postgres(p) => p.close().await,
        }
    }

    /// Copies committed WAL pages into the database file without blocking the writer
    /// (SQLite's PASSIVE checkpoint, on a read connection). Returns the WAL's size in pages
    /// and how many of them are now in the database file. PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<Option<(i64, i64)>, sqlx::Error> {
        match self {
            Self::Sqlite { read, .. } => {
                let (_busy, log, done): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(read)
                        .await?;
                Ok(Some((log, done)))
            }
            Self::Postgres(_) => Ok(None),
        }
    }

    /// A trivial query, for `/health`.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, read, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Commits one batch in one transaction and returns, per frame, whether it was stored.
    /// `frames[i]` is `(identity, rows)`. On PostgreSQL the identities are first claimed in the
    /// shared `dedup` table; a frame whose identity another node claimed within the window is
    /// not stored (it is a retransmission). SQLite (one node) stores every frame given: the
    /// writer has already set aside the duplicates it knows of.
    ///
    /// The same transaction writes the site state and alarm queue the new events change and,
    /// when `upkeep` is given, the supervision step (last-seen times, restores, due sites),
    /// storing a `YC`/`YK` event for each site it fails or restores.
    pub async fn commit_batch(
        conn: &mut WriteConn,
        frames: &mut [(Option<&Key>, &mut [EventRow])],
        opts: &CommitOptions<'_>,
        alarms: &mut AlarmCache,
        zones: &mut ZoneBacklog,
    ) -> Result<Committed, sqlx::Error> {
        let (now_micros, dedup_cutoff_micros) = (opts.now, opts.dedup_cutoff);
        let mut fresh = vec![true; frames.len()];
        let mut supervised = Supervised::default();
        // SQLite: multi-row VALUES in a few fixed sizes, whose text is built once, so every
        // statement is prepared once and then found in the connection's statement cache.
        // PostgreSQL, where every statement is a round trip: one UNNEST statement.
        macro_rules! insert_events {
            (sqlite, $tx:expr, $rows:expr) => {{
                let mut rest = &mut $rows[..];
                while !rest.is_empty() {
                    let (size, sql) = insert_sql(rest.len());
                    let (chunk, tail) = rest.split_at_mut(size);
                    rest = tail;
                    let mut q = sqlx::query(sql);
                    // The rows are not needed after this (site state and alarms were
                    // computed first): their strings move into the statement instead of
                    // being copied (sqlx would copy each borrowed one, then SQLite again).
                    for (r, key) in chunk.iter_mut() {
                        q = q
                            .bind(std::mem::take(&mut r.frame_ref))
                            .bind(r.received_at)
                            .bind(std::mem::take(&mut r.listener))
                            .bind(r.transport)
                            .bind(std::mem::take(&mut r.peer))
                            .bind(std::mem::take(&mut r.account))
                            .bind(std::mem::take(&mut r.token))
                            .bind(r.encrypted)
                            .bind(std::mem::take(&mut r.sequence))
                            .bind(r.receiver.take())
                            .bind(r.prefix.take())
                            .bind(r.outcome)
                            .bind(r.reason.take())
                            .bind(r.panel_time)
                            .bind(r.data.take())
                            .bind(r.xdata.take())
                            .bind(r.seq_in_frame)
                            .bind(r.scheme)
                            .bind(r.code.take())
                            .bind(r.qualifier.take())
                            .bind(r.class)
                            .bind(r.kind)
                            .bind(r.meaning)
                            .bind(r.mapped_code.take())
                            .bind(r.partition.take())
                            .bind(r.address.take())
                            .bind(r.address_kind)
                            .bind(r.zone.take())
                            .bind(r.user_no.take())
                            .bind(r.text.take())
                            .bind(r.event_time.take())
                            .bind(key.map(|k| k.as_slice()))
                            .bind(std::mem::take(&mut r.raw));
                    }
                    q.execute(&mut *$tx).await?;
                }
            }};
            (pg, $tx:expr, $rows:expr) => {{
                if !$rows.is_empty() {
                    pg_batch::bind_events(sqlx::query(pg_batch::events_sql()), &$rows)
                        .execute(&mut *$tx)
                        .await?;
                }
            }};
        }
        macro_rules! insert_rows {
            ($tx:expr, $backend:expr, $kind:ident, $supervise:path, $alarms:path) => {{
                // Supervision first: its events are stored with the batch's.
                let mut extra: Vec<EventRow> = match opts.upkeep {
                    Some(u) => {
                        supervised =
                            $supervise(&mut *$tx, &u.seen, now_micros, u.check_before).await?;
                        supervised
                            .failed
                            .iter()
                            .map(|a| (a, true))
                            .chain(supervised.restored.iter().map(|a| (a, false)))
                            .map(|(a, failed)| {
                                crate::supervision::event(a, failed, now_micros, (opts.frame_ref)())
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                let mut rows = fresh_rows(frames, &fresh);
                rows.extend(extra.iter_mut().map(|r| (r, None)));
                // What the events change, worked out before they are inserted (SQLite's insert
                // takes the rows' strings); written in the same transaction, after them.
                let state = crate::site_state::changes(rows.iter().map(|(r, _)| &**r));
                let plan = crate::alarm::plan(rows.iter().map(|(r, _)| &**r));
                insert_events!($kind, $tx, &mut rows);
                apply_state!($tx, $backend, $kind, state);
                $alarms(&mut *$tx, &plan, opts.join_after, None, alarms).await?;
                state.zones
            }};
        }
        // Zones are the most frequent change. On PostgreSQL, where every statement is a round
        // trip, a batch's zones go in one UNNEST statement (SQLite: `upsert_zones_sqlite`).
        // Rows that replace whatever is stored (a zone that changed twice in the batch) take
        // a statement of their own, without the keep-the-state condition.
        macro_rules! upsert_zones {
            (pg, $tx:expr, $keeping:expr, $replacing:expr) => {
                for (keeping, z) in [(true, $keeping), (false, $replacing)] {
                    if !z.is_empty() {
                        pg_batch::bind_zones(sqlx::query(pg_batch::zones_sql(keeping)), &z)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
            };
        }
        // Partitions and not-ready reasons (zones, the most frequent change, go apart: on
        // PostgreSQL's one-trip path they are in the events' statement).
        macro_rules! upsert_partitions_not_ready {
            ($tx:expr, $backend:expr, $state:expr) => {{
                upsert_chunks!(
                    $tx,
                    $backend,
                    StateTable::Partitions,
                    $state.partitions,
                    |p| &p.account,
                    &p.partition,
                    p.arming,
                    &p.user_no,
                    p.changed_at,
                    &p.code,
                    &p.frame_ref,
                    p.seq_in_frame
                );
                upsert_chunks!(
                    $tx,
                    $backend,
                    StateTable::NotReady,
                    $state.not_ready,
                    |n| &n.account,
                    &n.partition,
                    n.reason,
                    &n.zone,
                    n.at,
                    &n.code,
                    &n.frame_ref,
                    n.seq_in_frame
                );
            }};
        }
        macro_rules! apply_state {
            // SQLite: zones only when catching up, the backlog (older events) first.
            ($tx:expr, $backend:expr, sqlite, $state:expr) => {{
                if opts.catch_up {
                    for part in zones.unwritten() {
                        upsert_zones_sqlite(&mut $tx, &part).await?;
                    }
                    let batch: Vec<&crate::site_state::ZoneRow> = $state.zones.iter().collect();
                    upsert_zones_sqlite(&mut $tx, &batch).await?;
                }
                upsert_partitions_not_ready!($tx, $backend, $state);
            }};
            ($tx:expr, $backend:expr, pg, $state:expr) => {{
                let (replacing, keeping) = split_zones(&$state.zones);
                upsert_zones!(pg, $tx, keeping, replacing);
                upsert_partitions_not_ready!($tx, $backend, $state);
            }};
        }
        match conn {
            WriteConn::Sqlite(c) => {
                // IMMEDIATE: the write lock from the start, so a read early in the transaction
                // can never meet another connection's newer write (SQLITE_BUSY_SNAPSHOT).
                let mut tx = c.begin_with("BEGIN IMMEDIATE").await?;
                if !zones.is_known() {
                    *zones = ZoneBacklog::rebuilt(zones_above_mark(&mut tx, None).await?);
                }
                let batch_zones = insert_rows!(
                    tx,
                    Backend::Sqlite,
                    sqlite,
                    queue::supervise_sqlite,
                    queue::alarms_sqlite
                );
                if opts.catch_up {
                    copy_into_site_events(&mut tx, None).await?;
                }
                tx.commit().await?;
                if opts.catch_up {
                    zones.written();
                } else {
                    zones.absorb(batch_zones);
                }
            }
            WriteConn::Postgres(c) => {
                let keys: Vec<&[u8]> = frames
                    .iter()
                    .filter_map(|(k, _)| k.map(|k| k.as_slice()))
                    .collect();
                // A batch that only adds events and zones, and joins alarms the cache knows
                // open, commits in one round trip (`pg_batch::one_trip`); if another node
                // claimed one of its frames or the alarm epoch moved, it is refused whole and
                // goes the transaction's way below.
                if opts.upkeep.is_none() && !frames.is_empty() {
                    let (rows, state, plan) = fresh_work(frames, &fresh);
                    let epoch = match alarms.work(&plan, opts.join_after) {
                        queue::AlarmWork::Nothing => Some(None),
                        queue::AlarmWork::JoinsUnder(epoch) => Some(Some(epoch)),
                        queue::AlarmWork::Statements => None,
                    };
                    let state_only_zones =
                        state.partitions.is_empty() && state.not_ready.is_empty();
                    if let (Some(epoch), true) = (epoch, state_only_zones) {
                        let batch = pg_batch::Batch::new(
                            &keys,
                            &rows,
                            &state.zones,
                            now_micros,
                            dedup_cutoff_micros,
                        );
                        let outcome = pg_batch::one_trip(c, &batch, epoch).await?;
                        let committed = matches!(outcome, pg_batch::OneTrip::Committed);
                        counter!("vakt_pg_one_trip_commits_total",
                            "outcome" => if committed { "committed" } else { "refused" })
                        .increment(1);
                        if committed {
                            return Ok(Committed { fresh, supervised });
                        }
                    }
                }
                // Otherwise the common case in one round trip besides BEGIN and COMMIT
                // (src/store/pg_batch.rs): every frame assumed new, rolled back if another
                // node had stored one. Last-seen times (a piece of them, or the supervision
                // step's all and its check) go first; when they find a site failed or
                // restored, the commit is rolled back and goes step by step, with those
                // events among the batch's.
                let mut fast = true;
                let mut tx = c.begin_with(PG_BEGIN).await?;
                if let Some(u) = opts.upkeep {
                    supervised =
                        queue::supervise_postgres(&mut tx, &u.seen, now_micros, u.check_before)
                            .await?;
                    fast = supervised.failed.is_empty() && supervised.restored.is_empty();
                }
                if fast && frames.is_empty() {
                    // The supervision step alone, with nothing found.
                    tx.commit().await?;
                    return Ok(Committed { fresh, supervised });
                }
                if fast {
                    let (rows, state, plan) = fresh_work(frames, &fresh);
                    let batch = pg_batch::Batch::new(
                        &keys,
                        &rows,
                        &state.zones,
                        now_micros,
                        dedup_cutoff_micros,
                    );
                    let done = pg_batch::together(&mut tx, &batch).await?;
                    if done.all_claimed {
                        upsert_partitions_not_ready!(tx, Backend::Postgres, state);
                        queue::alarms_postgres(
                            &mut tx,
                            &plan,
                            opts.join_after,
                            Some(done.epoch),
                            alarms,
                        )
                        .await?;
                        tx.commit().await?;
                        return Ok(Committed { fresh, supervised });
                    }
                    tracing::debug!(
                        "a frame of the batch was stored by another node: committing step by step"
                    );
                }
                tx.rollback().await?;
                let mut tx = c.begin_with(PG_BEGIN).await?;
                if !keys.is_empty() {
                    let claimed: Vec<Vec<u8>> = sqlx::query_scalar(pg_batch::CLAIM_SQL)
                        .bind(&keys)
                        .bind(now_micros)
                        .bind(dedup_cutoff_micros)
                        .fetch_all(&mut *tx)
                        .await?;
                    let claimed: std::collections::HashSet<&[u8]> =
                        claimed.iter().map(Vec::as_slice).collect();
                    for (i, (key, _)) in frames.iter().enumerate() {
                        if let Some(k) = key {
                            fresh[i] = claimed.contains(k.as_slice());
                        }
                    }
                }
                // (Zones were written in it: PostgreSQL keeps no backlog.)
                let _ = insert_rows!(
                    tx,
                    Backend::Postgres,
                    pg,
                    queue::supervise_postgres,
                    queue::alarms_postgres
                );
                tx.commit().await?;
            }
        }
        Ok(Committed { fresh, supervised })
    }

    /// Identities of the frames stored since `since_micros`, with when (to rebuild the
    /// duplicate window at start-up).
    pub async fn recent_dedup(&self, since_micros: i64) -> Result<Vec<(Key, i64)>> {
        let rows: Vec<(Vec<u8>, i64)> = on_pool!(self, read, |p| {
            sqlx::query_as(
                "SELECT dedup, received_at FROM events \
                 WHERE received_at >= $1 AND dedup IS NOT NULL AND seq_in_frame = 0",
            )
            .bind(since_micros)
            .fetch_all(p)
            .await
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, at)| Some((Key::try_from(k.as_slice()).ok()?, at)))
            .collect())
    }

    /// Brings the tables derived from `events` up to date (SQLite; on PostgreSQL
    /// `site_events` is a view and `zones` is written with each commit, never behind): the
    /// steps of [`Db::catch_up_step`] until nothing is held, each in a transaction of its
    /// own. See [`CommitOptions::catch_up`] for the same inside a commit.
    pub async fn catch_up(
        conn: &mut WriteConn,
        zones: &mut ZoneBacklog,
    ) -> Result<CaughtUp, sqlx::Error> {
        let mut all = CaughtUp::default();
        loop {
            let step = Self::catch_up_step(conn, zones, usize::MAX).await?;
            all.events += step.events;
            all.zones += step.zones;
            if !zones.cycling() && zones.is_empty() {
                return Ok(all);
            }
        }
    }

    /// One step of a busy SQLite writer's catch-up, in a transaction of its own: starts a
    /// cycle if none is under way (the zone rows held now and the newest event id,
    /// `src/zone_backlog.rs`), writes its next piece of at most `max_zones` rows to `zones`,
    /// and with the last piece copies the events up to the cycle's id into `site_events` and
    /// moves the mark there. A no-op on PostgreSQL.
    pub async fn catch_up_step(
        conn: &mut WriteConn,
        zones: &mut ZoneBacklog,
        max_zones: usize,
    ) -> Result<CaughtUp, sqlx::Error> {
        let WriteConn::Sqlite(c) = conn else {
            return Ok(CaughtUp::default());
        };
        let mut tx = c.begin_with("BEGIN IMMEDIATE").await?;
        if !zones.is_known() {
            *zones = ZoneBacklog::rebuilt(zones_above_mark(&mut tx, None).await?);
        }
        if !zones.cycling() {
            let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
                .fetch_one(&mut *tx)
                .await?;
            zones.start_cycle(newest.unwrap_or(0));
        }
        let (piece, last) = zones.piece(max_zones).expect("a cycle is under way");
        upsert_zones_sqlite(&mut tx, &piece).await?;
        let written = piece.len();
        let events = if last {
            copy_into_site_events(&mut tx, zones.cycle_upto()).await?
        } else {
            0
        };
        tx.commit().await?;
        zones.piece_written(written);
        Ok(CaughtUp {
            events,
            zones: written,
        })
    }

    /// Forgets shared identities older than the window (PostgreSQL; SQLite has no table).
    pub async fn prune_dedup(&self, cutoff_micros: i64) -> Result<u64, sqlx::Error> {
        match self {
            Self::Sqlite { .. } => Ok(0),
            Self::Postgres(p) => {
                let r = sqlx::query("DELETE FROM dedup WHERE seen_at < $1")
                    .bind(cutoff_micros)
                    .execute(p)
                    .await?;
                Ok(r.rows_affected())
            }
        }
    }

    /// Events, newest first.
    pub async fn events(&self, f: &EventQuery) -> Result<Vec<StoredEvent>> {
        on_pool!(self, read, |p| {
            let mut q = QueryBuilder::new("SELECT id, ");
            q.push(EVENT_COLUMNS);
            q.push(" FROM events WHERE ");
            match &f.account {
                // A site's events: the newest `limit` ids of those not yet in `site_events`
                // (an id range of `events`, see migrations/sqlite/0006_site_events.sql) and
                // of those there, walked backwards; one statement, so one snapshot of `upto`.
                Some(a) => {
                    let account = a.to_ascii_uppercase();
                    q.push("id IN (SELECT id FROM (SELECT id FROM events WHERE id > ");
                    q.push("(SELECT upto FROM derived_upto) AND account = ");
                    q.push_bind(account.clone());
                    push_event_filters(&mut q, f);
                    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
                    q.push(") AS recent UNION ALL SELECT id FROM (SELECT id FROM site_events ");
                    q.push("WHERE account = ").push_bind(account);
                    q.push(" AND id <= (SELECT upto FROM derived_upto)");
                    push_event_filters(&mut q, f);
                    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
                    q.push(") AS older) ORDER BY id DESC LIMIT ");
                }
                None => {
                    q.push("1=1");
                    push_event_filters(&mut q, f);
                    // "Events since" walks the received_at index, the rest the table
                    // backwards; both orders are newest first.
                    if f.since_micros.is_some() {
                        q.push(" ORDER BY received_at DESC, id DESC LIMIT ");
                    } else {
                        q.push(" ORDER BY id DESC LIMIT ");
                    }
                }
            }
            q.push_bind(f.limit);
            let rows = q.build().fetch_all(p).await?;
            rows.iter().map(stored_event).collect()
        })
    }

    /// Events with an id above `after`, oldest first (the live feed).
    pub async fn events_after_id(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        on_pool!(self, read, |p| {
            let rows = sqlx::query(&format!(
                "SELECT id, {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(stored_event).collect()
        })
    }

    /// Number of events stored (tests and the load generator).
    pub async fn count_events(&self) -> Result<i64> {
        Ok(on_pool!(self, read, |p| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
                .fetch_one(p)
                .await
        })?)
    }

    /// A site's partitions, zones and latest not-ready episodes (newest first, at most 20).
    pub async fn site_state(&self, account: &str) -> Result<SiteStateRows> {
        let account = account.to_ascii_uppercase();
        type Part = (
            String,
            String,
            Option<String>,
            i64,
            Option<String>,
            String,
            i32,
        );
        type Nr = (
            i64,
            String,
            String,
            Option<String>,
            i64,
            Option<String>,
            String,
            i32,
        );
        const ZONES: &str = "SELECT zone, partition, state, since, code, frame_ref, \
            seq_in_frame FROM zones WHERE account = $1 ORDER BY zone";
        let zones: Vec<StoredZone> = match self {
            // What is stored and the zone rows of the events above the mark (a busy writer's
            // backlog, src/zone_backlog.rs), read in one snapshot.
            Self::Sqlite { read, .. } => {
                let mut tx = read.begin().await?;
                let stored: Vec<StoredZone> = sqlx::query_as(ZONES)
                    .bind(&account)
                    .fetch_all(&mut *tx)
                    .await?;
                let above = zones_above_mark(&mut tx, Some(&account)).await?;
                tx.rollback().await?;
                with_later_zones(&account, stored, above)
            }
            Self::Postgres(p) => sqlx::query_as(ZONES).bind(&account).fetch_all(p).await?,
        };
        let (parts, nr) = on_pool!(self, read, |p| {
            let parts: Vec<Part> = sqlx::query_as(
                "SELECT partition, arming, user_no, changed_at, code, frame_ref, seq_in_frame \
                 FROM partitions WHERE account = $1 ORDER BY partition",
            )
            .bind(&account)
            .fetch_all(p)
            .await?;
            let nr: Vec<Nr> = sqlx::query_as(
                "SELECT id, partition, reason, zone, at, code, frame_ref, seq_in_frame \
                 FROM not_ready WHERE account = $1 ORDER BY id DESC LIMIT 20",
            )
            .bind(&account)
            .fetch_all(p)
            .await?;
            Ok::<_, sqlx::Error>((parts, nr))
        })?;
        let event = |frame_ref: String, seq: i32| EventRef {
            frame_ref,
            seq_in_frame: seq,
        };
        Ok(SiteStateRows {
            partitions: parts
                .into_iter()
                .map(|(partition, arming, user, at, code, f, q)| PartitionState {
                    partition,
                    arming,
                    user,
                    changed_at: rfc3339_micros(at),
                    code,
                    event: event(f, q),
                })
                .collect(),
            zones: zones
                .into_iter()
                .map(|(zone, partition, state, since, code, f, q)| ZoneStateRow {
                    zone,
                    partition,
                    state,
                    since: rfc3339_micros(since),
                    code,
                    event: event(f, q),
                })
                .collect(),
            not_ready: nr
                .into_iter()
                .map(
                    |(id, partition, reason, zone, at, code, f, q)| NotReadyEpisode {
                        id,
                        partition,
                        reason,
                        zone,
                        at: rfc3339_micros(at),
                        code,
                        event: event(f, q),
                    },
                )
                .collect(),
        })
    }

    /// The highest event id (0 on an empty log).
    pub async fn max_event_id(&self) -> Result<i64> {
        Ok(on_pool!(self, read, |p| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM events")
                .fetch_one(p)
                .await
        })?
        .unwrap_or(0))
    }

    /// Events after `after_id` in id (= commit) order, as an output forwards them.
    pub async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<OutputEvent>> {
        let rows = on_pool!(self, read, |p| {
            sqlx::query_as::<_, (i64, String, Option<String>, Option<String>, i32, String)>(
                "SELECT id, account, scheme, data, seq_in_frame, class FROM events \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after_id)
            .bind(limit)
            .fetch_all(p)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(id, account, scheme, data, seq_in_frame, class)| OutputEvent {
                    id,
                    account,
                    scheme,
                    data,
                    seq_in_frame,
                    class,
                },
            )
            .collect())
    }

    /// Takes (or renews) the lease on output `name` for `owner` until `lease_until` and
    /// returns its position; `None` while another node's lease runs. A new output starts at
    /// `start_position`.
    pub async fn claim_output(
        &self,
        name: &str,
        owner: &str,
        start_position: i64,
        now_micros: i64,
        lease_until: i64,
    ) -> Result<Option<i64>> {
        Ok(on_pool!(self, write, |p| {
            sqlx::query(
                "INSERT INTO outputs (name, position, owner, lease_until, updated_at) \
                 VALUES ($1, $2, NULL, 0, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(start_position)
            .bind(now_micros)
            .execute(p)
            .await?;
            sqlx::query_scalar::<_, i64>(
                "UPDATE outputs SET owner = $2, lease_until = $3 \
                 WHERE name = $1 AND (owner = $2 OR owner IS NULL OR lease_until < $4) \
                 RETURNING position",
            )
            .bind(name)
            .bind(owner)
            .bind(lease_until)
            .bind(now_micros)
            .fetch_optional(p)
            .await
        })?)
    }

    /// Records that the automation acknowledged everything up to event `position` (and renews
    /// the lease); `false` if `owner` no longer holds the lease.
    pub async fn advance_output(
        &self,
        name: &str,
        owner: &str,
        position: i64,
        now_micros: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let n = on_pool!(self, write, |p| {
            sqlx::query(
                "UPDATE outputs SET position = $3, lease_until = $4, updated_at = $5 \
                 WHERE name = $1 AND owner = $2",
            )
            .bind(name)
            .bind(owner)
            .bind(position)
            .bind(lease_until)
            .bind(now_micros)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Gives the lease up (shutdown), so another node may take the output at once.
    pub async fn release_output(&self, name: &str, owner: &str) -> Result<()> {
        on_pool!(self, write, |p| {
            sqlx::query(
                "UPDATE outputs SET owner = NULL, lease_until = 0 WHERE name = $1 AND owner = $2",
            )
            .bind(name)
            .bind(owner)
            .execute(p)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Inserts or replaces a site. A site stored as given is left alone, `updated_at`
    /// included: every start upserts the configured sites, and a row written without a change
    /// would move `site_epoch` and make every node read every site again.
    pub async fn upsert_site(&self, s: &SiteSpec, now_micros: i64) -> Result<()> {
        let (form, key) = match s.key() {
            Some((f, k)) => (Some(f.name()), Some(k)),
            None => (None, None),
        };
        on_pool!(self, write, |p| {
            sqlx::query(
                "INSERT INTO sites (account, name, prefix, receiver, key_text, key_form, \
                 encryption_required, quirks, supervision_secs, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (account) DO UPDATE SET name = excluded.name, \
                 prefix = excluded.prefix, receiver = excluded.receiver, \
                 key_text = excluded.key_text, key_form = excluded.key_form, \
                 encryption_required = excluded.encryption_required, \
                 quirks = excluded.quirks, supervision_secs = excluded.supervision_secs, \
                 updated_at = excluded.updated_at \
                 WHERE sites.name IS DISTINCT FROM excluded.name \
                 OR sites.prefix IS DISTINCT FROM excluded.prefix \
                 OR sites.receiver IS DISTINCT FROM excluded.receiver \
                 OR sites.key_text IS DISTINCT FROM excluded.key_text \
                 OR sites.key_form IS DISTINCT FROM excluded.key_form \
                 OR sites.encryption_required IS DISTINCT FROM excluded.encryption_required \
                 OR sites.quirks IS DISTINCT FROM excluded.quirks \
                 OR sites.supervision_secs IS DISTINCT FROM excluded.supervision_secs",
            )
            .bind(s.normalized_account())
            .bind(&s.name)
            .bind(&s.prefix)
            .bind(&s.receiver)
            .bind(key)
            .bind(form)
            .bind(s.encryption_required)
            .bind(Quirk::join(&s.quirks))
            .bind(s.supervision_secs.map(i64::from))
            .bind(now_micros)
            .execute(p)
            .await?;
            // The supervision row: a site never heard from is due one interval from now; a
            // changed interval counts from the last message.
            sqlx::query(
                "INSERT INTO supervision (account, interval_secs, deadline) \
                 VALUES ($1, $2, $3 + $2 * 1000000) \
                 ON CONFLICT (account) DO UPDATE SET interval_secs = excluded.interval_secs, \
                 deadline = COALESCE(supervision.last_seen, $3) + excluded.interval_secs * 1000000",
            )
            .bind(s.normalized_account())
            .bind(s.supervision_secs.map(i64::from))
            .bind(now_micros)
            .execute(p)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// A site's code hashes as configured (`[[site]]`, `PUT /api/sites/{account}`), stored
    /// when they differ from the stored ones: what is given there is the truth for the codes
    /// it gives (a code changed through the API comes back at the next start), and a restart
    /// with the same hashes neither clears a lock nor ends verifications.
    pub async fn store_code_hashes(&self, site: &SiteSpec, actor: &str, now: i64) -> Result<()> {
        let given = crate::codes::Hashes {
            revoke: site.revoke_code_hash.clone(),
            main: site.main_code_hash.clone(),
        };
        if !given.any() {
            return Ok(());
        }
        let stored = self
            .site_codes(&site.account)
            .await?
            .unwrap_or_default()
            .hashes;
        let changed = crate::codes::Hashes {
            revoke: given.revoke.filter(|h| stored.revoke.as_ref() != Some(h)),
            main: given.main.filter(|h| stored.main.as_ref() != Some(h)),
        };
        if changed.any() {
            self.set_codes(&site.account, &changed, actor, now).await?;
        }
        Ok(())
    }

    /// Deletes a site with its supervision, codes and contacts, and audits it as `actor`, in
    /// one transaction; `false` (and nothing changed) if there was none. Its events stay.
    pub async fn remove_site(&self, account: &str, actor: &str, now: i64) -> Result<bool> {
        let account = account.to_ascii_uppercase();
        let removed = on_pool!(self, write, |p| async {
            let mut tx = p.begin().await?;
            for table in ["supervision", "site_codes", "contacts"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE account = $1"))
                    .bind(&account)
                    .execute(&mut *tx)
                    .await?;
            }
            let removed = sqlx::query("DELETE FROM sites WHERE account = $1")
                .bind(&account)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if removed {
                let site = Some(account.as_str());
                audit!(&mut *tx, now, actor, "site_remove", site, None, "ok", None)?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(removed)
        }
        .await)?;
        Ok(removed)
    }

    /// One site.
    pub async fn site(&self, account: &str) -> Result<Option<SiteSpec>> {
        on_pool!(self, read, |p| {
            let row = sqlx::query(&format!("{SITE_SELECT} WHERE account = $1"))
                .bind(account.to_ascii_uppercase())
                .fetch_optional(p)
                .await?;
            row.as_ref().map(site_spec).transpose()
        })
    }

    /// How many changes `sites` has seen (migrations/*/0009_site_epoch.sql): equal numbers
    /// read at two times mean no site was added, changed or removed between them.
    pub async fn site_epoch(&self) -> Result<i64> {
        let n = on_pool!(self, read, |p| {
            sqlx::query_scalar::<_, i64>("SELECT n FROM site_epoch WHERE id = 1")
                .fetch_one(p)
                .await?
        });
        Ok(n)
    }

    /// Sites in account order, `limit` from after `after`.
    pub async fn sites(&self, after: Option<&str>, limit: i64) -> Result<Vec<SiteSpec>> {
        on_pool!(self, read, |p| {
            let rows = sqlx::query(&format!(
                "{SITE_SELECT} WHERE account > $1 ORDER BY account LIMIT $2"
            ))
            .bind(after.unwrap_or("").to_ascii_uppercase())
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(site_spec).collect()
        })
    }
}

/// A zone row as `site_state` reads it: zone, partition, state, since, code, frame_ref,
/// seq_in_frame.
type StoredZone = (String, String, String, i64, Option<String>, String, i32);

/// A site's stored zone rows (by zone) with the rows of later events folded in, as the writer
/// will write them.
fn with_later_zones(
    account: &str,
    stored: Vec<StoredZone>,
    later: Vec<crate::site_state::ZoneRow>,
) -> Vec<StoredZone> {
    use crate::site_state::{fold_zone, ZoneRow, ZoneState};
    if later.is_empty() {
        return stored;
    }
    let mut zones: std::collections::BTreeMap<String, ZoneRow> = stored
        .into_iter()
        .map(
            |(zone, partition, state, since, code, frame_ref, seq_in_frame)| {
                let row = ZoneRow {
                    account: account.to_owned(),
                    zone: zone.clone(),
                    partition,
                    // Every stored state is one of these names (the writer writes nothing else).
                    state: ZoneState::from_name(&state).map_or("unknown", ZoneState::name),
                    since,
                    code,
                    frame_ref,
                    seq_in_frame,
                    replaces: false,
                };
                (zone, row)
            },
        )
        .collect();
    for row in later {
        match zones.get_mut(&row.zone) {
            Some(held) => fold_zone(held, row),
            None => {
                zones.insert(row.zone.clone(), row);
            }
        }
    }
    zones
        .into_values()
        .map(|z| {
            let state = z.state.to_owned();
            (
                z.zone,
                z.partition,
                state,
                z.since,
                z.code,
                z.frame_ref,
                z.seq_in_frame,
            )
        })
        .collect()
}

const SITE_SELECT: &str = "SELECT account, name, prefix, receiver, key_text, key_form, \
    encryption_required, quirks, supervision_secs FROM sites";

/// SQLite: zone rows in the fixed chunk sizes of `state_sql` (in the order given). Rows that
/// keep a stored row already in their state and rows that replace it go in statements of
/// their own ([`crate::site_state::ZoneRow::replaces`]).
async fn upsert_zones_sqlite(
    c: &mut sqlx::SqliteConnection,
    rows: &[&crate::site_state::ZoneRow],
) -> Result<(), sqlx::Error> {
    let (replacing, keeping) = split_zones(rows.iter().copied());
    for (table, rows) in [
        (StateTable::Zones, keeping),
        (StateTable::ZonesReplacing, replacing),
    ] {
        upsert_chunks!(
            c,
            Backend::Sqlite,
            table,
            rows,
            |z| &z.account,
            &z.zone,
            &z.partition,
            z.state,
            z.since,
            &z.code,
            &z.frame_ref,
            z.seq_in_frame
        );
    }
    Ok(())
}

/// SQLite: the zone rows of the events above the derived tables' mark (every site's, or
/// `account`'s), in id order folded into one row per zone: what `zones` may lack. The writer
/// rebuilds its backlog from them; a reader of a site's state adds them to what is stored.
async fn zones_above_mark(
    c: &mut sqlx::SqliteConnection,
    account: Option<&str>,
) -> Result<Vec<crate::site_state::ZoneRow>, sqlx::Error> {
    use vakt_protocol::catalogue::{Class, Kind};
    use vakt_protocol::event::Scheme;
    type Row = (
        String,
        i64,
        String,
        i32,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT account, received_at, frame_ref, seq_in_frame, scheme, code, qualifier, class, \
         kind, partition, zone, user_no FROM events \
         WHERE id > (SELECT upto FROM derived_upto) AND zone IS NOT NULL \
         AND ($1 IS NULL OR account = $1) ORDER BY id",
    )
    .bind(account)
    .fetch_all(&mut *c)
    .await?;
    let events: Vec<EventRow> = rows
        .into_iter()
        .map(|r| {
            let (account, received_at, frame_ref, seq_in_frame, scheme, code, qualifier) =
                (r.0, r.1, r.2, r.3, r.4, r.5, r.6);
            let (class, kind, partition, zone, user_no) = (r.7, r.8, r.9, r.10, r.11);
            EventRow {
                account,
                received_at,
                frame_ref,
                seq_in_frame,
                scheme: scheme
                    .as_deref()
                    .and_then(Scheme::from_name)
                    .map(|s| s.name()),
                code,
                qualifier,
                class: Class::from_name(&class).unwrap_or(Class::Unknown).name(),
                kind: kind.as_deref().and_then(Kind::from_name).map(|k| k.name()),
                partition,
                zone,
                user_no,
                ..Default::default()
            }
        })
        .collect();
    Ok(crate::site_state::changes(&events).zones)
}

/// Copies the events above `derived_upto` (and up to `upto`, if given; else all) into
/// `site_events`, sorted by site so that each B-tree leaf is written once for all its new
/// entries (migrations/sqlite/0006_site_events.sql says why this is done in bulk), and moves
/// the mark: the caller has brought `zones` there too.
async fn copy_into_site_events(
    c: &mut sqlx::SqliteConnection,
    upto: Option<i64>,
) -> Result<u64, sqlx::Error> {
    // Two statements, not a read first: this is SQLite, one writer, inside its transaction.
    let copied = sqlx::query(
        "INSERT INTO site_events (account, id, received_at) SELECT account, id, received_at \
         FROM events WHERE id > (SELECT upto FROM derived_upto) AND ($1 IS NULL OR id <= $1) \
         ORDER BY account, id",
    )
    .bind(upto)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if copied > 0 {
        sqlx::query(
            "UPDATE derived_upto SET upto = COALESCE($1, (SELECT MAX(id) FROM events)) \
             WHERE upto < COALESCE($1, (SELECT MAX(id) FROM events))",
        )
        .bind(upto)
        .execute(&mut *c)
        .await?;
    }
    Ok(copied)
}

/// The time and paging filters of an [`EventQuery`] (columns both `events` and
/// `site_events` have).
fn push_event_filters<'a, DB: sqlx::Database>(q: &mut QueryBuilder<'a, DB>, f: &EventQuery)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(s) = f.since_micros {
        q.push(" AND received_at >= ").push_bind(s);
    }
    if let Some(b) = f.before_id {
        q.push(" AND id < ").push_bind(b);
    }
}

fn site_spec<R: Row>(r: &R) -> Result<SiteSpec>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<String>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> bool: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<i32>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    let key_text: Option<String> = r.try_get("key_text")?;
    let key_form: Option<String> = r.try_get("key_form")?;
    let form = key_form.as_deref().and_then(KeyForm::from_name);
    // INTEGER: 32 bits on PostgreSQL.
    let supervision: Option<i32> = r.try_get("supervision_secs")?;
    Ok(SiteSpec {
        account: r.try_get("account")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        receiver: r.try_get("receiver")?,
        key_hex: key_text.clone().filter(|_| form == Some(KeyForm::Hex)),
        key_ascii: key_text.filter(|_| form == Some(KeyForm::Ascii)),
        encryption_required: r.try_get("encryption_required")?,
        quirks: Quirk::parse_list(&r.try_get::<String, _>("quirks")?),
        supervision_secs: supervision.and_then(|s| u32::try_from(s).ok()),
        revoke_code_hash: None,
        main_code_hash: None,
    })
}

fn stored_event<R: Row>(r: &R) -> Result<StoredEvent>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<String>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> bool: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> i64: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> i32: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<i64>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Vec<u8>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    let panel_time: Option<i64> = r.try_get("panel_time")?;
    let xdata: Option<String> = r.try_get("xdata")?;
    let raw: Vec<u8> = r.try_get("raw")?;
    Ok(StoredEvent {
        id: r.try_get("id")?,
        frame_ref: r.try_get("frame_ref")?,
        received_at: rfc3339_micros(r.try_get("received_at")?),
        listener: r.try_get("listener")?,
        transport: r.try_get("transport")?,
        peer: r.try_get("peer")?,
        account: r.try_get("account")?,
        token: r.try_get("token")?,
        encrypted: r.try_get("encrypted")?,
        sequence: r.try_get("sequence")?,
        receiver: r.try_get("receiver")?,
        prefix: r.try_get("prefix")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        panel_time: panel_time.map(|s| rfc3339_micros(s * 1_000_000)),
        data: r.try_get("data")?,
        xdata: xdata.and_then(|x| serde_json::from_str(&x).ok()),
        seq_in_frame: r.try_get("seq_in_frame")?,
        scheme: r.try_get("scheme")?,
        code: r.try_get("code")?,
        qualifier: r.try_get("qualifier")?,
        class: r.try_get("class")?,
        kind: r.try_get("kind")?,
        meaning: r.try_get("meaning")?,
        mapped_code: r.try_get("mapped_code")?,
        partition: r.try_get("partition")?,
        address: r.try_get("address")?,
        address_kind: r.try_get("address_kind")?,
        zone: r.try_get("zone")?,
        user: r.try_get("user_no")?,
        text: r.try_get("text")?,
        event_time: r.try_get("event_time")?,
        raw: crate::escape::escape(&raw),
    })
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's connection checkpoints only at its own, larger WAL bound; the others keep
    /// SQLite's bound of the pool options.
    #[tokio::test]
    async fn the_writer_connection_has_its_own_wal_bound() {
        let dir = std::env::temp_dir().join(format!("vakt-walbound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/v.db", dir.display());
        let db = Db::connect(&url, 1).await.unwrap();
        let Ok(WriteConn::Sqlite(mut c)) = db.writer_conn().await else {
            panic!("an SQLite writer connection");
        };
        let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(pages, i64::from(WRITER_WAL_PAGES));
        let Db::Sqlite { read, .. } = &db else {
            unreachable!()
        };
        let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(read)
            .await
            .unwrap();
        assert_eq!(pages, i64::from(POOL_WAL_PAGES));
        drop(c);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
