//! Counters for diagnostics: [`Stats`] (shared, updated by the supervisor) and the
//! [`StatsSnapshot`] an embedder reads.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for diagnostics.
#[derive(Debug, Default)]
pub struct Stats {
    pub attempts: AtomicU64,
    pub events_received: AtomicU64,
    pub events_dropped: AtomicU64,
    pub malformed: AtomicU64,
    pub duplicates_skipped: AtomicU64,
    pub probes_answered: AtomicU64,
    last_event_at: Mutex<Option<DateTime<Utc>>>,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsSnapshot {
    pub attempts: u64,
    pub events_received: u64,
    pub events_dropped: u64,
    pub malformed: u64,
    pub duplicates_skipped: u64,
    pub probes_answered: u64,
    pub last_event_at: Option<DateTime<Utc>>,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            attempts: self.attempts.load(Ordering::Relaxed),
            events_received: self.events_received.load(Ordering::Relaxed),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            duplicates_skipped: self.duplicates_skipped.load(Ordering::Relaxed),
            probes_answered: self.probes_answered.load(Ordering::Relaxed),
            last_event_at: *self.last_event_at.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Counts one event received now.
    pub fn event_received(&self) {
        self.events_received.fetch_add(1, Ordering::Relaxed);
        *self.last_event_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Utc::now());
    }

    pub fn count(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}
