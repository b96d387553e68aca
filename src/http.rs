//! The HTTP side: `/health`, `/metrics` (Prometheus text), the JSON API (events, sites with
//! their state, the alarm queue and its actions) and the live feed (`/api/stream`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod access;
mod auth;

pub use auth::Admin;

use crate::auth::Operator;
use crate::clock::unix_micros;
use crate::site::Site;
use crate::site_state::ZoneState;
use crate::store::{
    ActionError, AlarmFilter, Db, EventQuery, SiteStateRows, ZoneStateRow, OUTCOMES,
};
use crate::stream;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub metrics: PrometheusHandle,
    /// Serial lines.
    pub lines: crate::serial::Lines,
    /// The live feed.
    pub stream: tokio::sync::broadcast::Sender<stream::Item>,
    /// Cancelled at shutdown: ends the live feeds, so the server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Site codes are checked here, off the runtime's core threads.
    pub hasher: crate::codes::Hasher,
    /// Wrong-code limits and how long a verification lasts.
    pub codes: crate::config::CodesConfig,
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/events", get(events))
        .route("/api/sites", get(sites))
        .route(
            "/api/sites/{account}",
            get(site).put(access::put_site).delete(access::delete_site),
        )
        .route("/api/sites/{account}/verify", post(access::verify))
        .route(
            "/api/sites/{account}/contacts",
            get(access::contacts).put(access::put_contacts),
        )
        .route("/api/sites/{account}/codes", put(access::put_codes))
        .route("/api/lines", get(lines))
        .route("/api/alarms", get(alarms))
        .route("/api/alarms/{id}", get(alarm))
        .route("/api/alarms/{id}/take", post(take))
        .route("/api/alarms/{id}/resolve", post(resolve))
        .route("/api/alarms/{id}/revoke", post(access::revoke))
        .route(
            "/api/operators",
            get(access::operators).post(access::add_operator),
        )
        .route("/api/operators/{name}", delete(access::remove_operator))
        .route("/api/audit", get(access::audit))
        .route("/api/stream", get(live))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(Arc::new(state))
}

type Shared = State<Arc<AppState>>;

/// A JSON error body with a reason.
fn error(status: StatusCode, reason: String) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}

/// 503 with the database's error.
fn db_error(e: &anyhow::Error) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e:#}"))
}

/// `before`: an id to page back from (`what` names the kind of id in the reason).
fn before_id(q: &HashMap<String, String>, what: &str) -> Result<Option<i64>, Box<Response>> {
    match q.get("before").map(|v| v.parse::<i64>()) {
        None => Ok(None),
        Some(Ok(id)) => Ok(Some(id)),
        Some(Err(_)) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("before must be {what} id"),
        ))),
    }
}

async fn health(State(s): Shared) -> Response {
    match s.db.ping().await {
        Ok(()) => Json(json!({ "status": "ok", "database": s.db.backend() })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": s.db.backend(), "error": format!("{e:#}") })),
        )
            .into_response(),
    }
}

/// Each partition's arming and readiness: a partition is not ready while a zone of it (or a
/// zone the panel reported without a partition) is in alarm, trouble or tamper and not
/// bypassed; the reasons name the zone, its state, since when and the event that set it.
fn partitions_json(state: &SiteStateRows) -> serde_json::Value {
    let mut names: Vec<&str> = state
        .partitions
        .iter()
        .map(|p| p.partition.as_str())
        .chain(state.zones.iter().map(|z| z.partition.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let blocking =
        |z: &ZoneStateRow| ZoneState::from_name(&z.state).is_some_and(ZoneState::blocks_arming);
    let list: Vec<_> = names
        .into_iter()
        .map(|name| {
            let arming = state.partitions.iter().find(|p| p.partition == name);
            let reasons: Vec<_> = state
                .zones
                .iter()
                .filter(|z| {
                    blocking(z) && (z.partition == name || z.partition.is_empty() || name.is_empty())
                })
                .map(|z| json!({
                    "zone": z.zone, "state": z.state, "since": z.since, "code": z.code, "event": z.event,
                }))
                .collect();
            json!({
                "partition": name,
                "arming": arming.map_or("unknown", |p| p.arming.as_str()),
                "user": arming.and_then(|p| p.user.clone()),
                "changed_at": arming.map(|p| p.changed_at.clone()),
                "code": arming.and_then(|p| p.code.clone()),
                "event": arming.map(|p| &p.event),
                "ready": reasons.is_empty(),
                "not_ready_reasons": reasons,
            })
        })
        .collect();
    json!(list)
}

/// Serial lines: device open or not, heartbeat supervision, counts.
async fn lines(State(s): Shared, _op: Operator) -> Response {
    let v: Vec<_> = s.lines.iter().map(|l| l.snapshot()).collect();
    Json(json!({ "lines": v })).into_response()
}

async fn metrics(State(s): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

fn limit(q: &HashMap<String, String>) -> Result<i64, Box<Response>> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("limit must be a number from 1 to {MAX_LIMIT}, got {v:?}"),
            ))),
        },
    }
}

/// `since`: RFC 3339 (`2026-11-24T10:00:00Z`) or Unix seconds.
fn since_micros(v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<i64>() {
        return secs.checked_mul(1_000_000);
    }
    let t = OffsetDateTime::parse(v, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

async fn events(
    State(s): Shared,
    _op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match limit(&q) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let since = match q.get("since").map(|v| (v, since_micros(v))) {
        None => None,
        Some((_, Some(m))) => Some(m),
        Some((v, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("since must be RFC 3339 (2026-11-24T10:00:00Z) or Unix seconds, got {v:?}"),
            )
        }
    };
    let before_id = match before_id(&q, "an event") {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let query = EventQuery {
        account: q.get("account").cloned(),
        since_micros: since,
        before_id,
        limit,
    };
    match s.db.events(&query).await {
        Ok(events) => Json(json!({ "events": events })).into_response(),
        Err(e) => db_error(&e),
    }
}

async fn sites(
    State(s): Shared,
    _op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match limit(&q) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    match s.db.sites(q.get("after").map(String::as_str), limit).await {
        Ok(list) => {
            let sites: Vec<_> = list
                .into_iter()
                .filter_map(|spec| Site::new(spec).ok())
                .map(|s| s.to_json())
                .collect();
            Json(json!({ "sites": sites })).into_response()
        }
        Err(e) => db_error(&e),
    }
}

async fn site(State(s): Shared, _op: Operator, Path(account): Path<String>) -> Response {
    match s.db.site(&account).await {
        Ok(Some(spec)) => match Site::new(spec) {
            Ok(site) => {
                let state = match s.db.site_state(&account).await {
                    Ok(st) => st,
                    Err(e) => return db_error(&e),
                };
                // Each read is its own snapshot. Supervision first: a commit that restores a
                // site also marks its supervision alarm restored, so alarms read after a
                // supervision row that shows the restore show it too (read the other way
                // round, a commit between the two showed "ok" beside an alarm not restored).
                let supervision = s.db.supervision(&account).await;
                let (supervision, open, codes) = match (
                    supervision,
                    s.db.alarms(AlarmFilter::Open, Some(&account), MAX_LIMIT)
                        .await,
                    s.db.site_codes(&account).await,
                ) {
                    (Ok(sup), Ok(a), Ok(codes)) => (sup, a, codes),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return db_error(&e),
                };
                let mut v = site.to_json();
                v["partitions"] = partitions_json(&state);
                v["zones"] = json!(state.zones);
                v["not_ready_episodes"] = json!(state.not_ready);
                v["open_alarms"] = json!(open);
                v["last_seen"] = json!(supervision.0);
                v["supervision"] = json!(supervision.1);
                v["codes"] = crate::store::SiteCodes::status(codes.as_ref(), unix_micros());
                Json(v).into_response()
            }
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stored site: {e:#}"),
            ),
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no site with account {account}"),
        ),
        Err(e) => db_error(&e),
    }
}

async fn alarms(
    State(s): Shared,
    _op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match limit(&q) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let state = q.get("state").map_or("open", String::as_str);
    let Some(filter) = AlarmFilter::from_name(state) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("state must be open, new, taken or resolved, got {state:?}"),
        );
    };
    match s
        .db
        .alarms(filter, q.get("account").map(String::as_str), limit)
        .await
    {
        Ok(list) => Json(json!({ "alarms": list })).into_response(),
        Err(e) => db_error(&e),
    }
}

fn alarm_id(raw: &str) -> Result<i64, Box<Response>> {
    raw.parse::<i64>().map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("alarm id must be a number, got {raw:?}"),
        ))
    })
}

async fn alarm(State(s): Shared, _op: Operator, Path(id): Path<String>) -> Response {
    let id = match alarm_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match s.db.alarm(id).await {
        Ok(Some((alarm, changes))) => {
            let mut v = json!(alarm);
            v["changes"] = json!(changes);
            Json(v).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no alarm {id}")),
        Err(e) => db_error(&e),
    }
}

/// The JSON object of a request body, or the 400 that says what is wrong with it.
fn body_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, Box<Response>> {
    let bad = |reason: String| Box::new(error(StatusCode::BAD_REQUEST, reason));
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object".into())),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

/// A string field of at most `max` characters; `required` ones must be present and non-empty.
fn text_field(
    m: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, Box<Response>> {
    let bad = |reason: String| Box::new(error(StatusCode::BAD_REQUEST, reason));
    match m.get(name) {
        None | Some(serde_json::Value::Null) if !required => Ok(None),
        None | Some(serde_json::Value::Null) => Err(bad(format!("{name} is required"))),
        Some(serde_json::Value::String(v)) if v.trim().is_empty() && required => {
            Err(bad(format!("{name} must not be empty")))
        }
        Some(serde_json::Value::String(v)) if v.chars().count() > max => {
            Err(bad(format!("{name} is longer than {max} characters")))
        }
        Some(serde_json::Value::String(v)) => Ok(Some(v.trim().to_owned())),
        Some(_) => Err(bad(format!("{name} must be a string"))),
    }
}

fn action_answer(r: anyhow::Result<Result<crate::store::Alarm, ActionError>>, id: i64) -> Response {
    match r {
        Ok(Ok(alarm)) => Json(json!(alarm)).into_response(),
        Ok(Err(ActionError::NotFound)) => error(StatusCode::NOT_FOUND, format!("no alarm {id}")),
        Ok(Err(ActionError::Conflict(reason))) => error(StatusCode::CONFLICT, reason),
        Err(e) => db_error(&e),
    }
}

/// `POST /api/alarms/{id}/take`: the alarm is the operator's (the token says who).
async fn take(State(s): Shared, op: Operator, Path(id): Path<String>) -> Response {
    let id = match alarm_id(&id) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    action_answer(s.db.take_alarm(id, &op.name, unix_micros()).await, id)
}

/// `POST /api/alarms/{id}/resolve` `{"outcome", "note"}`.
async fn resolve(
    State(s): Shared,
    op: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let who = op.name;
    let parsed = alarm_id(&id).and_then(|id| {
        let m = body_object(&body)?;
        let outcome = text_field(&m, "outcome", 32, true)?.unwrap_or_default();
        if !OUTCOMES.contains(&outcome.as_str()) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "outcome must be one of {}, got {outcome:?}",
                    OUTCOMES.join(", ")
                ),
            )));
        }
        let note = text_field(&m, "note", 2000, false)?;
        Ok((id, who, outcome, note))
    });
    let (id, who, outcome, note) = match parsed {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let r =
        s.db.resolve_alarm(id, &who, &outcome, note.as_deref(), unix_micros())
            .await;
    action_answer(r, id)
}

/// `GET /api/stream`: `event: event` for every stored event, `event: alarm` for every alarm
/// change (with the alarm as it is now), `event: lagged` when this client fell behind and
/// missed some (reload the queue then).
async fn live(State(s): Shared, _op: Operator) -> Response {
    let rx = s.stream.subscribe();
    let items = futures_util::stream::unfold(rx, |mut rx| async move {
        let ev = match rx.recv().await {
            Ok(item) => SseEvent::default().event(item.kind).data(item.data),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => SseEvent::default()
                .event("lagged")
                .data(json!({ "missed": n }).to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(ev), rx))
    });
    let items = futures_util::StreamExt::take_until(items, s.shutdown.clone().cancelled_owned());
    Sse::new(items)
        .keep_alive(KeepAlive::default())
        .into_response()
}
