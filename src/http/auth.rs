//! Who is asking: the `Authorization: Bearer` token of every API request, as an extractor. A
//! handler that takes [`Operator`] is for any operator; one that takes [`Admin`] for admins.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::auth::{token_hash, Operator, Role};

/// An admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Operator);

fn unauthorized(reason: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": reason })),
    )
        .into_response()
}

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "this endpoint needs an operator token: Authorization: Bearer <token> (vakt operator add)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(unauthorized(
                "the Authorization header must be \"Bearer <token>\"",
            ));
        }
        match state.db.operator_by_token(&token_hash(token)).await {
            Ok(Some((name, role))) => Ok(Self {
                name,
                // An unknown stored role gets the least authority.
                role: Role::from_name(&role).unwrap_or(Role::Operator),
            }),
            Ok(None) => Err(unauthorized("unknown or revoked token")),
            Err(e) => Err(super::error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database: {e:#}"),
            )),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let op = Operator::from_request_parts(parts, state).await?;
        if op.role != Role::Admin {
            return Err(super::error(
                StatusCode::FORBIDDEN,
                format!("{} is an operator; this needs the admin role", op.name),
            ));
        }
        Ok(Self(op))
    }
}
