//! Who may do what: operators and their token hashes, site codes (hashes, wrong-code counting
//! and locks), contact persons, and the audit log every verification and change lands in.

use serde::{Deserialize, Serialize};

use super::{rfc3339_micros, Db};
use crate::codes::{Hashes, Level};

/// `INSERT INTO audit …`, binds: at, actor, action, account, alarm_id, outcome, detail.
pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (at, actor, action, account, alarm_id, \
    outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// One audit row on a connection or in a transaction (a macro rather than a generic function:
/// the higher-ranked bounds such a function needs make the futures that call it lose `Send`).
macro_rules! audit {
    ($conn:expr, $now:expr, $actor:expr, $action:expr, $account:expr, $alarm:expr, $outcome:expr, $detail:expr) => {
        sqlx::query($crate::store::access::INSERT_AUDIT)
            .bind::<i64>($now)
            .bind::<&str>($actor)
            .bind::<&str>($action)
            .bind::<Option<&str>>($account)
            .bind::<Option<i64>>($alarm)
            .bind::<&str>($outcome)
            .bind::<Option<String>>($detail)
            .execute($conn)
            .await
            .map(drop)
    };
}

/// An operator as listed (never the token or its hash).
#[derive(Debug, Clone, Serialize)]
pub struct OperatorInfo {
    pub name: String,
    pub role: String,
    pub created_at: String,
}

/// One audit log row.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub account: Option<String>,
    pub alarm_id: Option<i64>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// Which audit rows to list: newest first, before `before_id`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub account: Option<String>,
    pub actor: Option<String>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// A site's codes as stored.
#[derive(Debug, Clone, Default)]
pub struct SiteCodes {
    pub hashes: Hashes,
    /// Unix microseconds of the last change: verifications before it no longer count.
    pub changed_at: i64,
    /// Wrong codes before this no longer count (a right code or a lock resets the count).
    pub counted_from: i64,
    pub locked_until: Option<i64>,
}

impl SiteCodes {
    /// What operators (and `vakt site show`) see of a site's codes: whether each is set, when
    /// they changed, the lock; never a hash.
    pub fn status(codes: Option<&Self>, now: i64) -> serde_json::Value {
        serde_json::json!({
            "revoke_code_set": codes.is_some_and(|c| c.hashes.revoke.is_some()),
            "main_code_set": codes.is_some_and(|c| c.hashes.main.is_some()),
            "changed_at": codes.map(|c| rfc3339_micros(c.changed_at)),
            "locked_until": codes.and_then(|c| c.locked_at(now)).map(rfc3339_micros),
        })
    }

    /// Locked at `now`?
    pub fn locked_at(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|&until| until > now)
    }
}

/// Wrong-code limits.
#[derive(Debug, Clone, Copy)]
pub struct CodePolicy {
    pub max_failures: u32,
    pub window_micros: i64,
    pub lockout_micros: i64,
}

/// A code given for a site.
#[derive(Debug, Clone, Copy)]
pub struct CodeAttempt<'a> {
    pub account: &'a str,
    pub actor: &'a str,
    /// `verify` or `revoke`.
    pub action: &'a str,
    pub alarm_id: Option<i64>,
    /// What the code granted; `None` is a wrong code.
    pub level: Level,
    pub now: i64,
}

/// What an attempt left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptResult {
    /// Wrong codes counted for the site now (0 after a right one).
    pub failures: i64,
    /// Set when this attempt locked the site.
    pub locked_until: Option<i64>,
}

/// A contact person on a site's call list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    pub phones: Vec<String>,
    /// May be told about the alarm system and its alarms.
    pub may_receive_info: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// The audit outcome of a code attempt.
fn attempt_outcome(level: Level) -> &'static str {
    match level {
        Level::None => "wrong",
        l => l.name(),
    }
}

impl Db {
    /// The operator (name, role) holding the token with this hash.
    pub async fn operator_by_token(
        &self,
        token_hash: &str,
    ) -> anyhow::Result<Option<(String, String)>> {
        Ok(on_pool!(self, read, |p| {
            sqlx::query_as("SELECT name, role FROM operators WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(p)
                .await
        })?)
    }

    /// Adds an operator; `false` when the name is taken.
    pub async fn add_operator(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        actor: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(on_pool!(self, write, |p| async {
            let mut tx = p.begin().await?;
            let added = sqlx::query(
                "INSERT INTO operators (name, role, token_hash, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(role)
            .bind(token_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if added {
                let detail = Some(format!("{name} as {role}"));
                audit!(
                    &mut *tx,
                    now,
                    actor,
                    "operator_add",
                    None,
                    None,
                    "ok",
                    detail
                )?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(added)
        }
        .await)?)
    }

    /// Gives an operator a new token (the old one stops working); `false` when there is none.
    pub async fn replace_operator_token(
        &self,
        name: &str,
        token_hash: &str,
        actor: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE operators SET token_hash = $1 WHERE name = $2";
        self.operator_write(sql, &[token_hash, name], "operator_token", name, actor, now)
            .await
    }

    /// Removes an operator; `false` when there is none.
    pub async fn remove_operator(&self, name: &str, actor: &str, now: i64) -> anyhow::Result<bool> {
        let sql = "DELETE FROM operators WHERE name = $1";
        self.operator_write(sql, &[name], "operator_remove", name, actor, now)
            .await
    }

    /// One statement on an operator's row and, when it found the row, its audit row.
    async fn operator_write(
        &self,
        sql: &str,
        binds: &[&str],
        action: &str,
        name: &str,
        actor: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(on_pool!(self, write, |p| async {
            let mut tx = p.begin().await?;
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            let done = q.execute(&mut *tx).await?.rows_affected() > 0;
            if done {
                audit!(
                    &mut *tx,
                    now,
                    actor,
                    action,
                    None,
                    None,
                    "ok",
                    Some(name.to_owned())
                )?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done)
        }
        .await)?)
    }

    /// Every operator, by name.
    pub async fn operators(&self) -> anyhow::Result<Vec<OperatorInfo>> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, read, |p| {
            sqlx::query_as("SELECT name, role, created_at FROM operators ORDER BY name")
                .fetch_all(p)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, role, at)| OperatorInfo {
                name,
                role,
                created_at: rfc3339_micros(at),
            })
            .collect())
    }

    /// Appends one audit row.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit(
        &self,
        now: i64,
        actor: &str,
        action: &str,
        account: Option<&str>,
        alarm_id: Option<i64>,
        outcome: &str,
        detail: Option<String>,
    ) -> anyhow::Result<()> {
        on_pool!(self, write, |p| {
            audit!(p, now, actor, action, account, alarm_id, outcome, detail)
        })?;
        Ok(())
    }

    /// Audit rows, newest first.
    pub async fn audit_log(&self, q: &AuditQuery) -> anyhow::Result<Vec<AuditRow>> {
        type Raw = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<i64>,
            String,
            Option<String>,
        );
        let rows: Vec<Raw> = on_pool!(self, read, |p| {
            sqlx::query_as(
                "SELECT id, at, actor, action, account, alarm_id, outcome, detail FROM audit \
                 WHERE ($1 = '' OR account = $1) AND ($2 = '' OR actor = $2) AND id < $3 \
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(
                q.account
                    .as_deref()
                    .map(str::to_ascii_uppercase)
                    .unwrap_or_default(),
            )
            .bind(q.actor.as_deref().unwrap_or(""))
            .bind(q.before_id.unwrap_or(i64::MAX))
            .bind(q.limit)
            .fetch_all(p)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, action, account, alarm_id, outcome, detail)| AuditRow {
                    id,
                    at: rfc3339_micros(at),
                    actor,
                    action,
                    account,
                    alarm_id,
                    outcome,
                    detail,
                },
            )
            .collect())
    }

    /// A site's codes (`None`: never set).
    pub async fn site_codes(&self, account: &str) -> anyhow::Result<Option<SiteCodes>> {
        type Raw = (Option<String>, Option<String>, i64, i64, Option<i64>);
        let row: Option<Raw> = on_pool!(self, read, |p| {
            sqlx::query_as(
                "SELECT revoke_hash, main_hash, changed_at, counted_from, locked_until \
                 FROM site_codes WHERE account = $1",
            )
            .bind(account.to_ascii_uppercase())
            .fetch_optional(p)
            .await
        })?;
        Ok(row.map(
            |(revoke, main, changed_at, counted_from, locked_until)| SiteCodes {
                hashes: Hashes { revoke, main },
                changed_at,
                counted_from,
                locked_until,
            },
        ))
    }

    /// Sets a site's codes (hashes); a `None` keeps the stored one. Clears any lock and the
    /// wrong-code count, and ends earlier verifications.
    pub async fn set_codes(
        &self,
        account: &str,
        hashes: &Hashes,
        actor: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let account = account.to_ascii_uppercase();
        let which: Vec<&str> = [("revoke", &hashes.revoke), ("main", &hashes.main)]
            .into_iter()
            .filter(|(_, h)| h.is_some())
            .map(|(n, _)| n)
            .collect();
        on_pool!(self, write, |p| {
            async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO site_codes (account, revoke_hash, main_hash, changed_at, counted_from) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (account) DO UPDATE SET \
                 revoke_hash = COALESCE(excluded.revoke_hash, site_codes.revoke_hash), \
                 main_hash = COALESCE(excluded.main_hash, site_codes.main_hash), \
                 changed_at = excluded.changed_at, counted_from = excluded.counted_from, \
                 locked_until = NULL",
            )
            .bind(&account)
            .bind(&hashes.revoke)
            .bind(&hashes.main)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit!(&mut *tx, now, actor, "codes", Some(&account), None, "changed", Some(which.join(", ")))?;
            tx.commit().await
        }
        .await
        })?;
        Ok(())
    }

    /// Records a code given for a site (never the code): the audit row, and for a wrong code
    /// the count towards the lock (and the flag on the alarm, when one was being revoked); a
    /// right code resets the count.
    pub async fn record_code_attempt(
        &self,
        a: &CodeAttempt<'_>,
        policy: &CodePolicy,
    ) -> anyhow::Result<AttemptResult> {
        let account = a.account.to_ascii_uppercase();
        let outcome = attempt_outcome(a.level);
        Ok(on_pool!(self, write, |p| async {
            let mut tx = p.begin().await?;
            audit!(
                &mut *tx,
                a.now,
                a.actor,
                a.action,
                Some(&account),
                a.alarm_id,
                outcome,
                None
            )?;
            if a.level != Level::None {
                sqlx::query("UPDATE site_codes SET counted_from = $1 WHERE account = $2")
                    .bind(a.now)
                    .bind(&account)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok::<_, sqlx::Error>(AttemptResult {
                    failures: 0,
                    locked_until: None,
                });
            }
            if let Some(alarm) = a.alarm_id {
                sqlx::query("UPDATE alarms SET wrong_codes = wrong_codes + 1 WHERE id = $1")
                    .bind(alarm)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(super::queue::INSERT_CHANGE)
                    .bind(alarm)
                    .bind(a.now)
                    .bind("wrong_code")
                    .bind(a.actor)
                    .bind("a wrong code was given to revoke this alarm")
                    .execute(&mut *tx)
                    .await?;
            }
            let counted_from: i64 =
                sqlx::query_scalar("SELECT counted_from FROM site_codes WHERE account = $1")
                    .bind(&account)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or(0);
            let from = counted_from.max(a.now - policy.window_micros);
            let failures: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit WHERE account = $1 AND outcome = 'wrong' AND at >= $2",
            )
            .bind(&account)
            .bind(from)
            .fetch_one(&mut *tx)
            .await?;
            let mut locked_until = None;
            if failures >= i64::from(policy.max_failures) {
                let until = a.now + policy.lockout_micros;
                sqlx::query(
                    "UPDATE site_codes SET locked_until = $1, counted_from = $2 WHERE account = $3",
                )
                .bind(until)
                .bind(a.now + 1)
                .bind(&account)
                .execute(&mut *tx)
                .await?;
                audit!(
                    &mut *tx,
                    a.now,
                    a.actor,
                    "lock",
                    Some(&account),
                    a.alarm_id,
                    "locked",
                    Some(format!("{failures} wrong codes"))
                )?;
                locked_until = Some(until);
            }
            tx.commit().await?;
            Ok(AttemptResult {
                failures,
                locked_until,
            })
        }
        .await)?)
    }

    /// The highest level this operator verified for this site at or after `since`.
    pub async fn verified_level(
        &self,
        actor: &str,
        account: &str,
        since: i64,
    ) -> anyhow::Result<Level> {
        let outcomes: Vec<String> = on_pool!(self, read, |p| {
            sqlx::query_scalar(
                "SELECT DISTINCT outcome FROM audit WHERE actor = $1 AND account = $2 \
                 AND action = 'verify' AND at >= $3 AND outcome IN ('revoke', 'main')",
            )
            .bind(actor)
            .bind(account.to_ascii_uppercase())
            .bind(since)
            .fetch_all(p)
            .await
        })?;
        Ok(outcomes
            .iter()
            .filter_map(|o| Level::from_name(o))
            .max()
            .unwrap_or(Level::None))
    }

    /// A site's call list, in call order.
    pub async fn contacts(&self, account: &str) -> anyhow::Result<Vec<Contact>> {
        type Raw = (String, String, bool, Option<String>);
        let rows: Vec<Raw> = on_pool!(self, read, |p| {
            sqlx::query_as(
                "SELECT name, phones, may_receive_info, note FROM contacts \
                 WHERE account = $1 ORDER BY position",
            )
            .bind(account.to_ascii_uppercase())
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(|(name, phones, may_receive_info, note)| {
                Ok(Contact {
                    name,
                    phones: serde_json::from_str(&phones)?,
                    may_receive_info,
                    note,
                })
            })
            .collect()
    }

    /// Replaces a site's call list (the order given is the call order).
    pub async fn set_contacts(
        &self,
        account: &str,
        contacts: &[Contact],
        actor: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let account = account.to_ascii_uppercase();
        on_pool!(self, write, |p| {
            async {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM contacts WHERE account = $1")
                .bind(&account)
                .execute(&mut *tx)
                .await?;
            for (i, c) in contacts.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO contacts (account, position, name, phones, may_receive_info, note) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&account)
                .bind(i64::try_from(i).unwrap_or(i64::MAX) + 1)
                .bind(&c.name)
                .bind(serde_json::to_string(&c.phones).unwrap_or_default())
                .bind(c.may_receive_info)
                .bind(&c.note)
                .execute(&mut *tx)
                .await?;
            }
            audit!(&mut *tx, now, actor, "contacts", Some(&account), None, "changed", Some(format!("{} contacts", contacts.len())))?;
            tx.commit().await
        }
        .await
        })?;
        Ok(())
    }
}
