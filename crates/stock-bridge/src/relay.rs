//! The bridge's shared state and the one path every broadcast takes to the sockets.

use crate::config::BridgeConfig;
use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use crate::ratelimit::RateLimiter;
use serde_json::value::RawValue;
use socketioxide::socket::Sid;
use socketioxide::{extract::SocketRef, SendError, SocketError, SocketIo};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use stock_protocol::{BroadcastRequest, CatchUp, CatchUpRequest, DeliveryMeta};
use tokio::sync::Mutex;

/// Shared by the HTTP handlers and the Socket.IO handlers.
pub struct Bridge {
    pub config: Arc<BridgeConfig>,
    /// Checks client tokens (Socket.IO handshakes, `GET /snapshot`).
    pub verifier: crate::socket::auth::Verifier,
    pub io: SocketIo,
    pub rate: RateLimiter,
    /// Also serialises relays, so sequence order is emit order.
    cache: Mutex<LastValueCache>,
    /// Sockets found too slow: nothing more is queued to them, and they are disconnected
    /// as soon as their queue has room for the DISCONNECT (or by the Engine.IO heartbeat
    /// if they stopped reading altogether).
    doomed: std::sync::Mutex<HashSet<Sid>>,
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
        Arc::new(Bridge {
            verifier: crate::socket::auth::Verifier::new(config.client_auth.clone()),
            rate: RateLimiter::new(config.rate_limit),
            config,
            io,
            cache: Mutex::new(cache),
            doomed: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Sends `req` to its sockets. A socket whose queue is full is disconnected instead of
    /// being fed forever: it reconnects and catches up from the cache.
    pub async fn relay(&self, req: BroadcastRequest) -> Relayed {
        let started = Instant::now();
        let mut cache = self.cache.lock().await;
        let data: Arc<RawValue> = Arc::from(req.data);
        self.retry_doomed();
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
        let doomed = self.doomed_ids();
        for socket in targets.into_iter().filter(|s| !doomed.contains(&s.id)) {
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
            self.disconnect_slow(socket);
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

    /// Sockets connected and not being disconnected for slowness.
    pub fn connected_clients(&self) -> usize {
        let doomed = self.doomed_ids();
        self.io.sockets().iter().filter(|s| !doomed.contains(&s.id)).count()
    }

    /// Called when a socket has gone, whatever the reason.
    pub fn forget_socket(&self, sid: Sid) {
        self.lock_doomed().remove(&sid);
    }

    fn lock_doomed(&self) -> std::sync::MutexGuard<'_, HashSet<Sid>> {
        self.doomed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn doomed_ids(&self) -> HashSet<Sid> {
        self.lock_doomed().clone()
    }

    fn disconnect_slow(&self, socket: SocketRef) {
        let sid: Sid = socket.id;
        tracing::warn!(%sid, "client cannot keep up: its queue is full; disconnecting it (it will catch up on reconnect)");
        metrics::counter!(m::SLOW_CLIENTS_DISCONNECTED).increment(1);
        if let Err(SocketError::InternalChannelFull) = socket.disconnect() {
            self.lock_doomed().insert(sid);
        }
    }

    fn retry_doomed(&self) {
        let mut doomed = self.lock_doomed();
        doomed.retain(|sid| match self.io.get_socket(*sid) {
            None => false,
            Some(socket) => matches!(socket.disconnect(), Err(SocketError::InternalChannelFull)),
        });
    }
}
