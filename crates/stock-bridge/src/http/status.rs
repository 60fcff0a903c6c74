//! `GET /healthz`, `GET /readyz`, `GET /metrics` and `GET /snapshot`: what operators and
//! support staff look at.

use super::access::{BackOffice, presented_key};
use super::error::ApiError;
use crate::metrics as m;
use crate::state::Bridge;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;
use stock_protocol::CatchUpRequest;

/// Alive; whether TLS is on and when the served certificate expires.
pub async fn healthz(State(bridge): State<Arc<Bridge>>) -> impl IntoResponse {
    let tls = match &bridge.config.tls {
        None => json!({"enabled": false}),
        Some(cert) => {
            let served = cert.current();
            let now = chrono::Utc::now();
            let days_left = (served.not_after - now).num_days();
            json!({"enabled": true, "not_after": served.not_after.to_rfc3339(), "days_left": days_left,
                "serial": served.serial, "valid": served.is_valid_at(now), "reload_failure": cert.reload_failure()})
        }
    };
    Json(json!({"status": "ok", "tls": tls}))
}

/// Ready unless (in cluster mode) Redis is unreachable.
pub async fn readyz(State(bridge): State<Arc<Bridge>>) -> impl IntoResponse {
    let clients = bridge.connected_clients();
    if bridge.is_ready() {
        (StatusCode::OK, Json(json!({"status": "ready", "clients": clients})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": "Redis is unreachable", "clients": clients})),
        )
    }
}

pub async fn metrics(State(bridge): State<Arc<Bridge>>) -> impl IntoResponse {
    metrics::gauge!(m::CONNECTED_CLIENTS).set(bridge.connected_clients() as f64);
    metrics::counter!(m::SOCKET_WRITES).absolute(crate::accounting::writes_total());
    let admin = bridge.config.admin.as_ref().and_then(|a| a.tls.as_ref());
    for (listener, cert) in [("public", bridge.config.tls.as_ref()), ("admin", admin)] {
        let Some(cert) = cert else { continue };
        let served = cert.current();
        metrics::gauge!(m::TLS_CERT_NOT_AFTER, "listener" => listener).set(served.not_after.timestamp() as f64);
        let valid = served.is_valid_at(chrono::Utc::now());
        metrics::gauge!(m::TLS_CERT_VALID, "listener" => listener).set(f64::from(u8::from(valid)));
        let failed = cert.reload_failure().is_some();
        metrics::gauge!(m::TLS_RELOAD_FAILED, "listener" => listener).set(f64::from(u8::from(failed)));
    }
    let body = crate::metrics::install().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// The current last-value set, for support staff and clients starting cold. Needs the API
/// key (when one is configured) or, with client auth on, a client token the bridge accepts.
pub async fn snapshot(
    State(bridge): State<Arc<Bridge>>,
    caller: Result<BackOffice, ApiError>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if caller.is_err() {
        let token = presented_key(&headers).and_then(|t| std::str::from_utf8(t).ok());
        let by_token = match token {
            Some(token) if bridge.verifier.identifies_users() => match bridge.verifier.verify(Some(token)).await {
                Ok(_) => true,
                // Not the client's fault: say so, so it tries again rather than signing out.
                Err(crate::auth::Refusal::Unavailable(why)) => return Err(ApiError::Unavailable(why.into())),
                Err(_) => false,
            },
            _ => false,
        };
        if !by_token {
            return Err(ApiError::Unauthorized);
        }
    }
    // The whole set in one answer: this is for people and cold starts, not a live socket.
    match bridge.catch_up(&CatchUpRequest::default(), usize::MAX).await {
        Some(answer) => Ok(Json(answer)),
        None => Err(ApiError::Unavailable("the last values cannot be read (Redis is unreachable)".into())),
    }
}
