//! Zone state written late by a busy SQLite writer (src/zone_backlog.rs), on a real database:
//! however the events were cut into commits, whichever commits wrote `zones`, however a
//! catch-up cycle was cut into pieces between them and whenever the writer lost its backlog
//! (as after a crash), a site's state reads the same as when every event was applied on its
//! own, and once caught up the `zones` table holds the same rows. On PostgreSQL, where zones
//! are written with every commit, the same holds trivially.

#[macro_use]
mod common;

use common::*;
use vakt::store::{AlarmCache, CommitOptions, Db, EventRow};
use vakt::zone_backlog::ZoneBacklog;

on_both_databases!(a_sites_zones_read_the_same_however_they_were_written);

const SITES: [&str; 3] = ["A1", "B2", "C3"];

/// Contact ID zone changes: (code, qualifier, class, kind).
const CHANGES: [(&str, &str, &str, Option<&str>); 7] = [
    ("130", "1", "alarm", Some("burglary")),
    ("130", "3", "restore", Some("burglary")),
    ("137", "1", "alarm", Some("tamper")),
    ("380", "1", "trouble", Some("sensor")),
    ("380", "3", "restore", Some("sensor")),
    ("570", "1", "bypass", None),
    ("570", "3", "unbypass", None),
];

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn event(i: usize, rng: &mut Rng) -> EventRow {
    let (code, qualifier, class, kind) = CHANGES[rng.below(CHANGES.len() as u64) as usize];
    EventRow {
        frame_ref: format!("f{i}"),
        received_at: 1_000_000 + i as i64,
        listener: "t".into(),
        transport: "tcp",
        peer: "127.0.0.1:1".into(),
        account: SITES[rng.below(SITES.len() as u64) as usize].into(),
        token: "ADM-CID".into(),
        sequence: "0001".into(),
        outcome: "ack",
        scheme: Some("contact_id"),
        code: Some(code.into()),
        qualifier: Some(qualifier.into()),
        class,
        kind,
        // Mostly partition 1: a zone seen in another partition is a change too.
        partition: Some(format!("{:02}", 1 + u64::from(rng.below(8) == 0))),
        zone: Some(format!("{:03}", 1 + rng.below(6))),
        raw: b"x".to_vec(),
        ..Default::default()
    }
}

/// Stores `events` in one commit.
async fn commit(db: &Db, events: &[EventRow], catch_up: bool, zones: &mut ZoneBacklog) {
    let mut conn = db.writer_conn().await.unwrap();
    let mut rows: Vec<Vec<EventRow>> = events.iter().map(|e| vec![e.clone()]).collect();
    let mut frames: Vec<_> = rows.iter_mut().map(|r| (None, r.as_mut_slice())).collect();
    let frame_ref = || "w".to_owned();
    let opts = CommitOptions {
        now: 2_000_000,
        dedup_cutoff: 0,
        join_after: 0,
        upkeep: None,
        frame_ref: &frame_ref,
        catch_up,
    };
    Db::commit_batch(
        &mut conn,
        &mut frames,
        &opts,
        &mut AlarmCache::default(),
        zones,
    )
    .await
    .unwrap();
    conn.close().await;
}

/// Every site's zones as the API gives them.
async fn read_zones(db: &Db) -> serde_json::Value {
    let mut all = serde_json::Map::new();
    for site in SITES {
        let state = db.site_state(site).await.unwrap();
        all.insert(site.into(), serde_json::to_value(&state.zones).unwrap());
    }
    all.into()
}

type ZoneTableRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    String,
    i32,
);

/// The `zones` table itself.
async fn zones_table(db: &Db) -> Vec<ZoneTableRow> {
    let sql = "SELECT account, zone, partition, state, since, code, frame_ref, seq_in_frame \
               FROM zones ORDER BY account, zone";
    match db {
        Db::Sqlite { read, .. } => sqlx::query_as(sql).fetch_all(read).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
    }
}

async fn a_sites_zones_read_the_same_however_they_were_written(backend: Backend) {
    let (Some(one_by_one), Some(batched)) =
        (TestDb::new(backend).await, TestDb::new(backend).await)
    else {
        return;
    };
    let (reference, db) = (one_by_one.connect().await, batched.connect().await);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let events: Vec<EventRow> = (0..400).map(|i| event(i, &mut rng)).collect();
    let mut backlog = ZoneBacklog::default();
    let (mut at, mut commits, mut deferred) = (0, 0, 0);
    let (mut pieces, mut cycling_commits, mut ended_after_commits) = (0, 0, 0);
    while at < events.len() {
        let n = (1 + rng.below(12) as usize).min(events.len() - at);
        let chunk = &events[at..at + n];
        at += n;
        commits += 1;
        for e in chunk {
            commit(
                &reference,
                std::slice::from_ref(e),
                true,
                &mut ZoneBacklog::default(),
            )
            .await;
        }
        // Mostly as a busy writer: the zone rows join the backlog. Sometimes a quiet commit
        // writes backlog and batch, sometimes the bulk step runs, and once the backlog is lost
        // as at a restart (the next commit reads it again from the events above the mark).
        let catch_up = commits % 7 == 0;
        deferred += usize::from(!catch_up);
        commit(&db, chunk, catch_up, &mut backlog).await;
        if commits % 11 == 0 {
            let mut conn = db.writer_conn().await.unwrap();
            Db::catch_up(&mut conn, &mut backlog).await.unwrap();
            conn.close().await;
        } else if commits % 2 == 0 {
            // As the busy writer does between commits: one piece of a cycle, here of four
            // rows, so that a cycle spans commits (and sometimes a quiet commit or a loss).
            let mut conn = db.writer_conn().await.unwrap();
            let was_cycling = backlog.cycling();
            Db::catch_up_step(&mut conn, &mut backlog, 4).await.unwrap();
            conn.close().await;
            pieces += 1;
            // A cycle that ends here, after commits made while it ran: the mark moves to the
            // cycle's id, not past the later events.
            ended_after_commits += usize::from(was_cycling && !backlog.cycling());
            assert_eq!(
                read_zones(&db).await,
                read_zones(&reference).await,
                "after a piece, {at} events in {commits} commits"
            );
        }
        cycling_commits += usize::from(backlog.cycling());
        if commits == 20 {
            backlog = ZoneBacklog::default();
        }
        assert_eq!(
            read_zones(&db).await,
            read_zones(&reference).await,
            "after {at} events in {commits} commits"
        );
    }
    assert!(deferred > 30, "the test must defer: {deferred} commits did");
    if backend == Backend::Sqlite {
        assert!(
            pieces > 10 && cycling_commits > 10 && ended_after_commits > 3,
            "cycles must span commits: {pieces} pieces, {cycling_commits} commits mid-cycle, \
             {ended_after_commits} cycles ended after commits"
        );
    }
    let expected = zones_table(&reference).await;
    assert!(
        expected.len() >= 15,
        "{} zones in the reference",
        expected.len()
    );
    if backend == Backend::Sqlite {
        assert!(!backlog.is_empty(), "the last commits left rows to write");
        assert_ne!(
            zones_table(&db).await,
            expected,
            "zones is behind before catching up"
        );
    }
    let mut conn = db.writer_conn().await.unwrap();
    let done = Db::catch_up(&mut conn, &mut backlog).await.unwrap();
    conn.close().await;
    assert_eq!(zones_table(&db).await, expected);
    assert_eq!(read_zones(&db).await, read_zones(&reference).await);
    if let Db::Sqlite { read, .. } = &db {
        assert!(done.zones > 0 && backlog.is_empty(), "{done:?}");
        let (upto, max): (i64, i64) =
            sqlx::query_as("SELECT (SELECT upto FROM derived_upto), (SELECT MAX(id) FROM events)")
                .fetch_one(read)
                .await
                .unwrap();
        assert_eq!(upto, max, "caught up to the newest event");
    }
    reference.close().await;
    db.close().await;
}
