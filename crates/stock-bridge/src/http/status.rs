//! `GET /healthz`, `GET /readyz`, `GET /metrics` and `GET /snapshot`: what operators and
//! support staff look at.

use super::broadcast::presented_key;
use super::error::ApiError;
use crate::metrics as m;
use crate::relay::Bridge;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use stock_protocol::CatchUpRequest;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(bridge): State<Arc<Bridge>>) -> impl IntoResponse {
    Json(json!({"status": "ready", "clients": bridge.connected_clients()}))
}

pub async fn metrics(State(bridge): State<Arc<Bridge>>) -> impl IntoResponse {
    metrics::gauge!(m::CONNECTED_CLIENTS).set(bridge.connected_clients() as f64);
    let body = crate::metrics::install().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// The current last-value set, for support staff and clients starting cold. Needs the API
/// key (when one is configured) or, with client auth on, a client token the bridge accepts.
pub async fn snapshot(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(key) = &bridge.config.api_key {
        let presented = presented_key(&headers);
        let by_key = presented.is_some_and(|k| key.matches(k));
        let by_token = match presented.and_then(|t| std::str::from_utf8(t).ok()) {
            Some(token) if !by_key && bridge.verifier.identifies_users() => bridge.verifier.verify(Some(token)).await.is_ok(),
            _ => false,
        };
        if !by_key && !by_token {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(Json(bridge.catch_up(&CatchUpRequest::default()).await))
}
