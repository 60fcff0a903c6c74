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

/// The current last-value set. Needs the API key when one is configured.
pub async fn snapshot(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(key) = &bridge.config.api_key {
        if !presented_key(&headers).is_some_and(|k| key.matches(k)) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(Json(bridge.catch_up(&CatchUpRequest::default()).await))
}
