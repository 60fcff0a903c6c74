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
//! - A final refusal (the bridge's `unauthorized` / `token_expired` code, or for servers
//!   that send no code the exact `unauthorized: ` prefix: [`stock_protocol::Refused`]) is
//!   `socket offline` with reason `unauthorized`; the supervisor then stops trying (no
//!   hammering) and sends [`ClientEvent::Unauthorized`] so the embedder can ask the user to
//!   log in again. Any other refusal is retried with backoff.
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

//!
//! # Layout
//! - [`config`]: [`ClientConfig`] and its defaults; [`event`]: what the embedder receives;
//!   [`stats`]: counters for diagnostics; `health`: the till's health reports to the bridge.
//! - `lifecycle`: the state machine across connections; `connected`: one open
//!   connection (catch-up gate, probes, watchdog); `outbox`: checks, filters and hands
//!   events over, keeps the gap.
//! - This file: [`LiveClient`], the handle.

mod config;
mod connected;
mod event;
mod health;
mod lifecycle;
mod outbox;
mod stats;

pub use config::{
    ClientConfig, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CATCH_UP_TIMEOUT, DEFAULT_EVENTS_CAPACITY, DEFAULT_PROBE_INTERVAL,
    DEFAULT_WATCHDOG,
};
pub use event::{ClientEvent, StateChange};
pub use health::Shown;
pub use outbox::{MAX_CATCH_UP_RETRIES, catch_up_retry_pause};
pub use stats::{Stats, StatsSnapshot};

use crate::link::Connector;
use chrono::Utc;
use lifecycle::Supervisor;
use outbox::Outbox;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use stock_protocol::ConnectionState;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// A running live feed. Dropping it stops everything.
pub struct LiveClient {
    stop: Option<oneshot::Sender<()>>,
    state: watch::Receiver<StateChange>,
    stats: Arc<Stats>,
    shown: Arc<Shown>,
    commands: mpsc::Sender<Command>,
    task: Option<JoinHandle<()>>,
}

/// What the embedder asks of a running supervisor.
pub(crate) enum Command {
    Answer(stock_protocol::DiagnosticsAnswer),
}

/// Answers waiting for the supervisor at most (support asks one at a time).
const COMMANDS: usize = 8;

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
        let mut outbox = Outbox::new(events_tx, state_tx, stats.clone(), config.ledger_products);
        outbox.gap_since = config.missing_since;
        let shown = Arc::new(Shown::default());
        let (commands, command_rx) = mpsc::channel(COMMANDS);
        let health = health::Health::new(shown.clone());
        let supervisor = Supervisor { connector, config, outbox, rng, health, commands: command_rx };
        let task = tokio::spawn(supervisor.run(stop_rx));
        (LiveClient { stop: Some(stop_tx), state: state_rx, stats, shown, commands, task: Some(task) }, events_rx)
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

    /// What the embedder shows (products on screen, notifications on), for the till's
    /// health reports.
    pub fn set_shown(&self, products: usize, notifications: bool) {
        self.shown.set(products, notifications);
    }

    /// Answers support's request `id` ([`ClientEvent::DiagnosticsAsked`]) with `text`.
    pub fn answer_diagnostics(&self, id: String, text: String) {
        self.handle().answer_diagnostics(id, text);
    }

    /// A handle for what the embedder tells the supervisor, to keep where the events are
    /// handled (it does not keep the feed running).
    pub fn handle(&self) -> ClientHandle {
        ClientHandle { shown: self.shown.clone(), commands: self.commands.clone() }
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

/// What the embedder tells a running supervisor: what it shows, and Diagnostics answers.
#[derive(Clone)]
pub struct ClientHandle {
    shown: Arc<Shown>,
    commands: mpsc::Sender<Command>,
}

impl ClientHandle {
    /// See [`LiveClient::set_shown`].
    pub fn set_shown(&self, products: usize, notifications: bool) {
        self.shown.set(products, notifications);
    }

    /// Answers support's request `id` ([`ClientEvent::DiagnosticsAsked`]) with `text`
    /// (shortened to the protocol's bound). Never waits: a full queue drops it, and the
    /// bridge tells support the till did not answer.
    pub fn answer_diagnostics(&self, id: String, text: String) {
        let mut text = text;
        if text.len() > stock_protocol::till::DIAGNOSTICS_MAX_BYTES {
            let mut end = stock_protocol::till::DIAGNOSTICS_MAX_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let _ = self.commands.try_send(Command::Answer(stock_protocol::DiagnosticsAnswer { id, text }));
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
