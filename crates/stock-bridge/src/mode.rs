//! [`Mode`]: how this bridge runs, alone (last values in memory) or as one node of a
//! cluster (last values in Redis, broadcasts through the cluster's fan-out channel), and
//! what that means for numbering, catch-up and readiness.

use crate::cluster::{FanoutChannel, RedisDown, RedisHealth, RedisLastValues};
use crate::config::BridgeConfig;
use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use stock_protocol::{CatchUp, CatchUpRequest, DeliveryMeta};

/// How this bridge runs: one enum, so the last values and the cluster's parts cannot
/// disagree.
pub enum Mode {
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

impl Mode {
    /// Last values in memory, as a bridge alone keeps them.
    pub fn single(config: &BridgeConfig) -> Mode {
        Mode::Single(Mutex::new(LastValueCache::new(
            LastValueCache::new_epoch(),
            config.cache_products,
            config.cache_max_age,
        )))
    }

    /// False while Redis (in cluster mode) is unreachable.
    pub fn is_ready(&self) -> bool {
        match self {
            Mode::Single(_) => true,
            Mode::Cluster(cluster) => cluster.health.is_up(),
        }
    }

    /// Numbers each of `snapshots` (a product and its new snapshot), in order, and keeps
    /// it as that product's last value: all of them or (Redis down) none. In cluster mode
    /// that is one call to Redis for the whole batch.
    pub async fn record_all(
        &self,
        snapshots: &[(i64, Arc<RawValue>)],
        now: Instant,
    ) -> Result<Vec<DeliveryMeta>, RedisDown> {
        match self {
            Mode::Single(cache) => {
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                let metas =
                    snapshots.iter().map(|(product_id, data)| cache.record(*product_id, data.clone(), now)).collect();
                metrics::gauge!(m::CACHED_PRODUCTS).set(cache.len() as f64);
                Ok(metas)
            }
            Mode::Cluster(cluster) => {
                let snapshots: Vec<(i64, &RawValue)> = snapshots.iter().map(|(p, d)| (*p, &**d)).collect();
                cluster.store.record_all(&snapshots).await.inspect_err(|_| cluster.health.set(false))
            }
        }
    }

    /// Everything a client at `req` has missed, in an answer of about `max_bytes` at most
    /// (None when the store cannot be read).
    pub async fn catch_up(&self, req: &CatchUpRequest, max_bytes: usize) -> Option<CatchUp<Arc<RawValue>>> {
        match self {
            Mode::Single(cache) => {
                Some(cache.lock().unwrap_or_else(|e| e.into_inner()).since(req, Instant::now(), max_bytes))
            }
            Mode::Cluster(cluster) => cluster.store.since(req, max_bytes).await.ok(),
        }
    }
}
