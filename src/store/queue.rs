//! The alarm queue and supervision inside the writer's transaction: [`crate::alarm::Plan`]
//! applied to the `alarms` table, last-seen times moved into `supervision`, and due sites
//! claimed. Each step is written once and expanded for SQLite and PostgreSQL by
//! [`in_tx_fns!`]; the only difference is how a list of accounts is handed over (JSON, read
//! with `json_each` / `jsonb_array_elements`), so a whole batch costs one statement per step
//! and never one per site.

use foldhash::{HashMap, HashMapExt};

use crate::alarm::{self, OpenAlarm, Plan, Target};

/// The newest open alarm of each site the writer has seen (`None`: none open), valid while
/// `alarm_epoch` holds `epoch`. Every change that could make an entry wrong (an alarm opened
/// or raised by any node, or resolved by an operator) bumps the epoch, and the writer reads it
/// once per commit in the same transaction, so with the cache warm a batch of alarm events
/// that join open alarms costs one one-row read instead of a lookup per site.
#[derive(Debug, Default)]
pub struct AlarmCache {
    epoch: Option<i64>,
    open: HashMap<String, Option<OpenAlarm>>,
}

impl AlarmCache {
    /// Forgets everything (after a failed commit, whose writes were rolled back).
    pub fn clear(&mut self) {
        self.epoch = None;
        self.open.clear();
    }
}

/// What a batch's alarm plan asks of the database, given the writer's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AlarmWork {
    /// Nothing: the batch has no alarm-class event, cancel or restore.
    Nothing,
    /// Nothing while `alarm_epoch` still holds this: every site the plan names is cached and
    /// joins its open alarm without raising it, with no cancel or restore to mark.
    JoinsUnder(i64),
    /// Statements (`alarms_postgres` / `alarms_sqlite`).
    Statements,
}

impl AlarmCache {
    /// What `plan` needs: what `alarms_postgres` would do with it, reading nothing.
    pub(super) fn work(&self, plan: &Plan, join_after: i64) -> AlarmWork {
        if plan.is_empty() {
            return AlarmWork::Nothing;
        }
        let Some(epoch) = self.epoch else {
            return AlarmWork::Statements;
        };
        let joins_only = self.open.len() <= CACHE_LIMIT
            && plan.sites.iter().all(|(account, site)| {
                let Some(found) = self.open.get(account) else {
                    return false;
                };
                let steps = alarm::steps(site, *found, join_after);
                site.restore.is_none()
                    && steps.open.is_none()
                    && steps.raise.is_none()
                    && steps.cancel.is_none()
            });
        if joins_only {
            AlarmWork::JoinsUnder(epoch)
        } else {
            AlarmWork::Statements
        }
    }
}

/// Most sites remembered; past it the cache starts over (a bound on memory, not a cost).
const CACHE_LIMIT: usize = 1_000_000;

/// How each backend reads a JSON array bound as `$1` as rows.
pub(super) struct JsonSql {
    /// `… IN (<this>)`: the array's strings.
    strings: &'static str,
    /// `FROM (<this>) AS v`: `[account, at]` pairs as columns `account`, `at`.
    pairs: &'static str,
    /// The larger of two numbers.
    greatest: &'static str,
}

pub(super) const SQLITE: JsonSql = JsonSql {
    strings: "SELECT value FROM json_each($1)",
    pairs: "SELECT json_extract(value, '$[0]') AS account, json_extract(value, '$[1]') AS at \
            FROM json_each($1)",
    greatest: "MAX",
};

pub(super) const POSTGRES: JsonSql = JsonSql {
    strings: "SELECT jsonb_array_elements_text($1::jsonb)",
    pairs:
        "SELECT x->>0 AS account, (x->>1)::bigint AS at FROM jsonb_array_elements($1::jsonb) AS x",
    greatest: "GREATEST",
};

/// Alarms opened per INSERT (11 parameters a row, well under SQLite's 32,766).
const OPEN_CHUNK: usize = 1000;

/// Most sites claimed as failed per check (the rest are claimed by the next checks).
const CLAIM_LIMIT: i64 = 1000;

/// What a supervision step found: sites to raise a failure for, sites restored.
#[derive(Debug, Default)]
pub struct Supervised {
    pub failed: Vec<String>,
    pub restored: Vec<String>,
}

macro_rules! in_tx_fns {
    ($alarms:ident, $supervise:ident, $conn:ty, $sql:expr) => {
        /// Applies a batch's alarm plan. `join_after`: the earliest opening time of an alarm
        /// that new events may still join. `epoch`: `alarm_epoch` if already read in this
        /// transaction.
        pub(super) async fn $alarms(
            c: &mut $conn,
            plan: &Plan,
            join_after: i64,
            epoch: Option<i64>,
            cache: &mut AlarmCache,
        ) -> Result<(), sqlx::Error> {
            if plan.is_empty() {
                return Ok(());
            }
            let sql: &JsonSql = &$sql;
            let epoch: i64 = match epoch {
                Some(n) => n,
                None => {
                    sqlx::query_scalar("SELECT n FROM alarm_epoch WHERE id = 1")
                        .fetch_one(&mut *c)
                        .await?
                }
            };
            if cache.epoch != Some(epoch) || cache.open.len() > CACHE_LIMIT {
                cache.open.clear();
                cache.epoch = Some(epoch);
            }
            let missing: Vec<&str> = plan
                .accounts()
                .filter(|a| !cache.open.contains_key(*a))
                .collect();
            if !missing.is_empty() {
                let accounts = serde_json::to_string(&missing).expect("strings serialise");
                // Each site's newest open alarm, through the partial (account, id) index.
                let open: Vec<(i64, String, i32, i64)> = sqlx::query_as(&format!(
                    "SELECT id, account, priority, opened_at FROM alarms WHERE id IN \
                     (SELECT MAX(id) FROM alarms WHERE state <> 'resolved' \
                     AND account IN ({}) GROUP BY account)",
                    sql.strings
                ))
                .bind(&accounts)
                .fetch_all(&mut *c)
                .await?;
                for a in missing {
                    cache.open.insert(a.to_owned(), None);
                }
                for (id, account, priority, opened_at) in open {
                    cache.open.insert(
                        account,
                        Some(OpenAlarm {
                            id,
                            priority,
                            opened_at,
                        }),
                    );
                }
            }
            let mut moved = false;
            let steps: Vec<_> = plan
                .sites
                .iter()
                .map(|(account, site)| {
                    let found = cache.open.get(account).copied().flatten();
                    (account, site, alarm::steps(site, found, join_after))
                })
                .collect();
            // Every alarm the batch opens in one INSERT, and their `opened` steps in another:
            // a burst of sites opening their first alarms must not cost a round trip each.
            let opening: Vec<(&String, &alarm::Trigger, &alarm::Trigger)> = steps
                .iter()
                .filter_map(|(account, _, st)| st.open.map(|(first, top)| (*account, first, top)))
                .collect();
            let mut new_ids: HashMap<&str, i64> = HashMap::with_capacity(opening.len());
            for chunk in opening.chunks(OPEN_CHUNK) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO alarms (account, state, priority, category, opened_at, code, \
                     zone, partition, meaning, frame_ref, seq_in_frame) ",
                );
                q.push_values(chunk, |mut b, (account, first, top)| {
                    b.push_bind(account.as_str())
                        .push_bind("new")
                        .push_bind(top.category.priority())
                        .push_bind(top.category.name())
                        .push_bind(first.at)
                        .push_bind(top.code.as_deref())
                        .push_bind(top.zone.as_deref())
                        .push_bind(top.partition.as_deref())
                        .push_bind(top.meaning)
                        .push_bind(top.frame_ref.as_str())
                        .push_bind(top.seq_in_frame);
                });
                q.push(" RETURNING id, account");
                let ids: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut *c).await?;
                let mut changes = sqlx::QueryBuilder::new(
                    "INSERT INTO alarm_changes (alarm_id, at, change, actor, detail) ",
                );
                // RETURNING does not promise the VALUES order; a site opens at most one alarm
                // per batch, so the account says which row is whose.
                let ids: HashMap<String, i64> = ids.into_iter().map(|(id, a)| (a, id)).collect();
                let mut rows = Vec::with_capacity(chunk.len());
                for &(account, first, top) in chunk {
                    let Some(&id) = ids.get(account) else {
                        continue;
                    };
                    new_ids.insert(account, id);
                    rows.push((id, first.at, top.category.name()));
                    cache.open.insert(
                        account.clone(),
                        Some(OpenAlarm {
                            id,
                            priority: top.category.priority(),
                            opened_at: first.at,
                        }),
                    );
                }
                changes.push_values(&rows, |mut b, (id, at, category)| {
                    b.push_bind(*id)
                        .push_bind(*at)
                        .push_bind("opened")
                        .push_bind("panel")
                        .push_bind(*category);
                });
                changes.build().execute(&mut *c).await?;
                moved = true;
            }
            for (account, site, steps) in &steps {
                let account: &String = account;
                let new_id = new_ids.get(account.as_str()).copied();
                if let Some((id, top)) = steps.raise {
                    sqlx::query(
                        "UPDATE alarms SET priority = $2, category = $3, code = $4, zone = $5, \
                         partition = $6, meaning = $7, frame_ref = $8, seq_in_frame = $9 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(top.category.priority())
                    .bind(top.category.name())
                    .bind(&top.code)
                    .bind(&top.zone)
                    .bind(&top.partition)
                    .bind(top.meaning)
                    .bind(&top.frame_ref)
                    .bind(top.seq_in_frame)
                    .execute(&mut *c)
                    .await?;
                    change(&mut *c, id, top.at, "escalated", "panel", top.category.name()).await?;
                    moved = true;
                    if let Some(Some(o)) = cache.open.get_mut(account) {
                        o.priority = top.category.priority();
                    }
                }
                if let Some((target, mark)) = steps.cancel {
                    let id = match target {
                        Target::New => new_id,
                        Target::Existing(id) => Some(id),
                    };
                    if let Some(id) = id {
                        sqlx::query(
                            "UPDATE alarms SET cancelled_at = $2, cancelled_user = $3 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(mark.at)
                        .bind(&mark.user)
                        .execute(&mut *c)
                        .await?;
                        let who = mark
                            .user
                            .as_ref()
                            .map_or_else(|| "at the panel".to_owned(), |u| format!("at the panel by user {u}"));
                        change(&mut *c, id, mark.at, "cancelled_at_panel", "panel", &who).await?;
                    }
                }
                if let Some(mark) = &site.restore {
                    let id: Option<i64> = sqlx::query_scalar(
                        "UPDATE alarms SET restored_at = $2 WHERE id = (SELECT MAX(id) FROM alarms \
                         WHERE account = $1 AND state <> 'resolved' AND category = 'supervision') \
                         AND restored_at IS NULL RETURNING id",
                    )
                    .bind(account)
                    .bind(mark.at)
                    .fetch_optional(&mut *c)
                    .await?;
                    if let Some(id) = id {
                        change(&mut *c, id, mark.at, "restored", "panel", "communication restored")
                            .await?;
                    }
                }
            }
            if moved {
                // Other writers' caches no longer hold; this one's does (it made the changes).
                let n: i64 = sqlx::query_scalar(
                    "UPDATE alarm_epoch SET n = n + 1 WHERE id = 1 RETURNING n",
                )
                .fetch_one(&mut *c)
                .await?;
                cache.epoch = Some(n);
            }
            Ok(())
        }

        /// Moves last-seen times into `supervision`, clears the failure of sites heard from
        /// again, and (when `check_before` is given) claims the sites whose deadline is
        /// before it.
        pub(super) async fn $supervise(
            c: &mut $conn,
            seen: &[(String, i64)],
            now: i64,
            check_before: Option<i64>,
        ) -> Result<Supervised, sqlx::Error> {
            let sql: &JsonSql = &$sql;
            let mut out = Supervised::default();
            if !seen.is_empty() {
                let pairs = serde_json::to_string(seen).expect("pairs serialise");
                let newest = format!("{}(COALESCE(supervision.last_seen, 0), v.at)", sql.greatest);
                sqlx::query(&format!(
                    "UPDATE supervision SET last_seen = {newest}, deadline = CASE WHEN \
                     interval_secs IS NULL THEN NULL ELSE {newest} + interval_secs * 1000000 END \
                     FROM ({}) AS v WHERE supervision.account = v.account",
                    sql.pairs
                ))
                .bind(&pairs)
                .execute(&mut *c)
                .await?;
                let accounts: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
                let accounts = serde_json::to_string(&accounts).expect("strings serialise");
                out.restored = sqlx::query_scalar(&format!(
                    "UPDATE supervision SET failed_at = NULL, restored_at = $2 \
                     WHERE failed_at IS NOT NULL AND account IN ({}) RETURNING account",
                    sql.strings
                ))
                .bind(&accounts)
                .bind(now)
                .fetch_all(&mut *c)
                .await?;
            }
            if let Some(before) = check_before {
                out.failed = sqlx::query_scalar(
                    "UPDATE supervision SET failed_at = $1 WHERE account IN \
                     (SELECT account FROM supervision WHERE failed_at IS NULL \
                     AND deadline IS NOT NULL AND deadline < $2 ORDER BY deadline LIMIT $3) \
                     AND failed_at IS NULL RETURNING account",
                )
                .bind(now)
                .bind(before)
                .bind(CLAIM_LIMIT)
                .fetch_all(&mut *c)
                .await?;
            }
            Ok(out)
        }
    };
}

in_tx_fns!(
    alarms_sqlite,
    supervise_sqlite,
    sqlx::SqliteConnection,
    SQLITE
);
in_tx_fns!(
    alarms_postgres,
    supervise_postgres,
    sqlx::PgConnection,
    POSTGRES
);

/// One step of an alarm's life (here and for operators' actions in `alarms.rs`).
pub(super) const INSERT_CHANGE: &str = "INSERT INTO alarm_changes (alarm_id, at, change, actor, \
    detail) VALUES ($1, $2, $3, $4, $5)";

/// Records one step of an alarm's life.
async fn change<'c, E>(
    c: E,
    alarm_id: i64,
    at: i64,
    what: &str,
    actor: &str,
    detail: &str,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c>,
    for<'q> i64: sqlx::Encode<'q, E::Database> + sqlx::Type<E::Database>,
    for<'q> &'q str: sqlx::Encode<'q, E::Database> + sqlx::Type<E::Database>,
    for<'q> <E::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, E::Database>,
{
    sqlx::query(INSERT_CHANGE)
        .bind(alarm_id)
        .bind(at)
        .bind(what)
        .bind(actor)
        .bind(detail)
        .execute(c)
        .await
        .map(drop)
}
