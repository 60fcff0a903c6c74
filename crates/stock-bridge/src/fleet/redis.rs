//! The fleet in Redis (cluster mode): every node reads and writes the same tills, so every
//! node shows every till. One hash of records (`{prefix}:fleet:tills`, JSON by key) and a
//! list per till for its timeline (`{prefix}:fleet:timeline:{key}`, the last
//! [`TIMELINE_MAX`]); a [`Batch`] is one MULTI/EXEC.

use super::record::{TIMELINE_MAX, TillRecord, TimelineEntry};
use super::store::{Batch, FleetStore, StoreError};
use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;

/// See the module docs.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError { store: "redis", why: e.to_string() }
}

impl RedisStore {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        RedisStore { conn, prefix: prefix.to_owned() }
    }

    fn tills(&self) -> String {
        format!("{}:fleet:tills", self.prefix)
    }

    fn timeline_key(&self, key: &str) -> String {
        format!("{}:fleet:timeline:{key}", self.prefix)
    }
}

impl FleetStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn load(&self) -> BoxFuture<'_, Result<Vec<TillRecord>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> =
                redis::cmd("HGETALL").arg(self.tills()).query_async(&mut self.conn.clone()).await.map_err(failed)?;
            Ok(rows
                .into_iter()
                .filter_map(|(_, json)| {
                    serde_json::from_str(&json)
                        .map_err(|e| tracing::warn!("a till in Redis cannot be read and is skipped: {e}"))
                        .ok()
                })
                .collect())
        })
    }

    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            let tills = self.tills();
            for record in &batch.records {
                pipe.hset(&tills, &record.key, serde_json::to_string(record).unwrap_or_default()).ignore();
            }
            for (key, entry) in &batch.timeline {
                let list = self.timeline_key(key);
                pipe.rpush(&list, serde_json::to_string(entry).unwrap_or_default()).ignore();
                pipe.ltrim(&list, -(TIMELINE_MAX as isize), -1).ignore();
            }
            for key in &batch.forget {
                pipe.hdel(&tills, key).ignore();
                pipe.del(self.timeline_key(key)).ignore();
            }
            pipe.query_async::<()>(&mut self.conn.clone()).await.map_err(failed)
        })
    }

    fn timeline<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<TimelineEntry>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<String> = redis::cmd("LRANGE")
                .arg(self.timeline_key(key))
                .arg(0)
                .arg(-1)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(failed)?;
            Ok(rows.iter().filter_map(|e| serde_json::from_str(e).ok()).collect())
        })
    }
}
