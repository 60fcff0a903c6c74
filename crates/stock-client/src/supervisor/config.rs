//! [`ClientConfig`]: the supervisor's tuning, every field with a named default.

use crate::backoff::Backoff;
use std::time::Duration;

/// Tuning of the supervisor; every field has a named default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub backoff: Backoff,
    pub attempt_timeout: Duration,
    pub probe_interval: Duration,
    pub watchdog: Duration,
    pub catch_up_timeout: Duration,
    pub events_capacity: usize,
    /// Products the duplicate filter remembers at most ([`crate::ledger`]).
    pub ledger_products: usize,
    /// Seed for the backoff jitter (tests fix it; `None` draws one).
    pub jitter_seed: Option<u64>,
    /// Updates may be missing since then (the embedder shows values restored from disk):
    /// the client starts with a gap, and the first catch-up that completes closes it
    /// ([`crate::ClientEvent::GapClosed`]).
    pub missing_since: Option<chrono::DateTime<chrono::Utc>>,
}

pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(30);
pub const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_EVENTS_CAPACITY: usize = 4096;

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            backoff: Backoff::default(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            watchdog: DEFAULT_WATCHDOG,
            catch_up_timeout: DEFAULT_CATCH_UP_TIMEOUT,
            events_capacity: DEFAULT_EVENTS_CAPACITY,
            ledger_products: crate::ledger::DEFAULT_LEDGER_PRODUCTS,
            jitter_seed: None,
            missing_since: None,
        }
    }
}
