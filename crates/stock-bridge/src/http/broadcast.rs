//! `POST /broadcast`: the back office's way in.
//!
//! Checks run cheapest first: source address, API key, rate, content type, size, body.

use super::error::ApiError;
use crate::config::{AdminConfig, BridgeConfig};
use crate::metrics as m;
use crate::relay::Bridge;
use crate::source_addr::source_ip;
use crate::tls::VerifiedClient;
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde_json::json;
use socketioxide::adapter::Adapter;
use std::net::SocketAddr;
use std::sync::Arc;
use stock_protocol::BroadcastRequest;

pub async fn broadcast<A: Adapter>(State(bridge): State<Arc<Bridge<A>>>, request: Request) -> impl IntoResponse {
    let relayed = match accept(&bridge, request).await {
        Ok(req) => bridge.relay(req).await.map_err(|down| ApiError::Unavailable(down.to_string())),
        Err(e) => Err(e),
    };
    match relayed {
        Ok(relayed) => {
            let mut body = json!({"message": "Broadcast queued"});
            if let Some(recipients) = relayed.recipients {
                body["recipients"] = recipients.into();
            }
            if let Some(seq) = relayed.seq {
                body["seq"] = seq.into();
            }
            Json(body).into_response()
        }
        Err(e) => {
            metrics::counter!(m::BROADCASTS_REJECTED, "reason" => e.reason()).increment(1);
            tracing::info!(status = e.status().as_u16(), reason = e.reason(), "broadcast refused: {e}");
            e.into_response()
        }
    }
}

/// Source addresses remembered by the broadcast limiter before idle ones are dropped.
const BROADCAST_KEYS_MAX: usize = 10_000;

async fn accept<A: Adapter>(bridge: &Bridge<A>, request: Request) -> Result<BroadcastRequest, ApiError> {
    let config = &bridge.config;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| source_ip(c.0.ip(), request.headers(), &config.trusted_proxies));
    if !config.allow_sources.is_empty()
        && !peer.is_some_and(|ip| config.allow_sources.iter().any(|net| net.contains(&ip)))
    {
        return Err(ApiError::Forbidden);
    }
    if let Some(key) = &config.api_key
        && !certificate_suffices(config, request.extensions())
        && !presented_key(request.headers()).is_some_and(|k| key.matches(k))
    {
        return Err(ApiError::Unauthorized);
    }
    // Per source address (in-process callers without one share a key).
    if bridge.broadcasts.check_key(&peer.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())).is_err() {
        return Err(ApiError::RateLimited(config.rate_limit));
    }
    if bridge.broadcasts.len() > BROADCAST_KEYS_MAX {
        bridge.broadcasts.retain_recent();
    }
    if !is_json(request.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limit = config.body_limit;
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let body: Body = request.into_body();
    let read = tokio::time::timeout(config.body_read_timeout, to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(config.body_read_timeout.as_secs()))?;
    let bytes = read.map_err(|e| {
        if is_over_limit(&e) { ApiError::TooLarge(limit) } else { ApiError::UnreadableBody(e.to_string()) }
    })?;
    Ok(BroadcastRequest::parse(&bytes, &config.events)?)
}

/// True when the request came with a verified client certificate over the back-office
/// listener and `STOCK_BRIDGE_ADMIN_AUTH=mtls` says that is enough without the key.
pub(crate) fn certificate_suffices(config: &BridgeConfig, extensions: &axum::http::Extensions) -> bool {
    config.admin.as_ref().is_some_and(AdminConfig::certificate_suffices) && extensions.get::<VerifiedClient>().is_some()
}

/// True when reading the body stopped at the size limit (not a malformed body).
fn is_over_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    match headers.get("x-api-key") {
        Some(v) => Some(v.as_bytes()),
        None => bearer(headers),
    }
}

/// The credentials of `Authorization: Bearer <credentials>` (scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let auth = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = auth.split_at(auth.iter().position(|b| *b == b' ')?);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(
        |mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        },
    )
}
