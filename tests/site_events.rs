//! A site's events (`Db::events` with an account) on a real database: on SQLite some are in
//! `site_events` and some not yet (the writer copies them in bulk or with small commits, see
//! migrations/sqlite/0006_site_events.sql); a query must find them all, newest first, and page
//! across that boundary. On PostgreSQL `site_events` is a view and the same queries run.

#[macro_use]
mod common;

use common::*;
use vakt::store::{AlarmCache, CommitOptions, Db, EventQuery, EventRow};
use vakt::zone_backlog::ZoneBacklog;

on_both_databases!(a_sites_events_page_across_the_copied_and_the_uncopied);

const SITES: [&str; 3] = ["A1", "B2", "C3"];

/// Stores `n` events round-robin over [`SITES`], in one commit; `copy`: the commit copies.
async fn store(db: &Db, n: usize, first_at: i64, copy: bool) {
    let mut conn = db.writer_conn().await.unwrap();
    let mut rows: Vec<Vec<EventRow>> = (0..n)
        .map(|i| {
            vec![EventRow {
                frame_ref: format!("f{first_at}-{i}"),
                received_at: first_at + i as i64,
                listener: "t".into(),
                transport: "tcp",
                peer: "127.0.0.1:1".into(),
                account: SITES[i % SITES.len()].into(),
                token: "NULL".into(),
                sequence: "0001".into(),
                outcome: "ack",
                class: "heartbeat",
                raw: b"x".to_vec(),
                ..Default::default()
            }]
        })
        .collect();
    let mut frames: Vec<_> = rows.iter_mut().map(|r| (None, r.as_mut_slice())).collect();
    let frame_ref = || "w".to_owned();
    let opts = CommitOptions {
        now: first_at,
        dedup_cutoff: 0,
        join_after: 0,
        upkeep: None,
        frame_ref: &frame_ref,
        catch_up: copy,
    };
    let mut zones = ZoneBacklog::default();
    Db::commit_batch(
        &mut conn,
        &mut frames,
        &opts,
        &mut AlarmCache::default(),
        &mut zones,
    )
    .await
    .unwrap();
    conn.close().await;
}

/// All of `account`'s event ids through `Db::events`, `limit` at a time, newest first.
async fn paged(db: &Db, account: &str, since: Option<i64>, limit: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut before_id = None;
    loop {
        let q = EventQuery {
            account: Some(account.to_ascii_lowercase()),
            since_micros: since,
            before_id,
            limit,
        };
        let page: Vec<i64> = db.events(&q).await.unwrap().iter().map(|e| e.id).collect();
        assert!(page.len() as i64 <= limit, "a page longer than its limit");
        let Some(&last) = page.last() else {
            return ids;
        };
        ids.extend(page);
        before_id = Some(last);
    }
}

/// What the query should give, read straight from `events`.
async fn expected(db: &Db, account: &str, since: i64) -> Vec<i64> {
    let sql = "SELECT id FROM events WHERE account = $1 AND received_at >= $2 ORDER BY id DESC";
    match db {
        Db::Sqlite { read, .. } => sqlx::query_scalar(sql)
            .bind(account)
            .bind(since)
            .fetch_all(read)
            .await
            .unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(sql)
            .bind(account)
            .bind(since)
            .fetch_all(p)
            .await
            .unwrap(),
    }
}

async fn a_sites_events_page_across_the_copied_and_the_uncopied(backend: Backend) {
    let Some(tdb) = TestDb::new(backend).await else {
        return;
    };
    let db = tdb.connect().await;
    // Copied by a small commit, copied in bulk, then left uncopied.
    store(&db, 20, 1_000, true).await;
    store(&db, 40, 2_000, false).await;
    let mut conn = db.writer_conn().await.unwrap();
    let copied = Db::catch_up(&mut conn, &mut ZoneBacklog::default())
        .await
        .unwrap()
        .events;
    conn.close().await;
    store(&db, 31, 3_000, false).await;

    if backend == Backend::Sqlite {
        assert_eq!(copied, 40, "the bulk copy takes what the commits left");
        let (in_index, upto, max): (i64, i64, i64) = match &db {
            Db::Sqlite { read, .. } => sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM site_events), (SELECT upto FROM derived_upto), \
                 (SELECT MAX(id) FROM events)",
            )
            .fetch_one(read)
            .await
            .unwrap(),
            Db::Postgres(_) => unreachable!(),
        };
        assert_eq!(in_index, 60, "the last commit's events are not copied yet");
        assert!(upto < max, "upto {upto} below the newest id {max}");
    } else {
        assert_eq!(
            copied, 0,
            "PostgreSQL has nothing to copy: site_events is a view"
        );
    }

    let mut total = 0;
    for account in SITES {
        let all = expected(&db, account, 0).await;
        total += all.len();
        for limit in [1, 4, 7, 100] {
            assert_eq!(
                paged(&db, account, None, limit).await,
                all,
                "{account}, limit {limit}"
            );
        }
        // Received from the middle of the bulk-copied commit on: both parts, filtered.
        let since = expected(&db, account, 2_020).await;
        assert!(since.len() > 10 && since.len() < all.len());
        assert_eq!(
            paged(&db, account, Some(2_020), 3).await,
            since,
            "{account} since"
        );
    }
    assert_eq!(total, 91);
    assert!(
        paged(&db, "FF", None, 10).await.is_empty(),
        "a site with no events"
    );
    db.close().await;
}
