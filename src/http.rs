//! The HTTP side: `/health`, `/metrics` (Prometheus text) and the JSON read API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::site::Site;
use crate::site_state::ZoneState;
use crate::store::{Db, EventQuery, SiteStateRows, ZoneStateRow};

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub metrics: PrometheusHandle,
    /// Serial lines.
    pub lines: crate::serial::Lines,
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/events", get(events))
        .route("/api/sites", get(sites))
        .route("/api/sites/{account}", get(site))
        .route("/api/lines", get(lines))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(Arc::new(state))
}

type Shared = State<Arc<AppState>>;

/// A JSON error body with a reason.
fn error(status: StatusCode, reason: String) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
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
async fn lines(State(s): Shared) -> Response {
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

async fn events(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
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
    let before_id = match q.get("before").map(|v| v.parse::<i64>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "before must be an event id".into()),
    };
    let query = EventQuery {
        account: q.get("account").cloned(),
        since_micros: since,
        before_id,
        limit,
    };
    match s.db.events(&query).await {
        Ok(events) => Json(json!({ "events": events })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e:#}")),
    }
}

async fn sites(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
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
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e:#}")),
    }
}

async fn site(State(s): Shared, Path(account): Path<String>) -> Response {
    match s.db.site(&account).await {
        Ok(Some(spec)) => match Site::new(spec) {
            Ok(site) => {
                let state = match s.db.site_state(&account).await {
                    Ok(st) => st,
                    Err(e) => {
                        return error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e:#}"))
                    }
                };
                let mut v = site.to_json();
                v["partitions"] = partitions_json(&state);
                v["zones"] = json!(state.zones);
                v["not_ready_episodes"] = json!(state.not_ready);
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
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e:#}")),
    }
}
