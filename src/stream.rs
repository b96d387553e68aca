//! The feed behind `GET /api/stream`: new events and alarm changes, read from the database
//! (not from this node's writer), so an operator connected to any node sees what every node
//! stored. One poller per node feeds all its clients through a broadcast channel, and it only
//! reads while someone listens.

use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::store::Db;

/// One Server-Sent Event: its `event:` name and JSON `data:`.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: &'static str,
    pub data: String,
}

/// Items buffered per client before a slow one starts missing them (and is told so).
pub const CAPACITY: usize = 4096;

/// Most rows read per table per poll.
const BATCH: i64 = 1000;

/// Polls every `every` until cancelled.
pub async fn run(db: Db, tx: broadcast::Sender<Item>, every: Duration, cancel: CancellationToken) {
    let mut last: Option<(i64, i64)> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if tx.receiver_count() == 0 {
            // Nobody listens: start from what is newest when somebody does.
            last = None;
            continue;
        }
        let (event_id, change_id) = match last {
            Some(l) => l,
            None => match (db.max_event_id().await, db.max_alarm_change_id().await) {
                (Ok(e), Ok(c)) => {
                    last = Some((e, c));
                    continue;
                }
                (Err(e), _) | (_, Err(e)) => {
                    warn!(error = %e, "stream: reading the newest ids failed; will retry");
                    continue;
                }
            },
        };
        match poll(&db, &tx, event_id, change_id).await {
            Ok(next) => last = Some(next),
            Err(e) => warn!(error = %e, "stream: polling the database failed; will retry"),
        }
    }
}

async fn poll(
    db: &Db,
    tx: &broadcast::Sender<Item>,
    mut event_id: i64,
    mut change_id: i64,
) -> anyhow::Result<(i64, i64)> {
    let events = db.events_after_id(event_id, BATCH).await?;
    for e in events {
        event_id = event_id.max(e.id);
        let data = json!({
            "id": e.id, "account": e.account, "received_at": e.received_at, "scheme": e.scheme,
            "code": e.code, "class": e.class, "kind": e.kind, "meaning": e.meaning,
            "partition": e.partition, "zone": e.zone, "user": e.user, "frame_ref": e.frame_ref,
        });
        let _ = tx.send(Item {
            kind: "event",
            data: data.to_string(),
        });
    }
    for (change, alarm) in db.alarm_changes_after(change_id, BATCH).await? {
        change_id = change_id.max(change.id);
        let _ = tx.send(Item {
            kind: "alarm",
            data: json!({ "change": change, "alarm": alarm }).to_string(),
        });
    }
    Ok((event_id, change_id))
}
