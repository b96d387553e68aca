//! The customer-service rules over HTTP: verifying a caller's code, revoking an alarm with it,
//! contact persons and codes (changed only after the right code was verified), and the admin
//! side: sites, operators and the audit log.
//!
//! A code is checked on a blocking thread ([`crate::codes::Hasher`]); a site whose verification
//! is locked answers 423 without hashing anything. No answer, log line or audit row carries a
//! code, a hash or a token (except the one answer that hands out a new token).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::Admin;
use super::{alarm_id, before_id, body_object, db_error, error, limit, text_field, Shared};
use crate::auth::{check_name, new_token, token_hash, Operator, Role};
use crate::clock::unix_micros;
use crate::codes::{self, Hashes, Level};
use crate::site::SiteSpec;
use crate::store::{AuditQuery, CodeAttempt, CodePolicy, Contact, SiteCodes};

type Refusal = Box<Response>;

fn policy(s: &super::AppState) -> CodePolicy {
    let c = &s.codes;
    let micros = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX / 2_000_000) * 1_000_000;
    CodePolicy {
        max_failures: c.max_failures,
        window_micros: micros(c.failure_window_secs),
        lockout_micros: micros(c.lockout_secs),
    }
}

fn locked(account: &str, until: i64) -> Response {
    (
        StatusCode::LOCKED,
        Json(json!({
            "error": format!(
                "too many wrong codes: code verification for site {account} is locked until {}",
                crate::store::rfc3339_micros(until)
            ),
            "locked_until": crate::store::rfc3339_micros(until),
        })),
    )
        .into_response()
}

/// A known site's codes (`None` when none are set), or 404 for an unknown site.
async fn stored_codes(s: &super::AppState, account: &str) -> Result<Option<SiteCodes>, Refusal> {
    match s.db.site(account).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                format!("no site with account {account}"),
            )))
        }
        Err(e) => return Err(Box::new(db_error(&e))),
    }
    match s.db.site_codes(account).await {
        Ok(c) => Ok(c.filter(|c| c.hashes.any())),
        Err(e) => Err(Box::new(db_error(&e))),
    }
}

/// The site's codes, or the answer when the site is unknown or has none.
async fn codes_of(s: &super::AppState, account: &str) -> Result<SiteCodes, Refusal> {
    stored_codes(s, account).await?.ok_or_else(|| {
        Box::new(error(
            StatusCode::CONFLICT,
            format!("site {account} has no codes set (vakt site set-codes, or PUT /api/sites/{account}/codes)"),
        ))
    })
}

/// The `code` field of a body.
fn code_field(body: &[u8]) -> Result<String, Refusal> {
    Ok(text_field(&body_object(body)?, "code", 256, true)?.unwrap_or_default())
}

/// Checks a code for a site: 423 while locked (audited, not hashed), else the level it grants.
/// A wrong code is recorded here (audit, wrong-code count, the alarm's flag); a right one too
/// unless `right_recorded_by_caller` (a revoke records it with the alarm's resolution).
#[allow(clippy::too_many_arguments)]
async fn check_code(
    s: &super::AppState,
    op: &Operator,
    account: &str,
    codes: SiteCodes,
    code: String,
    action: &str,
    alarm: Option<i64>,
    right_recorded_by_caller: bool,
) -> Result<(Level, crate::store::AttemptResult), Refusal> {
    if let Some(until) = codes.locked_at(unix_micros()) {
        let r =
            s.db.audit(
                unix_micros(),
                &op.name,
                action,
                Some(account),
                alarm,
                "locked",
                None,
            )
            .await;
        return Err(Box::new(match r {
            Ok(()) => locked(account, until),
            Err(e) => db_error(&e),
        }));
    }
    let level = s.hasher.level(code, codes.hashes).await;
    if level > Level::None && right_recorded_by_caller {
        let none = crate::store::AttemptResult {
            failures: 0,
            locked_until: None,
        };
        return Ok((level, none));
    }
    let attempt = CodeAttempt {
        account,
        actor: &op.name,
        action,
        alarm_id: alarm,
        level,
        now: unix_micros(),
    };
    match s.db.record_code_attempt(&attempt, &policy(s)).await {
        Ok(r) => Ok((level, r)),
        Err(e) => Err(Box::new(db_error(&e))),
    }
}

/// `POST /api/sites/{account}/verify` `{"code": …}`: the level the code grants.
pub(super) async fn verify(
    State(s): Shared,
    op: Operator,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let account = account.to_ascii_uppercase();
    let run = async {
        let code = code_field(&body)?;
        let codes = codes_of(&s, &account).await?;
        let (level, r) = check_code(&s, &op, &account, codes, code, "verify", None, false).await?;
        let valid = i64::try_from(s.codes.verified_for_secs).unwrap_or(0) * 1_000_000;
        Ok::<_, Refusal>(
            Json(json!({
                "account": account,
                "level": level.name(),
                "verified_until": (level > Level::None)
                    .then(|| crate::store::rfc3339_micros(unix_micros() + valid)),
                "wrong_codes": r.failures,
                "locked_until": r.locked_until.map(crate::store::rfc3339_micros),
            }))
            .into_response(),
        )
    };
    run.await.unwrap_or_else(|r| *r)
}

/// `POST /api/alarms/{id}/revoke` `{"code": …}`: the revoke or the main code resolves the alarm
/// as revoked by the customer; a wrong code leaves it open and flags it.
pub(super) async fn revoke(
    State(s): Shared,
    op: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let id = alarm_id(&id)?;
        let code = code_field(&body)?;
        let alarm = match s.db.alarm(id).await {
            Ok(Some((a, _))) => a,
            Ok(None) => {
                return Err(Box::new(error(
                    StatusCode::NOT_FOUND,
                    format!("no alarm {id}"),
                )))
            }
            Err(e) => return Err(Box::new(db_error(&e))),
        };
        // Refused before the code is looked at: no attempt is spent on an alarm that cannot
        // be revoked.
        match (alarm.state.as_str(), alarm.taken_by.as_deref()) {
            ("resolved", _) => {
                return Err(Box::new(error(
                    StatusCode::CONFLICT,
                    format!("alarm {id} is already resolved"),
                )))
            }
            ("taken", Some(by)) if by != op.name => {
                return Err(Box::new(error(
                    StatusCode::CONFLICT,
                    format!("alarm {id} is taken by {by}"),
                )))
            }
            _ => {}
        }
        let codes = codes_of(&s, &alarm.account).await?;
        let (level, r) = check_code(
            &s,
            &op,
            &alarm.account,
            codes,
            code,
            "revoke",
            Some(id),
            true,
        )
        .await?;
        if level == Level::None {
            return Err(Box::new(
                (
                    StatusCode::FORBIDDEN,
                    Json(json!({
                        "error": format!("wrong code: alarm {id} stays open, and the attempt is flagged on it"),
                        "wrong_codes": r.failures,
                        "locked_until": r.locked_until.map(crate::store::rfc3339_micros),
                    })),
                )
                    .into_response(),
            ));
        }
        let done = s.db.revoke_alarm(id, &op.name, level, unix_micros()).await;
        if let Ok(Err(_)) = &done {
            // The alarm changed under us (taken or resolved meanwhile): the right code is
            // still an attempt to audit.
            let attempt = CodeAttempt {
                account: &alarm.account,
                actor: &op.name,
                action: "revoke",
                alarm_id: Some(id),
                level,
                now: unix_micros(),
            };
            if let Err(e) = s.db.record_code_attempt(&attempt, &policy(&s)).await {
                return Err(Box::new(db_error(&e)));
            }
        }
        Ok(super::action_answer(done, id))
    };
    run.await.unwrap_or_else(|r| *r)
}

/// The changes that need a code verified by this operator within `[codes] verified_for_secs`
/// (after the codes last changed). A site without codes yet is set up by an admin. Answers the
/// site's stored hashes (none set: empty).
async fn require_verified(
    s: &super::AppState,
    op: &Operator,
    account: &str,
    need: Level,
) -> Result<Hashes, Refusal> {
    let codes = stored_codes(s, account).await?;
    let Some(codes) = codes else {
        return if op.role == Role::Admin {
            Ok(Hashes::default())
        } else {
            Err(Box::new(error(
                StatusCode::FORBIDDEN,
                format!("site {account} has no codes yet: an admin sets it up"),
            )))
        };
    };
    let now = unix_micros();
    let window = i64::try_from(s.codes.verified_for_secs).unwrap_or(0) * 1_000_000;
    let since = (now - window).max(codes.changed_at);
    match s.db.verified_level(&op.name, account, since).await {
        Ok(level) if level >= need => Ok(codes.hashes),
        Ok(_) => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the customer's {} code verified by you within the last {} s: \
                 POST /api/sites/{account}/verify first",
                if need == Level::Main {
                    "main"
                } else {
                    "revoke or main"
                },
                s.codes.verified_for_secs
            ),
        ))),
        Err(e) => Err(Box::new(db_error(&e))),
    }
}

/// `GET /api/sites/{account}/contacts`.
pub(super) async fn contacts(
    State(s): Shared,
    _op: Operator,
    Path(account): Path<String>,
) -> Response {
    if let Err(r) = stored_codes(&s, &account).await {
        return *r;
    }
    match s.db.contacts(&account).await {
        Ok(list) => {
            Json(json!({ "account": account.to_ascii_uppercase(), "contacts": numbered(&list) }))
                .into_response()
        }
        Err(e) => db_error(&e),
    }
}

/// Contacts with their call order.
fn numbered(list: &[Contact]) -> Vec<serde_json::Value> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v = json!(c);
            v["order"] = json!(i + 1);
            v
        })
        .collect()
}

const MAX_CONTACTS: usize = 20;

fn check_contacts(list: &[Contact]) -> Result<(), String> {
    if list.len() > MAX_CONTACTS {
        return Err(format!("at most {MAX_CONTACTS} contacts"));
    }
    for (i, c) in list.iter().enumerate() {
        let n = i + 1;
        if c.name.trim().is_empty() || c.name.chars().count() > 100 {
            return Err(format!("contact {n}: name must be 1-100 characters"));
        }
        if c.phones.is_empty() || c.phones.len() > 5 {
            return Err(format!("contact {n}: give 1-5 phone numbers"));
        }
        for p in &c.phones {
            let digits = p.chars().filter(char::is_ascii_digit).count();
            if !(3..=20).contains(&digits)
                || !p
                    .chars()
                    .all(|ch| ch.is_ascii_digit() || " +-()".contains(ch))
            {
                return Err(format!(
                    "contact {n}: phone {p:?} must be 3-20 digits (with + - ( ) or spaces)"
                ));
            }
        }
        if c.note.as_ref().is_some_and(|t| t.chars().count() > 500) {
            return Err(format!("contact {n}: note is longer than 500 characters"));
        }
    }
    Ok(())
}

/// `PUT /api/sites/{account}/contacts` `{"contacts": [{name, phones, may_receive_info, note}]}`:
/// the whole call list in call order, after a revoke-level verification.
pub(super) async fn put_contacts(
    State(s): Shared,
    op: Operator,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let account = account.to_ascii_uppercase();
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        contacts: Vec<Contact>,
    }
    let run = async {
        let list = match serde_json::from_slice::<Body>(&body) {
            Ok(b) => b.contacts,
            Err(e) => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    format!("the body must be {{\"contacts\": [{{\"name\", \"phones\", \"may_receive_info\", \"note\"}}]}}: {e}"),
                )))
            }
        };
        check_contacts(&list).map_err(|r| Box::new(error(StatusCode::BAD_REQUEST, r)))?;
        require_verified(&s, &op, &account, Level::Revoke).await?;
        s.db.set_contacts(&account, &list, &op.name, unix_micros())
            .await
            .map_err(|e| Box::new(db_error(&e)))?;
        Ok(Json(json!({ "account": account, "contacts": numbered(&list) })).into_response())
    };
    run.await.unwrap_or_else(|r| *r)
}

/// `PUT /api/sites/{account}/codes` `{"revoke": …, "main": …}` (either or both): after a
/// main-level verification, or by an admin for a site that has no codes yet.
pub(super) async fn put_codes(
    State(s): Shared,
    op: Operator,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let account = account.to_ascii_uppercase();
    let run = async {
        let m = body_object(&body)?;
        let bad = |reason: String| Box::new(error(StatusCode::BAD_REQUEST, reason));
        let revoke = text_field(&m, "revoke", 256, false)?;
        let main = text_field(&m, "main", 256, false)?;
        if let Some(k) = m.keys().find(|k| !["revoke", "main"].contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown field {k:?}: give revoke, main or both"
            )));
        }
        for c in [&revoke, &main].into_iter().flatten() {
            codes::normalize(c).map_err(|e| bad(e.to_string()))?;
        }
        match (&revoke, &main) {
            (None, None) => return Err(bad("give revoke, main or both".into())),
            (Some(r), Some(m)) if r.trim() == m.trim() => {
                return Err(bad(codes::CodeError::SameCodes.to_string()))
            }
            _ => {}
        }
        let stored = require_verified(&s, &op, &account, Level::Main).await?;
        // A new code equal to the other, unchanged one would blur the two levels.
        let other = match (&revoke, &main) {
            (Some(r), None) => Some((
                r.clone(),
                Hashes {
                    main: stored.main,
                    revoke: None,
                },
            )),
            (None, Some(m)) => Some((
                m.clone(),
                Hashes {
                    revoke: None,
                    main: stored.revoke,
                },
            )),
            _ => None,
        };
        if let Some((code, against)) = other {
            if s.hasher.level(code, against).await > Level::None {
                return Err(bad(codes::CodeError::SameCodes.to_string()));
            }
        }
        let given: Vec<String> = [&revoke, &main].into_iter().flatten().cloned().collect();
        let mut hashed = s
            .hasher
            .hash_all(given)
            .await
            .map_err(|e| bad(e.to_string()))?
            .into_iter();
        let hashes = Hashes {
            revoke: revoke.as_ref().and_then(|_| hashed.next()),
            main: main.as_ref().and_then(|_| hashed.next()),
        };
        s.db.set_codes(&account, &hashes, &op.name, unix_micros())
            .await
            .map_err(|e| Box::new(db_error(&e)))?;
        let codes =
            s.db.site_codes(&account)
                .await
                .map_err(|e| Box::new(db_error(&e)))?;
        Ok(Json(
            json!({ "account": account, "codes": SiteCodes::status(codes.as_ref(), unix_micros()) }),
        )
        .into_response())
    };
    run.await.unwrap_or_else(|r| *r)
}

/// `PUT /api/sites/{account}` (admin): adds or replaces a site; the body is a `[[site]]`
/// table as JSON (code hashes only, never codes).
pub(super) async fn put_site(
    State(s): Shared,
    Admin(op): Admin,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let mut m = body_object(&body)?;
        match m.get("account") {
            None => {
                m.insert("account".into(), json!(account));
            }
            Some(a) if a.as_str().is_some_and(|a| a.eq_ignore_ascii_case(&account)) => {}
            Some(_) => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "the body's account differs from the path's".into(),
                )))
            }
        }
        let spec: SiteSpec = serde_json::from_value(serde_json::Value::Object(m))
            .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("site: {e}"))))?;
        spec.check()
            .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("site: {e:#}"))))?;
        let now = unix_micros();
        let stored = async {
            s.db.upsert_site(&spec, now).await?;
            s.db.store_code_hashes(&spec, &op.name, now).await?;
            s.db.audit(
                now,
                &op.name,
                "site_put",
                Some(&spec.normalized_account()),
                None,
                "ok",
                None,
            )
            .await
        };
        stored.await.map_err(|e| Box::new(db_error(&e)))?;
        match s.db.site(&account).await {
            Ok(Some(spec)) => Ok(match crate::site::Site::new(spec) {
                Ok(site) => Json(site.to_json()).into_response(),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("stored site: {e:#}"),
                ),
            }),
            Ok(None) => Err(Box::new(error(
                StatusCode::CONFLICT,
                "the site was removed meanwhile".into(),
            ))),
            Err(e) => Err(Box::new(db_error(&e))),
        }
    };
    run.await.unwrap_or_else(|r| *r)
}

/// `DELETE /api/sites/{account}` (admin): the site, its codes and contacts; events stay.
pub(super) async fn delete_site(
    State(s): Shared,
    Admin(op): Admin,
    Path(account): Path<String>,
) -> Response {
    let account = account.to_ascii_uppercase();
    match s.db.remove_site(&account, &op.name, unix_micros()).await {
        Ok(true) => Json(json!({ "removed": account })).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("no site with account {account}"),
        ),
        Err(e) => db_error(&e),
    }
}

/// `GET /api/operators` (admin).
pub(super) async fn operators(State(s): Shared, _admin: Admin) -> Response {
    match s.db.operators().await {
        Ok(list) => Json(json!({ "operators": list })).into_response(),
        Err(e) => db_error(&e),
    }
}

/// `POST /api/operators` `{"name", "role"}` (admin): the new operator's token, shown this once.
pub(super) async fn add_operator(
    State(s): Shared,
    Admin(op): Admin,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let m = body_object(&body)?;
        let name = text_field(&m, "name", 64, true)?.unwrap_or_default();
        check_name(&name).map_err(|r| Box::new(error(StatusCode::BAD_REQUEST, r)))?;
        let role = text_field(&m, "role", 16, true)?.unwrap_or_default();
        let Some(role) = Role::from_name(&role) else {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("role must be operator or admin, got {role:?}"),
            )));
        };
        let token = new_token();
        match s
            .db
            .add_operator(
                &name,
                role.name(),
                &token_hash(&token),
                &op.name,
                unix_micros(),
            )
            .await
        {
            Ok(true) => Ok((
                StatusCode::CREATED,
                Json(json!({ "name": name, "role": role.name(), "token": token })),
            )
                .into_response()),
            Ok(false) => Err(Box::new(error(
                StatusCode::CONFLICT,
                format!("operator {name} exists"),
            ))),
            Err(e) => Err(Box::new(db_error(&e))),
        }
    };
    run.await.unwrap_or_else(|r| *r)
}

/// `DELETE /api/operators/{name}` (admin; not oneself, so some admin always remains).
pub(super) async fn remove_operator(
    State(s): Shared,
    Admin(op): Admin,
    Path(name): Path<String>,
) -> Response {
    if name == op.name {
        return error(
            StatusCode::CONFLICT,
            "an admin cannot remove themselves".into(),
        );
    }
    match s.db.remove_operator(&name, &op.name, unix_micros()).await {
        Ok(true) => Json(json!({ "removed": name })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no operator {name}")),
        Err(e) => db_error(&e),
    }
}

/// `GET /api/audit?account=&actor=&before=&limit=` (admin): newest first.
pub(super) async fn audit(
    State(s): Shared,
    _admin: Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match limit(&q) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let before_id = match before_id(&q, "an audit") {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let query = AuditQuery {
        account: q.get("account").cloned(),
        actor: q.get("actor").cloned(),
        before_id,
        limit,
    };
    match s.db.audit_log(&query).await {
        Ok(rows) => Json(json!({ "audit": rows })).into_response(),
        Err(e) => db_error(&e),
    }
}
