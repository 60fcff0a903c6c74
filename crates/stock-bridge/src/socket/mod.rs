//! The Socket.IO side of the bridge: who may connect, which room they join, and the two
//! control events clients use (`stock:ping`, `stock:catch_up`).

pub mod auth;

use crate::metrics as m;
use crate::relay::Bridge;
use auth::{ClientIdentity, Refusal};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::DefinedAdapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use std::sync::Arc;
use stock_protocol::{events, CatchUpRequest};

/// Registers the default namespace `/` on `io`. In cluster mode the result must be
/// awaited (it subscribes to Redis).
pub fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, bridge: Arc<Bridge<A>>) -> A::InitRes {
    let checker = bridge.clone();
    let check = move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
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
    let on_connect = move |s: SocketRef<A>| {
        let bridge = bridge.clone();
        async move { connected(s, bridge).await }
    };
    io.ns("/", on_connect.with(check))
}

async fn connected<A: Adapter>(s: SocketRef<A>, bridge: Arc<Bridge<A>>) {
    if let Some(ClientIdentity::User(id)) = s.extensions.get::<ClientIdentity>() {
        s.join(format!("user:{id}"));
        tracing::debug!(sid = %s.id, user = %id, "client connected");
    } else {
        tracing::debug!(sid = %s.id, "client connected");
    }
    s.on(events::PING, async |ack: AckSender<A>| {
        ack.send("pong").ok();
    });
    let catch_up = bridge.clone();
    s.on(events::CATCH_UP, move |TryData(req): TryData<CatchUpRequest>, ack: AckSender<A>| {
        let bridge = catch_up.clone();
        async move {
            let req = req.unwrap_or_default();
            // No answer when the store cannot be read: the client reports the gap.
            if let Some(answer) = bridge.catch_up(&req).await {
                ack.send(&answer).ok();
            }
        }
    });
    s.on_disconnect(move |s: SocketRef<A>| {
        bridge.forget_socket(s.id);
        async move { tracing::debug!(sid = %s.id, "client disconnected") }
    });
}
