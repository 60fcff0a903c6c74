//! The connection supervisor: owns the whole lifecycle of the live feed and reports it
//! honestly in three states.
//!
//! ```text
//!            ┌──────────── backoff (1–5 s, jitter) ◀──────────────┐
//!            ▼                                                     │
//!   socket connecting ──open──▶ socket connected ──lost/closed──▶ socket offline
//!            │                        │                            ▲
//!            └──refused/failed/timeout┴──── no answer for watchdog ┘
//! ```
//! - Every attempt has a timeout ([`ClientConfig::attempt_timeout`]).
//! - While connected, a `stock:ping` probe goes out every [`ClientConfig::probe_interval`].
//!   Once the server has answered one, silence longer than [`ClientConfig::watchdog`]
//!   means `socket offline` ("no answer for 30 s"), even if no packet says so (a silent
//!   network cut). Servers that never answer probes (the old Node bridge) are watched by
//!   the Engine.IO ping timeout instead (its pingInterval + pingTimeout).
//! - A CONNECT_ERROR whose message speaks of authorization is `socket offline` with
//!   reason `unauthorized`; the supervisor then stops trying (no hammering) and sends
//!   [`ClientEvent::Unauthorized`] so the embedder can ask the user to log in again.
//! - After (re)connecting it asks for everything since the last sequence it saw
//!   (`stock:catch_up`) and passes that on before live events, which wait at most
//!   [`ClientConfig::catch_up_timeout`]. Duplicates and stale snapshots are dropped
//!   ([`crate::ledger`]). When a gap cannot be closed it says so with
//!   [`ClientEvent::Gap`].
//! - Events go to the embedder through a bounded channel
//!   ([`ClientConfig::events_capacity`]). When it is full the event is dropped, counted,
//!   reported as a gap, and the products concerned are fetched again by a catch-up once
//!   the channel has room: a slow embedder never stalls the socket.
//! - [`LiveClient::stop`] or dropping the [`LiveClient`] ends everything, even while offline.

use crate::backoff::Backoff;
use crate::ledger::Ledger;
use crate::link::{Connector, Link, LinkSignal};
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stock_protocol::{
    CatchUp, CatchUpRequest, ConnectionState, DeliveryMeta, RefusalCode, Refused, StockSnapshot, events,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Tuning of the supervisor; every field has a named default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub backoff: Backoff,
    pub attempt_timeout: Duration,
    pub probe_interval: Duration,
    pub watchdog: Duration,
    pub catch_up_timeout: Duration,
    pub events_capacity: usize,
    /// Seed for the backoff jitter (tests fix it; `None` draws one).
    pub jitter_seed: Option<u64>,
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
            jitter_seed: None,
        }
    }
}

/// The state and why, since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    pub state: ConnectionState,
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
    /// Connection attempts since the last successful connection.
    pub attempt: u32,
}

/// What the embedder receives.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    State(StateChange),
    /// A new `add_stock`; `raw` is the payload exactly as received.
    Stock {
        snapshot: StockSnapshot,
        meta: Option<DeliveryMeta>,
        raw: Value,
    },
    /// A `sale_mode` payload.
    SaleMode(Value),
    /// Updates since `since` may be missing; shown until [`ClientEvent::GapClosed`].
    Gap {
        since: DateTime<Utc>,
        reason: String,
    },
    /// A catch-up closed the last gap.
    GapClosed,
    /// The server refused our credentials; the supervisor has stopped trying.
    Unauthorized {
        /// Unauthorized or token expired.
        code: RefusalCode,
        message: String,
    },
}

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
}

/// A running live feed. Dropping it stops everything.
pub struct LiveClient {
    stop: Option<oneshot::Sender<()>>,
    state: watch::Receiver<StateChange>,
    stats: Arc<Stats>,
    task: Option<JoinHandle<()>>,
}

impl LiveClient {
    /// Starts supervising connections made by `connector`.
    pub fn start(connector: Arc<dyn Connector>, config: ClientConfig) -> (LiveClient, mpsc::Receiver<ClientEvent>) {
        let (events_tx, events_rx) = mpsc::channel(config.events_capacity.max(1));
        let initial = StateChange { state: ConnectionState::Connecting, reason: None, since: Utc::now(), attempt: 0 };
        let (state_tx, state_rx) = watch::channel(initial);
        let (stop_tx, stop_rx) = oneshot::channel();
        let stats = Arc::new(Stats::default());
        let rng = match config.jitter_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        let supervisor = Supervisor {
            connector,
            config,
            events: events_tx,
            state: state_tx,
            stats: stats.clone(),
            ledger: Ledger::default(),
            gap_since: None,
            resync_needed: false,
            pages_incomplete: false,
            rng,
        };
        let task = tokio::spawn(supervisor.run(stop_rx));
        (LiveClient { stop: Some(stop_tx), state: state_rx, stats, task: Some(task) }, events_rx)
    }

    /// The current state.
    pub fn state(&self) -> StateChange {
        self.state.borrow().clone()
    }

    /// Follows state changes (the latest one always wins).
    pub fn watch_state(&self) -> watch::Receiver<StateChange> {
        self.state.clone()
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Ends all connecting for good and waits until the connection is torn down.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reason given when the server refused our credentials.
pub const UNAUTHORIZED: &str = "unauthorized";

enum Opening {
    Opened,
    Refused(Refused),
    Failed(String),
    TimedOut,
    Stop,
}

enum Ended {
    Lost(String),
    Unauthorized(Refused),
    Stop,
}

struct Supervisor {
    connector: Arc<dyn Connector>,
    config: ClientConfig,
    events: mpsc::Sender<ClientEvent>,
    state: watch::Sender<StateChange>,
    stats: Arc<Stats>,
    ledger: Ledger,
    /// Set while updates may be missing.
    gap_since: Option<DateTime<Utc>>,
    /// Events were dropped on a full channel: fetch them again when there is room.
    resync_needed: bool,
    /// An earlier page of the catch-up in progress said `incomplete`.
    pages_incomplete: bool,
    rng: StdRng,
}

impl Supervisor {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut attempt: u32 = 0;
        let mut reason: Option<String> = None;
        let mut ever_connected = false;
        loop {
            self.set_state(ConnectionState::Connecting, reason.clone(), attempt);
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let (tx, mut rx) = mpsc::unbounded_channel();
            let link = self.connector.connect(tx);
            let opening = tokio::select! {
                o = wait_open(&mut rx, self.config.attempt_timeout) => o,
                _ = &mut stop => Opening::Stop,
            };
            let lost = match opening {
                Opening::Opened => {
                    attempt = 0;
                    self.set_state(ConnectionState::Connected, None, 0);
                    let ended = self.connected(link.as_ref(), &mut rx, &mut stop).await;
                    ever_connected = true;
                    match ended {
                        Ended::Lost(why) => why,
                        Ended::Unauthorized(refusal) => {
                            drop(link);
                            return self.refused(refusal, stop).await;
                        }
                        Ended::Stop => return self.stopped(link),
                    }
                }
                Opening::Refused(refusal) if refusal.is_final() => {
                    drop(link);
                    return self.refused(refusal, stop).await;
                }
                Opening::Refused(refusal) => format!("refused: {}", refusal.message),
                Opening::Failed(message) => message,
                Opening::TimedOut => format!("no answer within {} s", self.config.attempt_timeout.as_secs_f64()),
                Opening::Stop => return self.stopped(link),
            };
            drop(link);
            if ever_connected && self.gap_since.is_none() {
                self.gap_since = Some(Utc::now());
            }
            tracing::info!(attempt, "socket offline: {lost}");
            self.set_state(ConnectionState::Offline, Some(lost.clone()), attempt);
            reason = Some(lost);
            let delay = self.config.backoff.delay(attempt, &mut self.rng);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = &mut stop => {
                    self.set_state(ConnectionState::Offline, Some("stopped".into()), attempt);
                    return;
                }
            }
        }
    }

    fn stopped(&mut self, link: Box<dyn Link>) {
        drop(link);
        self.set_state(ConnectionState::Offline, Some("stopped".into()), 0);
    }

    async fn refused(&mut self, refusal: Refused, stop: oneshot::Receiver<()>) {
        let Refused { code, message } = refusal;
        tracing::warn!("socket offline: the server refused our credentials ({message})");
        self.set_state(ConnectionState::Offline, Some(UNAUTHORIZED.into()), 0);
        let code = code.unwrap_or(RefusalCode::Unauthorized);
        self.emit(ClientEvent::Unauthorized { code, message });
        // No retrying with credentials the server refused: wait to be stopped.
        let _ = stop.await;
    }

    async fn connected(
        &mut self,
        link: &dyn Link,
        rx: &mut mpsc::UnboundedReceiver<LinkSignal>,
        stop: &mut oneshot::Receiver<()>,
    ) -> Ended {
        let (epoch, after) = self.ledger.position();
        self.pages_incomplete = false;
        link.request_catch_up(CatchUpRequest { epoch, after });
        link.probe();
        let mut catch_up_deadline = Some(Instant::now() + self.config.catch_up_timeout);
        let mut held_back: Vec<(String, Vec<Value>)> = Vec::new();
        let mut answers_probes = false;
        let mut last_life = Instant::now();
        let mut probes =
            tokio::time::interval_at(Instant::now() + self.config.probe_interval, self.config.probe_interval);
        probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let watchdog_at = last_life + self.config.watchdog;
            tokio::select! {
                signal = rx.recv() => match signal {
                    None => return Ended::Lost("connection lost".into()),
                    Some(LinkSignal::Event { name, args }) => {
                        last_life = Instant::now();
                        if catch_up_deadline.is_some() {
                            held_back.push((name, args));
                        } else {
                            self.deliver(&name, args);
                        }
                    }
                    Some(LinkSignal::Pong) => {
                        self.stats.probes_answered.fetch_add(1, Ordering::Relaxed);
                        answers_probes = true;
                        last_life = Instant::now();
                    }
                    Some(LinkSignal::CatchUp(args)) => {
                        last_life = Instant::now();
                        if let Some(next) = self.apply_catch_up(args) {
                            // A paged answer: ask for the rest, live events still held back.
                            link.request_catch_up(next);
                            if catch_up_deadline.is_some() {
                                catch_up_deadline = Some(Instant::now() + self.config.catch_up_timeout);
                            }
                            continue;
                        }
                        if catch_up_deadline.take().is_some() {
                            for (name, args) in held_back.drain(..) {
                                self.deliver(&name, args);
                            }
                        }
                    }
                    Some(LinkSignal::Failed(why)) => return Ended::Lost(why),
                    Some(LinkSignal::Closed) => return Ended::Lost("server closed the connection".into()),
                    Some(LinkSignal::Refused(r)) if r.is_final() => return Ended::Unauthorized(r),
                    Some(LinkSignal::Refused(r)) => return Ended::Lost(format!("refused: {}", r.message)),
                    Some(LinkSignal::Opened) => {}
                },
                _ = tokio::time::sleep_until(watchdog_at), if answers_probes => {
                    return Ended::Lost(format!("no answer for {} s", self.config.watchdog.as_secs_f64()));
                }
                _ = sleep_until_opt(catch_up_deadline) => {
                    catch_up_deadline = None;
                    if let Some(since) = self.gap_since {
                        self.emit(ClientEvent::Gap { since, reason: "the server cannot replay missed updates".into() });
                    }
                    for (name, args) in held_back.drain(..) {
                        self.deliver(&name, args);
                    }
                }
                _ = probes.tick() => {
                    link.probe();
                    if self.resync_needed && catch_up_deadline.is_none() && self.has_room() {
                        self.resync_needed = false;
                        link.request_catch_up(CatchUpRequest::default());
                    }
                }
                _ = &mut *stop => return Ended::Stop,
            }
        }
    }

    fn has_room(&self) -> bool {
        self.events.capacity() * 2 >= self.events.max_capacity()
    }

    /// Applies one catch-up answer; for a paged one, returns the request for the next page.
    fn apply_catch_up(&mut self, args: Vec<Value>) -> Option<CatchUpRequest> {
        let Some(answer) = args.into_iter().next().and_then(|v| serde_json::from_value::<CatchUp>(v).ok()) else {
            tracing::warn!("the server's catch-up answer was not understood");
            return None;
        };
        tracing::debug!(items = answer.items.len(), full = answer.full, "catch-up received");
        for item in answer.items {
            let meta = DeliveryMeta { seq: item.seq, epoch: answer.epoch.clone() };
            self.deliver_stock(item.data, Some(meta));
        }
        self.ledger.advance(&answer.epoch, answer.seq);
        if answer.more {
            self.pages_incomplete |= answer.incomplete;
            return Some(CatchUpRequest { epoch: Some(answer.epoch), after: Some(answer.seq) });
        }
        if std::mem::take(&mut self.pages_incomplete) || answer.incomplete {
            let since = self.gap_since.unwrap_or_else(Utc::now);
            self.gap_since = Some(since);
            self.emit(ClientEvent::Gap { since, reason: "the bridge no longer had every missed update".into() });
        } else if self.gap_since.take().is_some() && !self.resync_needed {
            self.emit(ClientEvent::GapClosed);
        }
        None
    }

    fn deliver(&mut self, name: &str, args: Vec<Value>) {
        self.stats.events_received.fetch_add(1, Ordering::Relaxed);
        *self.stats.last_event_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Utc::now());
        let mut args = args.into_iter();
        let Some(payload) = args.next() else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event = name, "event without payload ignored");
            return;
        };
        match name {
            events::ADD_STOCK => {
                let meta = args.next().and_then(|m| serde_json::from_value::<DeliveryMeta>(m).ok());
                self.deliver_stock(payload, meta);
            }
            events::SALE_MODE => {
                self.emit(ClientEvent::SaleMode(payload));
            }
            _ => {}
        }
    }

    fn deliver_stock(&mut self, raw: Value, meta: Option<DeliveryMeta>) {
        let snapshot = match StockSnapshot::from_value(&raw) {
            Ok(s) => s,
            Err(errors) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("malformed add_stock ignored: {}", errors.join("; "));
                return;
            }
        };
        if self.ledger.admit(&snapshot, meta.as_ref()).is_err() {
            self.stats.duplicates_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let product_id = snapshot.product_id;
        if !self.emit(ClientEvent::Stock { snapshot, meta, raw }) {
            // Not shown: forget it, so the next catch-up brings it back.
            self.ledger.forget(product_id);
            self.resync_needed = true;
        }
    }

    /// Hands `event` over without waiting; false if the embedder's channel was full.
    fn emit(&mut self, event: ClientEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = self.stats.events_dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if self.gap_since.is_none() {
                    self.gap_since = Some(Utc::now());
                    tracing::warn!(dropped, "the embedder is not keeping up: events dropped; a catch-up will follow");
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn set_state(&mut self, state: ConnectionState, reason: Option<String>, attempt: u32) {
        let change = StateChange { state, reason, since: Utc::now(), attempt };
        let current = self.state.borrow().clone();
        if current.state == change.state && current.reason == change.reason && current.attempt == change.attempt {
            return;
        }
        self.state.send_replace(change.clone());
        self.emit(ClientEvent::State(change));
    }
}

async fn wait_open(rx: &mut mpsc::UnboundedReceiver<LinkSignal>, timeout: Duration) -> Opening {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Opening::TimedOut,
            Ok(None) => return Opening::Failed("connection lost".into()),
            Ok(Some(LinkSignal::Opened)) => return Opening::Opened,
            Ok(Some(LinkSignal::Refused(m))) => return Opening::Refused(m),
            Ok(Some(LinkSignal::Failed(m))) => return Opening::Failed(m),
            Ok(Some(LinkSignal::Closed)) => return Opening::Failed("server closed the connection".into()),
            Ok(Some(_)) => {}
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
