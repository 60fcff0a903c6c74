//! [`Bridge`]: the state every HTTP and Socket.IO handler shares, made once per process,
//! and the stores behind it ([`LastValues`]: in memory alone, in Redis as a cluster node).
//!
//! What a broadcast does with it lives in [`crate::relay`]; what one socket costs, in
//! [`crate::accounting`]; who is connected, in [`crate::audience`].
//!
//! No lock here is held across a call into socketioxide: its `disconnect()` runs our
//! handlers inline, and a lock held there froze the bridge once.

use crate::accounting::{self, SessionTaps};
use crate::audience::Audience;
use crate::auth::Verifier;
use crate::cluster::{FanoutChannel, RedisDown, RedisHealth, RedisLastValues};
use crate::config::BridgeConfig;
use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use crate::relay::Relay;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use stock_protocol::{CatchUp, CatchUpRequest, DeliveryMeta};

/// A rate limit per source address.
pub type PerSource = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// Where the last values live: one enum, so the store and the cluster's parts cannot
/// disagree.
pub enum LastValues {
    /// Alone: in memory.
    Single(Mutex<LastValueCache>),
    /// One node of a cluster: in Redis, whose health is watched, beside the fan-out channel.
    Cluster(Cluster),
}

/// The cluster-mode parts: the fan-out channel, the last values in Redis, Redis health
/// and the tasks that watch it and take in the channel's runs (both stopped when the
/// bridge goes).
pub struct Cluster {
    pub channel: FanoutChannel,
    pub store: RedisLastValues,
    pub health: Arc<RedisHealth>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    pub fn new(channel: FanoutChannel, store: RedisLastValues, health: Arc<RedisHealth>) -> Self {
        Cluster { channel, store, health, tasks: Vec::new() }
    }

    /// Owns `task`: it is stopped when the bridge goes.
    pub fn own(&mut self, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(task);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Shared by the HTTP handlers and the Socket.IO handlers.
pub struct Bridge {
    pub config: Arc<BridgeConfig>,
    /// Checks client tokens (Socket.IO handshakes, `GET /snapshot`).
    pub verifier: Verifier,
    /// Socket.IO handshakes per source address.
    pub handshakes: PerSource,
    /// `POST /broadcast` per source address: `rate_limit` per second, bursts of one second's worth.
    pub broadcasts: PerSource,
    pub io: SocketIo,
    /// The sockets connected to this node: a broadcast to everyone goes to them.
    pub audience: Audience,
    /// WebSocket upgrades waiting for their socket's CONNECT (see [`crate::accounting`]).
    pub upgrades: SessionTaps,
    /// Long-polling sockets' own taps, by session id (see [`crate::accounting`]).
    pub polls: SessionTaps,
    pub last_values: LastValues,
    /// The one path broadcasts take ([`crate::relay`]).
    pub(crate) relay: Relay,
}

impl Bridge {
    /// Must be called inside the tokio runtime (it starts the fan-out worker).
    pub fn new(config: Arc<BridgeConfig>, io: SocketIo, last_values: LastValues) -> Arc<Self> {
        Arc::new_cyclic(|bridge| Bridge {
            verifier: Verifier::new(config.client_auth.clone(), config.introspect_concurrency),
            handshakes: per_source(config.handshake_rate, config.handshake_rate.saturating_mul(two())),
            broadcasts: {
                let rate = NonZeroU32::new(config.rate_limit.max(1)).expect("at least 1");
                per_source(rate, rate)
            },
            config,
            io,
            audience: Audience::default(),
            upgrades: SessionTaps::default(),
            polls: SessionTaps::default(),
            last_values,
            relay: Relay::start(bridge.clone()),
        })
    }

    /// Last values in memory, as a bridge alone keeps them.
    pub fn in_memory(config: &BridgeConfig) -> LastValues {
        LastValues::Single(Mutex::new(LastValueCache::new(
            LastValueCache::new_epoch(),
            config.cache_products,
            config.cache_max_age,
        )))
    }

    /// False while Redis (in cluster mode) is unreachable.
    pub fn is_ready(&self) -> bool {
        match &self.last_values {
            LastValues::Single(_) => true,
            LastValues::Cluster(cluster) => cluster.health.is_up(),
        }
    }

    /// Numbers `product_id`'s new snapshot and keeps it as its last value.
    pub(crate) async fn record(
        &self,
        product_id: i64,
        data: &Arc<RawValue>,
        now: Instant,
    ) -> Result<DeliveryMeta, RedisDown> {
        match &self.last_values {
            LastValues::Single(cache) => {
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                let meta = cache.record(product_id, data.clone(), now);
                metrics::gauge!(m::CACHED_PRODUCTS).set(cache.len() as f64);
                Ok(meta)
            }
            LastValues::Cluster(cluster) => {
                cluster.store.record(product_id, data).await.inspect_err(|_| cluster.health.set(false))
            }
        }
    }

    /// Everything a client at `req` has missed, in an answer of about `max_bytes` at most
    /// (None when the store cannot be read).
    pub async fn catch_up(&self, req: &CatchUpRequest, max_bytes: usize) -> Option<CatchUp<Arc<RawValue>>> {
        match &self.last_values {
            LastValues::Single(cache) => {
                Some(cache.lock().unwrap_or_else(|e| e.into_inner()).since(req, Instant::now(), max_bytes))
            }
            LastValues::Cluster(cluster) => cluster.store.since(req, max_bytes).await.ok(),
        }
    }

    /// Sockets connected to this node and not being disconnected for slowness.
    pub fn connected_clients(&self) -> usize {
        self.io.sockets().iter().filter(|s| !accounting::account(s).is_some_and(|a| a.is_doomed())).count()
    }
}

fn two() -> NonZeroU32 {
    NonZeroU32::new(2).expect("not zero")
}

fn per_source(rate: NonZeroU32, burst: NonZeroU32) -> PerSource {
    governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
}
