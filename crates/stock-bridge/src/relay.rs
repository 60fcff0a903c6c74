//! The bridge's shared state and the one path every broadcast takes to the sockets.

use crate::config::BridgeConfig;
use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use crate::ratelimit::RateLimiter;
use serde_json::value::RawValue;
use socketioxide::socket::Sid;
use socketioxide::{extract::SocketRef, SendError, SocketError, SocketIo};
use std::sync::Arc;
use std::time::Instant;
use stock_protocol::{BroadcastRequest, CatchUp, CatchUpRequest, DeliveryMeta};
use tokio::sync::Mutex;

/// Shared by the HTTP handlers and the Socket.IO handlers.
pub struct Bridge {
    pub config: Arc<BridgeConfig>,
    pub io: SocketIo,
    pub rate: RateLimiter,
    /// Also serialises relays, so sequence order is emit order.
    cache: Mutex<LastValueCache>,
}

/// What one relay did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relayed {
    /// Sockets the event was queued to.
    pub delivered: usize,
    /// Sockets disconnected because their queue was full (they catch up on reconnect).
    pub dropped_slow: usize,
    /// Position given to an `add_stock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl Bridge {
    pub fn new(config: Arc<BridgeConfig>, io: SocketIo) -> Arc<Self> {
        let cache = LastValueCache::new(LastValueCache::new_epoch(), config.cache_products, config.cache_max_age);
        Arc::new(Bridge { rate: RateLimiter::new(config.rate_limit), config, io, cache: Mutex::new(cache) })
    }

    /// Sends `req` to its sockets. A socket whose queue is full is disconnected instead of
    /// being fed forever: it reconnects and catches up from the cache.
    pub async fn relay(&self, req: BroadcastRequest) -> Relayed {
        let started = Instant::now();
        let mut cache = self.cache.lock().await;
        let data: Arc<RawValue> = Arc::from(req.data);
        let targets: Vec<SocketRef> = if req.to.is_empty() {
            self.io.sockets()
        } else {
            self.io.to(req.to.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>()).sockets()
        };
        let mut meta: Option<DeliveryMeta> = None;
        if let (Some(snapshot), true) = (&req.snapshot, req.to.is_empty()) {
            meta = Some(cache.record(snapshot.product_id, data.clone(), started));
            metrics::gauge!(m::CACHED_PRODUCTS).set(cache.len() as f64);
        }
        let mut delivered = 0;
        let mut slow = Vec::new();
        for socket in targets {
            let sent = match &meta {
                Some(meta) => socket.emit(req.event.as_str(), &(&*data, meta)),
                None => socket.emit(req.event.as_str(), &*data),
            };
            match sent {
                Ok(()) => delivered += 1,
                Err(SendError::Socket(SocketError::InternalChannelFull)) => slow.push(socket),
                Err(e) => tracing::debug!(sid = %socket.id, error = %e, "socket gone during relay"),
            }
        }
        drop(cache);
        let dropped_slow = slow.len();
        for socket in slow {
            disconnect_slow(socket);
        }
        metrics::counter!(m::BROADCASTS_ACCEPTED, "event" => req.event.clone()).increment(1);
        metrics::counter!(m::DELIVERIES).increment(delivered as u64);
        metrics::histogram!(m::BROADCAST_LATENCY).record(started.elapsed().as_secs_f64());
        Relayed { delivered, dropped_slow, seq: meta.map(|m| m.seq) }
    }

    /// Everything a client at `req` has missed.
    pub async fn catch_up(&self, req: &CatchUpRequest) -> CatchUp {
        self.cache.lock().await.since(req, Instant::now())
    }

    pub fn connected_clients(&self) -> usize {
        self.io.sockets().len()
    }
}

fn disconnect_slow(socket: SocketRef) {
    let sid: Sid = socket.id;
    tracing::warn!(%sid, "client cannot keep up: its queue is full; disconnecting it (it will catch up on reconnect)");
    metrics::counter!(m::SLOW_CLIENTS_DISCONNECTED).increment(1);
    if let Err(e) = socket.disconnect() {
        tracing::debug!(%sid, error = %e, "slow client was already gone");
    }
}
