//! `POST /broadcast`: the back office's way in, one event or a batch (`{"events": [...]}`).
//!
//! Checks run cheapest first: source address and API key ([`super::access`]), rate,
//! content type, size, body.
//! A batch counts as one request for the rate limit, is checked whole before anything is
//! sent, and is relayed in order.

use super::access::{BackOffice, Source};
use super::error::ApiError;
use crate::metrics as m;
use crate::state::Bridge;
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;
use stock_protocol::{BodyError, BroadcastBody};

pub async fn broadcast(
    State(bridge): State<Arc<Bridge>>,
    source: Result<Source, ApiError>,
    caller: Result<BackOffice, ApiError>,
    request: Request,
) -> impl IntoResponse {
    let accepted = match source.and_then(|source| caller.map(|_| source)) {
        Ok(source) => accept(&bridge, source, request).await,
        Err(e) => Err(e),
    };
    let answer = match accepted {
        Ok(BroadcastBody::One(req)) => bridge.relay(req).await.map(|relayed| {
            let mut body = json!({"message": "Broadcast queued"});
            if let Some(recipients) = relayed.recipients {
                body["recipients"] = recipients.into();
            }
            if let Some(seq) = relayed.seq {
                body["seq"] = seq.into();
            }
            body
        }),
        Ok(BroadcastBody::Batch(reqs)) => bridge.relay_all(reqs).await.map(|relayed| {
            let mut body = json!({"message": "Batch queued", "queued": relayed.len()});
            if relayed.iter().all(|r| r.recipients.is_some()) {
                body["deliveries"] = relayed.iter().filter_map(|r| r.recipients).sum::<usize>().into();
            }
            let first = relayed.iter().find_map(|r| r.seq);
            let last = relayed.iter().rev().find_map(|r| r.seq);
            if let (Some(first), Some(last)) = (first, last) {
                body["first_seq"] = first.into();
                body["last_seq"] = last.into();
            }
            body
        }),
        Err(e) => {
            return refused(e);
        }
    };
    match answer.map_err(|down| ApiError::Unavailable(down.to_string())) {
        Ok(body) => Json(body).into_response(),
        Err(e) => refused(e),
    }
}

fn refused(e: ApiError) -> axum::response::Response {
    metrics::counter!(m::BROADCASTS_REJECTED, "reason" => e.reason()).increment(1);
    tracing::info!(status = e.status().as_u16(), reason = e.reason(), "broadcast refused: {e}");
    e.into_response()
}

/// Source addresses remembered by the broadcast limiter before idle ones are dropped.
const BROADCAST_KEYS_MAX: usize = 10_000;

/// The rest of the checks, once the source and the key have passed.
async fn accept(bridge: &Bridge, Source(peer): Source, request: Request) -> Result<BroadcastBody, ApiError> {
    let config = &bridge.config;
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
    // A batch may be larger than one event; which it is, only the body says.
    let limit = config.body_limit.max(config.batch_body_limit);
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
    let body = BroadcastBody::parse(&bytes, &config.events, config.batch_limits()).map_err(|e| match e {
        BodyError::Invalid(e) => ApiError::Invalid(e),
        BodyError::InvalidItems { total, items } => ApiError::InvalidBatch { total, items },
        BodyError::TooMany { max, got } => ApiError::BatchTooLarge { max, got },
    })?;
    match &body {
        BroadcastBody::One(_) if bytes.len() > config.body_limit => Err(ApiError::TooLarge(config.body_limit)),
        BroadcastBody::Batch(_) if bytes.len() > config.batch_body_limit => {
            Err(ApiError::TooLarge(config.batch_body_limit))
        }
        _ => Ok(body),
    }
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

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(
        |mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        },
    )
}
