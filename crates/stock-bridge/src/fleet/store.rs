//! Where the fleet is kept: the [`FleetStore`] trait and [`MemoryStore`] (no file: the
//! fleet lasts as long as the process). SQLite ([`super::sqlite`]) keeps it on one node,
//! Redis ([`super::redis`]) for a cluster; all three pass the same tests (`tests/fleet.rs`).
//!
//! Writes come in [`Batch`]es, one per second at most: records to upsert, timeline entries
//! to append (each till keeps its last [`TIMELINE_MAX`]) and tills to forget.

use super::record::{TIMELINE_MAX, TillRecord, TimelineEntry};
use futures_util::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What one write does, in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<TillRecord>,
    pub timeline: Vec<(String, TimelineEntry)>,
    pub forget: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.timeline.is_empty() && self.forget.is_empty()
    }
}

/// The store failed (the text names the store and why; it never holds a secret).
#[derive(Debug, thiserror::Error)]
#[error("the fleet store ({store}) failed: {why}")]
pub struct StoreError {
    pub store: &'static str,
    pub why: String,
}

/// Where the fleet is kept. Every method may block on I/O: it is async.
pub trait FleetStore: Send + Sync + 'static {
    /// What it is, for logs and `/healthz` (`memory`, `sqlite`, `redis`).
    fn kind(&self) -> &'static str;
    /// Every till kept.
    fn load(&self) -> BoxFuture<'_, Result<Vec<TillRecord>, StoreError>>;
    /// Applies `batch` whole.
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), StoreError>>;
    /// `key`'s timeline, oldest first.
    fn timeline<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<TimelineEntry>, StoreError>>;
}

/// The fleet in memory only.
#[derive(Default)]
pub struct MemoryStore {
    tills: Mutex<HashMap<String, TillRecord>>,
    timelines: Mutex<HashMap<String, VecDeque<TimelineEntry>>>,
}

impl FleetStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn load(&self) -> BoxFuture<'_, Result<Vec<TillRecord>, StoreError>> {
        let tills = self.tills.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        Box::pin(async move { Ok(tills) })
    }

    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), StoreError>> {
        {
            let mut tills = self.tills.lock().unwrap_or_else(|e| e.into_inner());
            let mut timelines = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
            for record in batch.records {
                tills.insert(record.key.clone(), record);
            }
            for (key, entry) in batch.timeline {
                let timeline = timelines.entry(key).or_default();
                timeline.push_back(entry);
                while timeline.len() > TIMELINE_MAX {
                    timeline.pop_front();
                }
            }
            for key in batch.forget {
                tills.remove(&key);
                timelines.remove(&key);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn timeline<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<TimelineEntry>, StoreError>> {
        let entries = self
            .timelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(entries) })
    }
}
