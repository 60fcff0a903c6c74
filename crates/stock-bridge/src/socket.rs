//! The Socket.IO side of the bridge: who may connect, which room they join, the control
//! events clients use (`stock:ping`, `stock:catch_up`), and what tills tell the fleet
//! (who they are in the handshake, `stock:health`, `stock:diagnostics_answer`).
//!
//! Client-sent events are rate-limited per socket, and a socket has at most one catch-up
//! in flight: a second request while one is computed, or while its answer has not left,
//! is answered `{"error": {"code": "catch_up_pending", ...}}`. Answers are paged
//! (`more: true`, resume after `seq`) so none exceeds `catch_up_max_bytes`.

use crate::accounting::{self, Account, Refused, Tap};
use crate::auth::{ClientIdentity, ConnectRefusal, Refusal};
use crate::fleet;
use crate::metrics as m;
use crate::state::Bridge;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide_core::parser::ParserError;
use std::sync::Arc;
use stock_protocol::{
    CatchUpRequest, ControlRefusal, ControlRefusalCode, DiagnosticsAnswer, EndReason, TillIdentity, TillReport, events,
};

/// Source addresses the handshake limiter remembers before it forgets idle ones.
const HANDSHAKE_KEYS_MAX: usize = 10_000;

/// Registers the default namespace `/` on `io`.
pub fn register(io: &SocketIo, bridge: Arc<Bridge>) {
    let checker = bridge.clone();
    let check = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let bridge = checker.clone();
        async move {
            let auth = auth.ok();
            // Who the till says it is; a claim that breaks a rule is not believed.
            let till = TillIdentity::from_auth(auth.as_ref()).unwrap_or_else(|e| {
                tracing::info!(sid = %s.id, "a client's till identity is not valid ({e}); it counts as unidentified");
                None
            });
            let parts = s.req_parts();
            let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| {
                // An unreadable forwarded entry is limited with its proxy's own address.
                crate::source_addr::source_ip(c.0.ip(), &parts.headers, &bridge.config.trusted_proxies)
                    .unwrap_or(c.0.ip())
            });
            if let Some(peer) = peer {
                if bridge.handshakes.check_key(&peer).is_err() {
                    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => "rate_limited").increment(1);
                    close_refused(&s, &bridge);
                    return Err(ConnectRefusal(Refusal::Unavailable(
                        "too many connection attempts from this address; try again shortly",
                    )));
                }
                if bridge.handshakes.len() > HANDSHAKE_KEYS_MAX {
                    bridge.handshakes.retain_recent();
                }
            }
            let token = auth.as_ref().and_then(|a| a.get("token")?.as_str().map(str::to_owned));
            match bridge.verifier.verify_until(token.as_deref()).await {
                Ok((identity, valid_until)) => {
                    s.extensions.insert(identity);
                    s.extensions.insert(Arc::new(TillSession::new(till, s.id, peer)));
                    if let Some(until) = valid_until {
                        s.extensions.insert(close_at_expiry(&s, &bridge, until));
                    }
                    // Before the CONNECT is answered, so no broadcast finds it without one.
                    let account = account_for(&s, &bridge);
                    s.extensions.insert(account.clone());
                    serve_control_events(&s, bridge.clone(), account);
                    Ok(())
                }
                Err(refusal) => {
                    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => refusal.label()).increment(1);
                    tracing::info!(sid = %s.id, "connection refused: {refusal}");
                    // A till that said who it is is shown refused; nobody else is kept.
                    if let Some(till) = &till {
                        bridge.fleet.refused(&till.till_id, Some(till), refusal.label(), peer);
                    }
                    close_refused(&s, &bridge);
                    Err::<(), ConnectRefusal>(ConnectRefusal(refusal))
                }
            }
        }
    };
    let on_connect = move |s: SocketRef| {
        let bridge = bridge.clone();
        async move { connected(s, bridge).await }
    };
    io.ns("/", on_connect.with(check));
}

/// The timer that closes a socket when its token expires; dropped with the socket's
/// extensions, it is cancelled.
#[derive(Clone)]
struct ExpiryTimer(#[allow(dead_code)] Arc<ExpiryTask>);

struct ExpiryTask(tokio::task::AbortHandle);

impl Drop for ExpiryTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A socket whose token expires is closed then (`exp` was checked only at the handshake,
/// so a till kept its user's private events past it: issue 22, F16). Its reconnect is
/// refused `token_expired`, and the app asks to sign in again. The timer holds no socket,
/// only its id, and is cancelled when the socket goes.
fn close_at_expiry(s: &SocketRef, bridge: &Arc<Bridge>, until: std::time::SystemTime) -> ExpiryTimer {
    let (sid, bridge) = (s.id, Arc::downgrade(bridge));
    let left = until.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    let task = tokio::spawn(async move {
        tokio::time::sleep(left).await;
        let Some(bridge) = bridge.upgrade() else { return };
        if let Some(socket) = bridge.io.get_socket(sid) {
            tracing::info!(%sid, "token expired: closing its socket");
            metrics::counter!(m::TOKENS_EXPIRED).increment(1);
            if let Some(account) = accounting::account(&socket) {
                account.mark_token_expired();
            }
            let _ = socket.disconnect();
        }
    });
    ExpiryTimer(Arc::new(ExpiryTask(task.abort_handle())))
}

/// Time for a refusal (CONNECT_ERROR) to leave before its transport is closed.
pub const REFUSED_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Closes a refused WebSocket's connection once the refusal has had time to leave (it would
/// otherwise stay open until the connect timeout, holding its buffers). A refused
/// long-polling session ends at the connect timeout.
fn close_refused(s: &SocketRef, bridge: &Bridge) {
    if let Some(tap) = websocket_tap(s, bridge) {
        tokio::spawn(async move {
            tokio::time::sleep(REFUSED_GRACE).await;
            tap.close();
        });
    }
}

/// The connection carrying `s`'s WebSocket: the one that opened the session when it
/// started on WebSocket, else the one it upgraded on before its CONNECT (None for a
/// long-polling socket, or one that upgrades later: that is attached at its upgrade).
fn websocket_tap(s: &SocketRef, bridge: &Bridge) -> Option<Tap> {
    if s.transport_type() != socketioxide::TransportType::Websocket {
        return None;
    }
    if let Some(tap) = bridge.upgrades.take(&s.id.to_string()) {
        return Some(tap);
    }
    let parts = s.req_parts();
    if accounting::asks_for_websocket(parts.uri.query()) { parts.extensions.get::<Tap>().cloned() } else { None }
}

/// A new socket's account, counting bytes on its WebSocket's connection, or what its
/// long-polling session's answers carry.
fn account_for(s: &SocketRef, bridge: &Bridge) -> Arc<Account> {
    let account = Arc::new(Account::new(bridge.config.client_event_rate));
    if let Some(tap) = websocket_tap(s, bridge) {
        account.attach(&tap);
    } else if s.transport_type() == socketioxide::TransportType::Polling {
        // Its session's own tap, fed by the answers to its GETs; held by the account.
        let tap = Tap::default();
        account.attach_polling(&tap);
        bridge.polls.remember(&s.id.to_string(), &tap);
    }
    account
}

async fn connected(s: SocketRef, bridge: Arc<Bridge>) {
    let account = match accounting::account(&s) {
        Some(account) => account,
        None => {
            let account = account_for(&s, &bridge);
            s.extensions.insert(account.clone());
            serve_control_events(&s, bridge.clone(), account.clone());
            account
        }
    };
    // Broadcasts reach it from now on (before its catch-up handler exists, so whatever it
    // misses before this was recorded before any catch-up it asks for), until it goes.
    bridge.audience.join(s.clone(), account.clone());
    let till = s.extensions.get::<Arc<TillSession>>().unwrap_or_else(|| Arc::new(TillSession::new(None, s.id, None)));
    let user = match s.extensions.get::<ClientIdentity>() {
        Some(ClientIdentity::User(id)) => Some(id),
        _ => None,
    };
    bridge.fleet.connected(&till.key, till.identity.as_ref(), user.clone(), till.source, &s, account.clone());
    let leaving = Arc::downgrade(&bridge);
    let (key, left) = (till.key.clone(), account.clone());
    s.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
        if let Some(bridge) = leaving.upgrade() {
            bridge.audience.leave(s.id);
            let reason = fleet::end_reason(reason, Some(&left));
            metrics::counter!(m::DISCONNECTS, "reason" => reason.label()).increment(1);
            bridge.fleet.disconnected(&key, s.id, reason);
        }
        tracing::debug!(sid = %s.id, %reason, "client disconnected");
        async {}
    });
    if !s.connected() {
        // Gone before its disconnect handler was in place.
        bridge.audience.leave(s.id);
        bridge.fleet.disconnected(&till.key, s.id, EndReason::TransportClosed);
    }
    if let Some(id) = user {
        s.join(format!("user:{id}"));
        tracing::debug!(sid = %s.id, user = %id, till = %till.key, "client connected");
    } else {
        tracing::debug!(sid = %s.id, till = %till.key, "client connected");
    }
    // From now on broadcasts reach it: a catch-up may be answered (see `serve_control_events`).
    account.mark_joined();
}

/// How long a catch-up waits for its socket to join the audience (the connect handler,
/// spawned by socketioxide after the CONNECT has gone out, normally runs within
/// microseconds; a socket that is gone by then never joins).
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The control events a client sends (`stock:ping`, `stock:catch_up`), registered in the
/// connect middleware: socketioxide sends the CONNECT before it spawns the connect handler,
/// so a client that asks for its catch-up at once (the client core does) raced a handler
/// registered there, and the request was dropped without an answer (issue 22: a fresh
/// start showed nothing and no gap, one run in a few under load). A catch-up is answered
/// only once the socket has joined the audience, so whatever it misses after the answer
/// is computed reaches it live.
///
/// One handler for all of them (socketioxide's fallback), dispatching on the event's name:
/// a handler per event cost each socket a table of eight slots and a box per handler,
/// about 450 bytes of every idle connection (heaptrack, 2,000 sockets a node). Each
/// event's first argument arrives as the text it came in and is read into its type here.
fn serve_control_events(s: &SocketRef, bridge: Arc<Bridge>, account: Arc<Account>) {
    s.on_fallback(
        move |s: SocketRef, Event(event): Event, TryData(args): TryData<(Box<RawValue>,)>, ack: AckSender| {
            let (bridge, account) = (bridge.clone(), account.clone());
            let arg = args.map(|(raw,)| raw);
            async move {
                match event.as_str() {
                    events::PING => ping(&account, ack),
                    events::HEALTH => health(&bridge, &s, arg, ack).await,
                    events::DIAGNOSTICS_ANSWER => diagnostics_answer(&bridge, &s, arg),
                    events::CATCH_UP => catch_up(&bridge, &account, arg, ack).await,
                    // Anything else is not ours: ignored, as socketioxide ignores an event
                    // nobody listens to.
                    _ => {}
                }
            }
        },
    );
}

/// `stock:ping`: "pong", then the bridge's clock (the till measures its offset from it).
fn ping(account: &Account, ack: AckSender) {
    match account.admit_event() {
        Ok(()) => ack.send(&("pong", json!({"now": chrono::Utc::now().timestamp_millis()}))).ok(),
        Err(why) => ack.send(&json!(refusal(why))).ok(),
    };
}

/// `stock:health`: the report is measured as sent and read once, into its type.
async fn health(bridge: &Bridge, s: &SocketRef, report: Result<Box<RawValue>, ParserError>, ack: AckSender) {
    // A report sent right after the CONNECT waits (bounded) until the fleet has the till as
    // connected, like a catch-up waits to join the audience.
    if let Some(account) = accounting::account(s)
        && tokio::time::timeout(JOIN_WAIT, account.joined()).await.is_err()
    {
        return;
    }
    match health_report(bridge, s, report) {
        Ok(()) => ack.send(&json!({"ok": true})).ok(),
        Err(refused) => ack.send(&refused).ok(),
    };
}

/// `stock:diagnostics_answer`: what support asked this till for.
fn diagnostics_answer(bridge: &Bridge, s: &SocketRef, answer: Result<Box<RawValue>, ParserError>) {
    let answer = answer.ok().and_then(|raw| serde_json::from_str::<DiagnosticsAnswer>(raw.get()).ok());
    if let (Some(answer), Some(till)) = (answer, s.extensions.get::<Arc<TillSession>>())
        && answer.text.len() <= stock_protocol::till::DIAGNOSTICS_MAX_BYTES
    {
        bridge.fleet.answered(&till.key, s.id, answer);
    }
}

/// `stock:catch_up`: what the till missed after its position, paged.
async fn catch_up(bridge: &Bridge, account: &Arc<Account>, req: Result<Box<RawValue>, ParserError>, ack: AckSender) {
    if tokio::time::timeout(JOIN_WAIT, account.joined()).await.is_err() {
        metrics::counter!(m::CATCH_UPS, "outcome" => "not_joined").increment(1);
        tracing::info!("a catch-up was not answered: its socket did not join the audience within {JOIN_WAIT:?}");
        return;
    }
    let turn = match account.admit_event().and_then(|()| account.begin_catch_up()) {
        Ok(turn) => turn,
        Err(why) => {
            metrics::counter!(m::CLIENT_EVENTS_REFUSED, "reason" => refused_code(why)).increment(1);
            metrics::counter!(m::CATCH_UPS, "outcome" => "refused").increment(1);
            ack.send(&refusal(why)).ok();
            return;
        }
    };
    // No request, or one that is not a position, asks from the start.
    let req: CatchUpRequest = req.ok().and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or_default();
    // When the store cannot be read just now, the till is told so by name and asks again
    // after a pause (the client core does), rather than waiting for an answer that never
    // comes and reporting a gap.
    let Some(answer) = bridge.catch_up(&req, bridge.config.catch_up_max_bytes).await else {
        metrics::counter!(m::CATCH_UPS, "outcome" => "store_unreadable").increment(1);
        let refused = ControlRefusal::new(
            ControlRefusalCode::StoreUnavailable,
            "the missed updates cannot be read just now: ask again shortly",
        );
        ack.send(&refused).ok();
        return;
    };
    let Ok(raw) = serde_json::to_string(&answer).map(RawValue::from_string) else { return };
    let Ok(raw) = raw else { return };
    turn.answered(accounting::ack_frame_len(raw.get().len()));
    let sent = ack.send(&raw).is_ok();
    metrics::counter!(m::CATCH_UPS, "outcome" => if sent { "answered" } else { "not_sent" }).increment(1);
}

/// What the bridge keeps of a till for its socket's life (in its extensions, behind an
/// `Arc`: read at every report): who it is, its source address and how often it may report.
struct TillSession {
    key: String,
    identity: Option<TillIdentity>,
    source: Option<std::net::IpAddr>,
    reports: governor::DefaultDirectRateLimiter,
}

impl TillSession {
    fn new(identity: Option<TillIdentity>, sid: socketioxide::socket::Sid, source: Option<std::net::IpAddr>) -> Self {
        // One report per REPORT_MIN_INTERVAL, a few at once (a change right after the periodic one).
        let every = stock_protocol::till::REPORT_MIN_INTERVAL;
        let quota = governor::Quota::with_period(every).expect("not zero").allow_burst(REPORT_BURST);
        TillSession {
            key: fleet::key_of(identity.as_ref(), sid),
            identity,
            source,
            reports: governor::RateLimiter::direct(quota),
        }
    }
}

/// Reports a till may send at once before the rate applies.
const REPORT_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(3).expect("not zero");

/// A `stock:health` report: checked (size, types, rate, identity) and handed to the fleet;
/// a refused one changes nothing and is counted. The connection stays either way.
fn health_report(
    bridge: &Bridge,
    s: &SocketRef,
    report: Result<Box<RawValue>, impl std::fmt::Display>,
) -> Result<(), ControlRefusal> {
    let outcome = (|| {
        let till = s.extensions.get::<Arc<TillSession>>().filter(|t| t.identity.is_some()).ok_or((
            "not_identified",
            ControlRefusal::new(
                ControlRefusalCode::NotIdentified,
                "this connection did not say which till it is (auth.till in the handshake)",
            ),
        ))?;
        let too_frequent = || {
            (
                "too_frequent",
                ControlRefusal::new(
                    ControlRefusalCode::RateLimited,
                    "reports come too often from this till: slow down",
                ),
            )
        };
        // Any client event counts against the connection's rate first; then the report is
        // read; a valid one counts against the reports' own, slower rate.
        if accounting::account(s).is_some_and(|a| a.admit_event().is_err()) {
            return Err(too_frequent());
        }
        let invalid = |why: String| ("invalid", ControlRefusal::new(ControlRefusalCode::InvalidReport, why));
        // As sent (its size is the text's, fields this bridge does not know included), read
        // once, into its type.
        let raw = report.map_err(|e| invalid(format!("the report is not valid: {e}")))?;
        let report = TillReport::parse(raw.get().as_bytes()).map_err(|e| invalid(e.to_string()))?;
        if till.reports.check().is_err() {
            return Err(too_frequent());
        }
        if bridge.fleet.reported(&till.key, s.id, report) {
            Ok(())
        } else {
            Err((
                "not_identified",
                ControlRefusal::new(
                    ControlRefusalCode::NotIdentified,
                    "this connection is not this till's current one",
                ),
            ))
        }
    })();
    let label = match &outcome {
        Ok(()) => "accepted",
        Err((label, _)) => label,
    };
    m::fleet_report(label);
    outcome.map_err(|(_, refusal)| refusal)
}

fn refused_code(why: Refused) -> &'static str {
    match why {
        Refused::RateLimited => "rate_limited",
        Refused::CatchUpPending => "catch_up_pending",
    }
}

/// The answer to a client event that was not served ([`ControlRefusal`]: the client reads
/// it by its code).
fn refusal(why: Refused) -> ControlRefusal {
    match why {
        Refused::RateLimited => {
            ControlRefusal::new(ControlRefusalCode::RateLimited, "too many requests from this connection: slow down")
        }
        Refused::CatchUpPending => ControlRefusal::new(
            ControlRefusalCode::CatchUpPending,
            "a catch-up is already in flight for this connection: wait for its answer",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_code_they_are_counted_under() {
        for why in [Refused::RateLimited, Refused::CatchUpPending] {
            let code = serde_json::to_value(refusal(why).error.code).unwrap();
            assert_eq!(code, refused_code(why), "metric label and wire code agree");
        }
    }
}
