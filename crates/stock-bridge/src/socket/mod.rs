//! The Socket.IO side of the bridge: who may connect, which room they join, and the two
//! control events clients use (`stock:ping`, `stock:catch_up`).

pub mod auth;

use crate::metrics as m;
use crate::relay::Bridge;
use auth::{ClientIdentity, Refusal};
use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use std::sync::Arc;
use stock_protocol::{events, CatchUpRequest};

/// Registers the default namespace `/` on `io`.
pub fn register(io: &SocketIo, bridge: Arc<Bridge>) {
    let checker = bridge.clone();
    let check = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let bridge = checker.clone();
        async move {
            let token = auth.ok().as_ref().and_then(|a| a.get("token")?.as_str().map(str::to_owned));
            match bridge.verifier.verify(token.as_deref()).await {
                Ok(identity) => {
                    s.extensions.insert(identity);
                    Ok(())
                }
                Err(refusal) => {
                    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => refusal.label()).increment(1);
                    tracing::info!(sid = %s.id, "connection refused: {refusal}");
                    Err::<(), Refusal>(refusal)
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

async fn connected(s: SocketRef, bridge: Arc<Bridge>) {
    if let Some(ClientIdentity::User(id)) = s.extensions.get::<ClientIdentity>() {
        s.join(format!("user:{id}"));
        tracing::debug!(sid = %s.id, user = %id, "client connected");
    } else {
        tracing::debug!(sid = %s.id, "client connected");
    }
    s.on(events::PING, async |ack: AckSender| {
        ack.send("pong").ok();
    });
    let catch_up = bridge.clone();
    s.on(events::CATCH_UP, move |TryData(req): TryData<CatchUpRequest>, ack: AckSender| {
        let bridge = catch_up.clone();
        async move {
            let req = req.unwrap_or_default();
            let answer = bridge.catch_up(&req).await;
            ack.send(&answer).ok();
        }
    });
    s.on_disconnect(move |s: SocketRef| {
        bridge.forget_socket(s.id);
        async move { tracing::debug!(sid = %s.id, "client disconnected") }
    });
}
