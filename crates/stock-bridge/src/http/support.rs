//! The fleet for support staff: `GET /fleet` (the page for a browser, a page of tills as
//! JSON otherwise), `GET /fleet/{till}` (detail and timeline), `DELETE /fleet/{till}`
//! (forget), `POST /fleet/{till}/diagnostics` (ask the till for its Diagnostics text),
//! `GET /fleet-events` (a live stream of changes, server-sent events) and the page's own
//! files under `/fleet-assets/`.
//!
//! Everything but the page and its files needs the support key ([`Support`]), in a header
//! (`Authorization: Bearer` or `X-Support-Key`), never in the URL. The page asks for it
//! once per browser tab and keeps it there.

use super::access::bearer;
use super::error::ApiError;
use crate::fleet::record::{self, FleetQuery, Shown};
use crate::fleet::{AskError, FleetChange};
use crate::state::Bridge;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use stock_protocol::till::is_till_id;
use tokio::sync::{broadcast, mpsc};

/// The page and its files, compiled in (nothing is loaded from outside: it works in a
/// shop with no internet).
const PAGE: &str = include_str!("../../fleet-page/index.html");
const SCRIPT: &str = include_str!("../../fleet-page/fleet.js");
const STYLE: &str = include_str!("../../fleet-page/fleet.css");

/// A caller that presented the support key.
pub struct Support;

impl FromRequestParts<Arc<Bridge>> for Support {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, bridge: &Arc<Bridge>) -> Result<Self, ApiError> {
        let Some(key) = &bridge.config.support_key else { return Err(ApiError::FleetOff) };
        let presented = parts.headers.get("x-support-key").map(|v| v.as_bytes()).or_else(|| bearer(&parts.headers));
        if presented.is_some_and(|p| key.matches(p)) { Ok(Support) } else { Err(ApiError::NotSupport) }
    }
}

/// True when the request is a browser asking for a page.
fn wants_page(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

/// `GET /fleet`: the page, or a page of tills.
pub async fn fleet(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    support: Result<Support, ApiError>,
    Query(query): Query<FleetQuery>,
) -> Response {
    if wants_page(&headers) {
        return page_file(PAGE, "text/html; charset=utf-8");
    }
    if let Err(e) = support {
        return e.into_response();
    }
    if let Some(state) = &query.state
        && Shown::parse(state).is_none()
    {
        return ApiError::BadQuery(format!(
            "state must be one of online, connecting, offline, refused, cut; not {state:?}"
        ))
        .into_response();
    }
    let mut body = bridge.fleet.page(&query);
    body["node"] = bridge.fleet.node().into();
    Json(body).into_response()
}

/// The page's script and style.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "fleet.js" => page_file(SCRIPT, "text/javascript; charset=utf-8"),
        "fleet.css" => page_file(STYLE, "text/css; charset=utf-8"),
        _ => (StatusCode::NOT_FOUND, Json(json!({"message": "no such file"}))).into_response(),
    }
}

fn page_file(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Nothing from elsewhere, no framing, no inline script.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn till_key(key: &str) -> Result<&str, ApiError> {
    if is_till_id(key) { Ok(key) } else { Err(ApiError::BadQuery(format!("{key:?} is not a till id"))) }
}

/// `GET /fleet/{till}`: one till and its timeline.
pub async fn till(
    State(bridge): State<Arc<Bridge>>,
    _: Support,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = till_key(&key)?;
    let record = bridge.fleet.record(key).ok_or_else(|| ApiError::NoSuchTill(key.to_owned()))?;
    let records = [record];
    let page = record::page(records.iter(), &FleetQuery::default(), chrono::Utc::now());
    let timeline = bridge.fleet.timeline(key).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({"till": page.tills.first(), "timeline": timeline})))
}

/// `DELETE /fleet/{till}`: support forgets a till (it comes back if it connects again).
pub async fn forget(
    State(bridge): State<Arc<Bridge>>,
    _: Support,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = till_key(&key)?;
    if bridge.fleet.forget(key) {
        Ok(Json(json!({"message": "Till forgotten", "till": key})))
    } else {
        Err(ApiError::NoSuchTill(key.to_owned()))
    }
}

/// `POST /fleet/{till}/diagnostics`: the till's Diagnostics text, asked through the bridge.
pub async fn diagnostics(
    State(bridge): State<Arc<Bridge>>,
    _: Support,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = till_key(&key)?;
    match bridge.fleet.ask_diagnostics(key).await {
        Ok(text) => Ok(Json(json!({"till": key, "text": text}))),
        Err(e @ AskError::NotOnline) => Err(ApiError::TillNotOnline(e.to_string())),
        Err(e @ AskError::NoAnswer) => Err(ApiError::TillDidNotAnswer(e.to_string())),
        Err(e @ AskError::Busy) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// How often the live stream sends the counts (when something changed).
const COUNTS_EVERY: Duration = Duration::from_secs(1);
/// Events waiting for one viewer at most; a viewer that falls further behind is told to
/// read the page again.
const VIEWER_BACKLOG: usize = 256;

/// `GET /fleet-events`: `till` (a till's view, when it changes), `forget` (its key),
/// `counts` (at most once a second, when they changed), `resync` (read the page again).
pub async fn events(
    State(bridge): State<Arc<Bridge>>,
    _: Support,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Event>(VIEWER_BACKLOG);
    let mut changes = bridge.fleet.subscribe();
    let fleet = bridge.fleet.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COUNTS_EVERY);
        let mut latest = None;
        let mut changed = true;
        loop {
            let event = tokio::select! {
                change = changes.recv() => match change {
                    Ok(FleetChange::Till(record)) => {
                        changed = true;
                        let records = [*record];
                        let mut page = record::page(records.iter(), &FleetQuery::default(), chrono::Utc::now());
                        if let (Some(view), Some(latest)) = (page.tills.first_mut(), latest.as_deref()) {
                            let version = view.record.version();
                            view.old_version = !version.is_empty()
                                && record::compare_versions(version, latest) == std::cmp::Ordering::Less;
                        }
                        Event::default().event("till").json_data(page.tills.first()).ok()
                    }
                    Ok(FleetChange::Forgot(key)) => {
                        changed = true;
                        Event::default().event("forget").json_data(json!({"key": key})).ok()
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => Some(Event::default().event("resync").data("{}")),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if !changed {
                        continue;
                    }
                    changed = false;
                    let (counts, latest_version) = fleet.counts();
                    latest = latest_version.clone();
                    Event::default().event("counts").json_data(json!({"counts": counts, "latest_version": latest_version})).ok()
                }
            };
            let Some(event) = event else { continue };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
