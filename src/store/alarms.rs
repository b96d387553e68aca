//! The alarm queue as operators see and work it: listing, one alarm with its history, take
//! and resolve, the change feed behind `/api/stream`, and each site's supervision.

use serde::Serialize;
use sqlx::Row;

use super::{rfc3339_micros, Db, EventRef};
use crate::codes::Level;

/// An alarm as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    pub id: i64,
    pub account: String,
    /// The site's name, if the site still exists.
    pub site_name: Option<String>,
    /// `new`, `taken` or `resolved`.
    pub state: String,
    /// 1 (first) to 7.
    pub priority: i32,
    pub category: String,
    pub opened_at: String,
    /// The event that set the priority.
    pub code: Option<String>,
    pub zone: Option<String>,
    pub partition: Option<String>,
    pub meaning: Option<String>,
    pub event: EventRef,
    /// Cancelled or aborted at the panel: `{at, user}`; the alarm stays for an operator.
    pub cancelled_at_panel: Option<serde_json::Value>,
    /// Supervision alarms: when the site was heard from again.
    pub restored_at: Option<String>,
    pub taken_at: Option<String>,
    pub taken_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    /// Wrong codes given to revoke this alarm: an intruder, or duress, may be on the phone.
    pub wrong_codes: i32,
}

/// One step of an alarm's life.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmChange {
    pub id: i64,
    pub alarm_id: i64,
    pub at: String,
    pub change: String,
    pub by: Option<String>,
    pub detail: Option<String>,
}

/// Which alarms to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmFilter {
    /// New and taken, in queue order: priority, then age.
    Open,
    New,
    Taken,
    /// Newest resolution first.
    Resolved,
}

impl AlarmFilter {
    /// Parses `open`, `new`, `taken`, `resolved`.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "new" => Self::New,
            "taken" => Self::Taken,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// How an alarm was resolved.
pub const OUTCOMES: [&str; 5] = [
    "dispatched",
    "false_alarm",
    "revoked_by_customer",
    "test",
    "technical",
];

/// Why an operator action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    NotFound,
    /// The alarm is not in a state that allows it (the reason says why).
    Conflict(String),
}

/// A site's supervision as stored.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisionState {
    /// `ok`, `failed` or `unsupervised`.
    pub state: &'static str,
    pub interval_secs: Option<i32>,
    pub deadline: Option<String>,
    pub failed_since: Option<String>,
    pub restored_at: Option<String>,
}

const ALARM_SELECT: &str = "SELECT a.id, a.account, s.name AS site_name, a.state, a.priority, \
    a.category, a.opened_at, a.code, a.zone, a.partition, a.meaning, a.frame_ref, \
    a.seq_in_frame, a.cancelled_at, a.cancelled_user, a.restored_at, a.taken_at, a.taken_by, \
    a.resolved_at, a.resolved_by, a.outcome, a.note, a.wrong_codes \
    FROM alarms a LEFT JOIN sites s ON s.account = a.account";

fn alarm<R: Row>(r: &R) -> Result<Alarm, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<String>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> i64: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> i32: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> Option<i64>: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
{
    let time = |c: &str| -> Result<Option<String>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(c)?.map(rfc3339_micros))
    };
    let cancelled = time("cancelled_at")?.map(|at| {
        serde_json::json!({ "at": at, "user": r.try_get::<Option<String>, _>("cancelled_user").ok().flatten() })
    });
    Ok(Alarm {
        id: r.try_get("id")?,
        account: r.try_get("account")?,
        site_name: r.try_get("site_name")?,
        state: r.try_get("state")?,
        priority: r.try_get("priority")?,
        category: r.try_get("category")?,
        opened_at: rfc3339_micros(r.try_get("opened_at")?),
        code: r.try_get("code")?,
        zone: r.try_get("zone")?,
        partition: r.try_get("partition")?,
        meaning: r.try_get("meaning")?,
        event: EventRef {
            frame_ref: r.try_get("frame_ref")?,
            seq_in_frame: r.try_get("seq_in_frame")?,
        },
        cancelled_at_panel: cancelled,
        restored_at: time("restored_at")?,
        taken_at: time("taken_at")?,
        taken_by: r.try_get("taken_by")?,
        resolved_at: time("resolved_at")?,
        resolved_by: r.try_get("resolved_by")?,
        outcome: r.try_get("outcome")?,
        note: r.try_get("note")?,
        wrong_codes: r.try_get("wrong_codes")?,
    })
}

type ChangeRow = (i64, i64, i64, String, Option<String>, Option<String>);

fn change((id, alarm_id, at, change, by, detail): ChangeRow) -> AlarmChange {
    AlarmChange {
        id,
        alarm_id,
        at: rfc3339_micros(at),
        change,
        by,
        detail,
    }
}

impl Db {
    /// Alarms by `filter` (optionally of one site), at most `limit`.
    pub async fn alarms(
        &self,
        filter: AlarmFilter,
        account: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<Alarm>> {
        let (cond, order) = match filter {
            AlarmFilter::Open => ("a.state <> 'resolved'", "a.priority, a.opened_at, a.id"),
            AlarmFilter::New => ("a.state = 'new'", "a.priority, a.opened_at, a.id"),
            AlarmFilter::Taken => ("a.state = 'taken'", "a.priority, a.opened_at, a.id"),
            AlarmFilter::Resolved => ("a.state = 'resolved'", "a.resolved_at DESC, a.id DESC"),
        };
        let account_cond = if account.is_some() {
            " AND a.account = $2"
        } else {
            " AND $2 = ''"
        };
        let sql = format!("{ALARM_SELECT} WHERE {cond}{account_cond} ORDER BY {order} LIMIT $1");
        let account = account.map(str::to_ascii_uppercase).unwrap_or_default();
        Ok(on_pool!(self, read, |p| {
            let rows = sqlx::query(&sql)
                .bind(limit)
                .bind(&account)
                .fetch_all(p)
                .await?;
            rows.iter().map(alarm).collect::<Result<Vec<_>, _>>()
        })?)
    }

    /// One alarm and its history, oldest step first.
    pub async fn alarm(&self, id: i64) -> anyhow::Result<Option<(Alarm, Vec<AlarmChange>)>> {
        Ok(on_pool!(self, read, |p| async {
            let Some(row) = sqlx::query(&format!("{ALARM_SELECT} WHERE a.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
            else {
                return Ok(None);
            };
            let changes: Vec<ChangeRow> = sqlx::query_as(
                "SELECT id, alarm_id, at, change, actor, detail FROM alarm_changes \
                 WHERE alarm_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            Ok::<_, sqlx::Error>(Some((
                alarm(&row)?,
                changes.into_iter().map(change).collect(),
            )))
        }
        .await)?)
    }

    /// Changes with an id above `after`, oldest first, with their alarms as they are now.
    pub async fn alarm_changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(AlarmChange, Alarm)>> {
        Ok(on_pool!(self, read, |p| {
            let changes: Vec<ChangeRow> = sqlx::query_as(
                "SELECT id, alarm_id, at, change, actor, detail FROM alarm_changes \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(changes.len());
            for c in changes {
                let row = sqlx::query(&format!("{ALARM_SELECT} WHERE a.id = $1"))
                    .bind(c.1)
                    .fetch_one(p)
                    .await?;
                out.push((change(c), alarm(&row)?));
            }
            Ok::<_, sqlx::Error>(out)
        })?)
    }

    /// The highest alarm change id (0 when none).
    pub async fn max_alarm_change_id(&self) -> anyhow::Result<i64> {
        Ok(on_pool!(self, read, |p| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM alarm_changes")
                .fetch_one(p)
                .await
        })?
        .unwrap_or(0))
    }

    /// An operator takes a new alarm. Taking an alarm one already holds is a no-op.
    pub async fn take_alarm(
        &self,
        id: i64,
        operator: &str,
        now: i64,
    ) -> anyhow::Result<Result<Alarm, ActionError>> {
        self.alarm_action(id, operator, now, Action::Take).await
    }

    /// An operator resolves a taken alarm with an outcome (one of [`OUTCOMES`]) and a note.
    pub async fn resolve_alarm(
        &self,
        id: i64,
        operator: &str,
        outcome: &str,
        note: Option<&str>,
        now: i64,
    ) -> anyhow::Result<Result<Alarm, ActionError>> {
        self.alarm_action(id, operator, now, Action::Resolve { outcome, note })
            .await
    }

    /// The customer revoked the alarm with a right code (checked by the caller): a new alarm,
    /// or one this operator holds, is resolved as `revoked_by_customer`.
    pub async fn revoke_alarm(
        &self,
        id: i64,
        operator: &str,
        level: Level,
        now: i64,
    ) -> anyhow::Result<Result<Alarm, ActionError>> {
        let note = format!("revoked by the customer with the {} code", level.name());
        self.alarm_action(
            id,
            operator,
            now,
            Action::Revoke {
                level,
                outcome: "revoked_by_customer",
                note: Some(&note),
            },
        )
        .await
    }

    async fn alarm_action(
        &self,
        id: i64,
        operator: &str,
        now: i64,
        action: Action<'_>,
    ) -> anyhow::Result<Result<Alarm, ActionError>> {
        let pg = matches!(self, Self::Postgres(_));
        let r = on_pool!(self, write, |p| {
            async {
            let mut tx = p.begin().await?;
            if pg {
                // The writer's lock: a resolve never interleaves with a commit that joins an
                // event to this alarm, and change ids become visible in id order.
                sqlx::query("SELECT pg_advisory_xact_lock(7451001)")
                    .execute(&mut *tx)
                    .await?;
            }
            let current: Option<(String, Option<String>, String)> =
                sqlx::query_as("SELECT state, taken_by, account FROM alarms WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((state, taken_by, account)) = current else {
                return Ok::<_, sqlx::Error>(Err(ActionError::NotFound));
            };
            let by = taken_by.unwrap_or_default();
            let refused = match (&action, state.as_str()) {
                (Action::Take, "new") => None,
                (Action::Take, "taken") if by == operator => {
                    tx.commit().await?;
                    return Ok(Ok(()));
                }
                (Action::Take | Action::Revoke { .. }, "taken") if by != operator => {
                    Some(format!("alarm {id} is taken by {by}"))
                }
                (Action::Resolve { .. } | Action::Revoke { .. }, "taken") => None,
                (Action::Revoke { .. }, "new") => None,
                (Action::Resolve { .. }, "new") => {
                    Some(format!("alarm {id} is new: take it before resolving it"))
                }
                (_, _) => Some(format!("alarm {id} is already resolved")),
            };
            if let Some(reason) = refused {
                return Ok(Err(ActionError::Conflict(reason)));
            }
            let mut steps: Vec<(&str, Option<String>)> = Vec::with_capacity(2);
            match action {
                Action::Take => {
                    sqlx::query(
                        "UPDATE alarms SET state = 'taken', taken_at = $2, taken_by = $3 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(operator)
                    .execute(&mut *tx)
                    .await?;
                    steps.push(("taken", None));
                }
                Action::Resolve { outcome, note } | Action::Revoke { outcome, note, .. } => {
                    if state == "new" {
                        steps.push(("taken", None));
                    }
                    sqlx::query(
                        "UPDATE alarms SET state = 'resolved', resolved_at = $2, resolved_by = $3, \
                         outcome = $4, note = $5, taken_at = COALESCE(taken_at, $2), \
                         taken_by = COALESCE(taken_by, $3) WHERE id = $1",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(operator)
                    .bind(outcome)
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
                    // The writers' caches of open alarms no longer hold.
                    sqlx::query("UPDATE alarm_epoch SET n = n + 1 WHERE id = 1")
                        .execute(&mut *tx)
                        .await?;
                    steps.push((
                        "resolved",
                        Some(match note {
                            Some(n) => format!("{outcome}: {n}"),
                            None => outcome.to_owned(),
                        }),
                    ));
                }
            }
            for (what, detail) in steps {
                sqlx::query(super::queue::INSERT_CHANGE)
                    .bind(id)
                    .bind(now)
                    .bind(what)
                    .bind(operator)
                    .bind(detail)
                    .execute(&mut *tx)
                    .await?;
            }
            let (verb, outcome) = match action {
                Action::Take => ("take", "ok"),
                Action::Resolve { outcome, .. } => ("resolve", outcome),
                Action::Revoke { level, .. } => {
                    // A right code: the site's wrong-code count starts again.
                    sqlx::query("UPDATE site_codes SET counted_from = $1 WHERE account = $2")
                        .bind(now)
                        .bind(&account)
                        .execute(&mut *tx)
                        .await?;
                    ("revoke", level.name())
                }
            };
            audit!(&mut *tx, now, operator, verb, Some(&account), Some(id), outcome, None)?;
            tx.commit().await?;
            Ok(Ok(()))
        }
        .await
        })?;
        match r {
            Ok(()) => Ok(Ok(self
                .alarm(id)
                .await?
                .map(|(a, _)| a)
                .ok_or_else(|| anyhow::anyhow!("alarm {id} vanished"))?)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// A site's supervision and when it was last heard from.
    pub async fn supervision(
        &self,
        account: &str,
    ) -> anyhow::Result<(Option<String>, SupervisionState)> {
        type Sup = (
            Option<i32>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let row: Option<Sup> = on_pool!(self, read, |p| {
            sqlx::query_as(
                "SELECT interval_secs, last_seen, deadline, failed_at, restored_at \
                 FROM supervision WHERE account = $1",
            )
            .bind(account.to_ascii_uppercase())
            .fetch_optional(p)
            .await
        })?;
        let (interval, last_seen, deadline, failed_at, restored_at) =
            row.unwrap_or((None, None, None, None, None));
        let state = match (failed_at, interval) {
            (Some(_), _) => "failed",
            (None, Some(_)) => "ok",
            (None, None) => "unsupervised",
        };
        Ok((
            last_seen.map(rfc3339_micros),
            SupervisionState {
                state,
                interval_secs: interval,
                deadline: deadline.map(rfc3339_micros),
                failed_since: failed_at.map(rfc3339_micros),
                restored_at: restored_at.map(rfc3339_micros),
            },
        ))
    }
}

#[derive(Debug, Clone, Copy)]
enum Action<'a> {
    Take,
    Resolve {
        outcome: &'a str,
        note: Option<&'a str>,
    },
    /// Resolved as revoked by the customer, who gave a code of `level`.
    Revoke {
        level: Level,
        outcome: &'a str,
        note: Option<&'a str>,
    },
}
