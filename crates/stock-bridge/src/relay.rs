//! The bridge's shared state and the one path every broadcast takes to the sockets.
//!
//! Alone (the default), `relay` checks, numbers and enqueues a broadcast and returns at
//! once (the HTTP answer does not wait for the fan-out); one worker task then queues it to
//! each target socket in turn, in order, so a socket whose queue is full is known and dealt
//! with. In cluster mode (Redis), the adapter fans it out to every node, and the last values
//! live in Redis.

use crate::cluster::{RedisDown, RedisHealth, RedisLastValues};
use crate::config::BridgeConfig;
use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use crate::ratelimit::RateLimiter;
use serde_json::value::RawValue;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::socket::Sid;
use socketioxide::{extract::SocketRef, BroadcastError, SendError, SocketError, SocketIo};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use stock_protocol::{BroadcastRequest, CatchUp, CatchUpRequest, DeliveryMeta};
use tokio::sync::mpsc;

/// Where the last values live.
pub enum LastValues {
    Memory(Mutex<LastValueCache>),
    Redis(RedisLastValues),
}

/// The cluster-mode parts: Redis health and the task that watches it.
pub struct Cluster {
    pub health: Arc<RedisHealth>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Cluster {
    pub fn new(health: Arc<RedisHealth>, watcher: tokio::task::JoinHandle<()>) -> Self {
        Cluster { health, watcher }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Shared by the HTTP handlers and the Socket.IO handlers.
pub struct Bridge<A: Adapter = LocalAdapter> {
    pub config: Arc<BridgeConfig>,
    /// Checks client tokens (Socket.IO handshakes, `GET /snapshot`).
    pub verifier: crate::socket::auth::Verifier,
    pub io: SocketIo<A>,
    pub rate: RateLimiter,
    /// Set in cluster mode.
    pub cluster: Option<Cluster>,
    values: LastValues,
    /// Serialises relays, so sequence order is emit order.
    order: tokio::sync::Mutex<()>,
    /// To the fan-out worker (alone); it ends when the bridge is dropped.
    fanout: Option<mpsc::Sender<Outgoing<A>>>,
    /// Sockets found too slow: nothing more is queued to them, and they are disconnected
    /// as soon as their queue has room for the DISCONNECT (or by the Engine.IO heartbeat
    /// if they stopped reading altogether).
    doomed: Mutex<HashSet<Sid>>,
}

/// What one relay did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relayed {
    /// Local sockets the event is queued for (unknown in cluster mode).
    pub recipients: Option<usize>,
    /// Position given to an `add_stock`.
    pub seq: Option<u64>,
}

/// Broadcasts waiting for the fan-out worker at most; then `relay` waits (back-pressure on
/// the posting side, never unbounded memory).
pub const FANOUT_QUEUE: usize = 1024;

/// One broadcast on its way to the fan-out worker.
struct Outgoing<A: Adapter> {
    event: String,
    data: Arc<RawValue>,
    meta: Option<DeliveryMeta>,
    targets: Vec<SocketRef<A>>,
    accepted: Instant,
}

impl Bridge<LocalAdapter> {
    /// A bridge alone, with its last values in memory.
    pub fn new(config: Arc<BridgeConfig>, io: SocketIo) -> Arc<Self> {
        let cache = LastValueCache::new(LastValueCache::new_epoch(), config.cache_products, config.cache_max_age);
        Bridge::with_parts(config, io, LastValues::Memory(Mutex::new(cache)), None)
    }
}

impl<A: Adapter> Bridge<A> {
    /// Must be called inside the tokio runtime (alone, it starts the fan-out worker).
    pub fn with_parts(config: Arc<BridgeConfig>, io: SocketIo<A>, values: LastValues, cluster: Option<Cluster>) -> Arc<Self> {
        Arc::new_cyclic(|weak: &std::sync::Weak<Self>| {
            let fanout = cluster.is_none().then(|| {
                let (tx, mut rx) = mpsc::channel::<Outgoing<A>>(FANOUT_QUEUE);
                let weak = weak.clone();
                tokio::spawn(async move {
                    while let Some(out) = rx.recv().await {
                        let Some(bridge) = weak.upgrade() else { return };
                        bridge.deliver(out);
                    }
                });
                tx
            });
            Bridge {
                verifier: crate::socket::auth::Verifier::new(config.client_auth.clone()),
                rate: RateLimiter::new(config.rate_limit),
                config,
                io,
                cluster,
                values,
                order: tokio::sync::Mutex::new(()),
                fanout,
                doomed: Mutex::new(HashSet::new()),
            }
        })
    }

    /// False while Redis (in cluster mode) is unreachable.
    pub fn is_ready(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.health.is_up())
    }

    /// Sends `req` to its sockets. Alone, a socket whose queue is full is disconnected
    /// instead of being fed forever: it reconnects and catches up from the cache.
    pub async fn relay(&self, req: BroadcastRequest) -> Result<Relayed, RedisDown> {
        let started = Instant::now();
        if !self.is_ready() {
            return Err(RedisDown);
        }
        let _order = self.order.lock().await;
        let data: Arc<RawValue> = Arc::from(req.data);
        let meta = match (&req.snapshot, req.to.is_empty()) {
            (Some(snapshot), true) => Some(self.record(snapshot.product_id, &data, started).await?),
            _ => None,
        };
        let relayed = match &self.cluster {
            Some(cluster) => {
                let rooms: Vec<String> = req.to.iter().map(|r| r.as_str().to_owned()).collect();
                let operators = if rooms.is_empty() { self.io.broadcast() } else { self.io.to(rooms) };
                let sent = match &meta {
                    Some(meta) => operators.emit(req.event.as_str(), &(&*data, meta)).await,
                    None => operators.emit(req.event.as_str(), &*data).await,
                };
                if let Err(BroadcastError::Adapter(e)) = sent {
                    tracing::warn!("cluster fan-out failed: {e}");
                    cluster.health.set(false);
                    return Err(RedisDown);
                }
                metrics::histogram!(m::BROADCAST_LATENCY).record(started.elapsed().as_secs_f64());
                Relayed { recipients: None, seq: meta.as_ref().map(|m| m.seq) }
            }
            None => {
                let mut targets: Vec<SocketRef<A>> = if req.to.is_empty() {
                    self.io.sockets()
                } else {
                    self.io.to(req.to.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>()).sockets()
                };
                let doomed = self.doomed_ids();
                if !doomed.is_empty() {
                    targets.retain(|s| !doomed.contains(&s.id));
                }
                let relayed = Relayed { recipients: Some(targets.len()), seq: meta.as_ref().map(|m| m.seq) };
                let out = Outgoing { event: req.event.clone(), data, meta, targets, accepted: started };
                if let Some(fanout) = &self.fanout {
                    // Still under the order lock: the worker sees broadcasts in sequence order.
                    let _ = fanout.send(out).await;
                }
                relayed
            }
        };
        metrics::counter!(m::BROADCASTS_ACCEPTED, "event" => req.event.clone()).increment(1);
        Ok(relayed)
    }

    async fn record(&self, product_id: i64, data: &Arc<RawValue>, now: Instant) -> Result<DeliveryMeta, RedisDown> {
        match &self.values {
            LastValues::Memory(cache) => {
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                let meta = cache.record(product_id, data.clone(), now);
                metrics::gauge!(m::CACHED_PRODUCTS).set(cache.len() as f64);
                Ok(meta)
            }
            LastValues::Redis(store) => store.record(product_id, data).await.inspect_err(|_| {
                if let Some(cluster) = &self.cluster {
                    cluster.health.set(false);
                }
            }),
        }
    }

    /// The fan-out worker's job: queue one broadcast to each of its sockets.
    fn deliver(&self, out: Outgoing<A>) {
        self.retry_doomed();
        let doomed = self.doomed_ids();
        let mut delivered = 0u64;
        let mut slow = Vec::new();
        for socket in out.targets.into_iter().filter(|s| !doomed.contains(&s.id)) {
            let sent = match &out.meta {
                Some(meta) => socket.emit(out.event.as_str(), &(&*out.data, meta)),
                None => socket.emit(out.event.as_str(), &*out.data),
            };
            match sent {
                Ok(()) => delivered += 1,
                Err(SendError::Socket(SocketError::InternalChannelFull)) => slow.push(socket),
                Err(e) => tracing::debug!(sid = %socket.id, error = %e, "socket gone during relay"),
            }
        }
        for socket in slow {
            self.disconnect_slow(socket);
        }
        metrics::counter!(m::DELIVERIES).increment(delivered);
        metrics::histogram!(m::BROADCAST_LATENCY).record(out.accepted.elapsed().as_secs_f64());
    }

    /// Everything a client at `req` has missed (None when the store cannot be read).
    pub async fn catch_up(&self, req: &CatchUpRequest) -> Option<CatchUp> {
        match &self.values {
            LastValues::Memory(cache) => Some(cache.lock().unwrap_or_else(|e| e.into_inner()).since(req, Instant::now())),
            LastValues::Redis(store) => store.since(req).await.ok(),
        }
    }

    /// Sockets connected to this node and not being disconnected for slowness.
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

    fn disconnect_slow(&self, socket: SocketRef<A>) {
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
