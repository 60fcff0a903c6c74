//! The fleet: every till the bridge has seen, online or not, for support staff ("why is
//! this till offline?").
//!
//! The socket handlers tell [`Fleet`] what happens (a till connected, reported, was
//! refused, was cut, left); the fleet keeps one [`TillRecord`] per till (by its till id, or
//! by its socket for a client that did not say who it is), a short timeline of its state
//! changes, and writes what changed to its [`FleetStore`] at most once a second, in one
//! batch. Support reads it through `http/fleet.rs` (API, live stream, page).
//!
//! In cluster mode ([`cluster`]) every node keeps the whole fleet: it writes its own tills
//! to Redis, tells the other nodes on the cluster's fleet channel, and holds a lease;
//! when a node dies, the others turn its tills offline ("bridge node lost") once its lease
//! runs out.
//!
//! No lock here is held across a call into socketioxide, nor across an await.
//!
//! # Layout
//! - This file: [`Fleet`], its events in and its writer.
//! - [`record`]: [`TillRecord`], the timeline, the view (counts, filters, order).
//! - [`store`]: the [`FleetStore`] trait, the batch, [`store::MemoryStore`].
//! - [`sqlite`]: the store in one SQLite file (one node).
//! - [`redis`]: the store in Redis (a cluster).
//! - [`cluster`]: the fleet channel between nodes, leases, diagnostics asked across nodes.

pub mod cluster;
pub mod record;
pub mod redis;
pub mod sqlite;
pub mod store;

use crate::accounting::Account;
use crate::metrics as m;
use chrono::{DateTime, Utc};
pub use record::{FleetQuery, TillRecord, TimelineEntry};
use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use stock_protocol::{DiagnosticsAnswer, DiagnosticsAsk, EndReason, FleetStatus, TillIdentity, TillReport, events};
pub use store::{Batch, FleetStore, StoreError};
use tokio::sync::{broadcast, oneshot};

/// How often what changed is written (one batch, one transaction).
pub const WRITE_EVERY: Duration = Duration::from_secs(1);
/// How often the fleet's gauges (tills by state, by version) are counted again.
pub const METRICS_EVERY: Duration = Duration::from_secs(10);
/// How often tills past their retention are forgotten.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Tills that never said who they are are forgotten this long after they went offline.
pub const UNIDENTIFIED_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long support's request for a till's Diagnostics waits for its answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(8);
/// Diagnostics requests waiting at once at most (support is a few people).
pub const ASKS_MAX: usize = 64;
/// Changes a live stream may fall behind by before it is told to read the page again.
pub const STREAM_BACKLOG: usize = 1024;
/// Timeline entries waiting to be written at most (a store that is down for long drops
/// the oldest, and says so).
pub const PENDING_TIMELINE_MAX: usize = 20_000;
/// Tills kept at most; past it the tills offline longest are forgotten first.
pub const TILLS_MAX: usize = 50_000;

/// What the live stream carries.
#[derive(Debug, Clone)]
pub enum FleetChange {
    /// A till's record changed (a status, a report, a refusal).
    Till(Box<TillRecord>),
    /// A till was forgotten.
    Forgot(String),
}

/// This node's own connection of an online till.
struct Live {
    sid: Sid,
    socket: SocketRef,
    account: Arc<Account>,
}

/// Why support's request for a till's Diagnostics gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("the till is not connected, so it cannot be asked")]
    NotOnline,
    #[error("the till did not answer within {} s", ASK_TIMEOUT.as_secs())]
    NoAnswer,
    #[error("too many requests are waiting; try again in a few seconds")]
    Busy,
}

/// See the module docs.
pub struct Fleet {
    node: String,
    store: Arc<dyn FleetStore>,
    retention: Duration,
    state: Mutex<State>,
    live: Mutex<HashMap<String, Live>>,
    asks: Mutex<HashMap<String, (String, oneshot::Sender<String>)>>,
    changes: broadcast::Sender<FleetChange>,
    /// The bridge is shutting down: tills leaving now left because it stopped.
    stopping: AtomicBool,
    /// The latest sequence this node has delivered (for how far behind a till is).
    latest_seq: Arc<std::sync::atomic::AtomicU64>,
    cluster: Option<cluster::FleetCluster>,
}

/// The records and what is waiting to be written.
#[derive(Default)]
struct State {
    /// Boxed: a till's record is a few hundred bytes, and a table sized by powers of two
    /// would keep room for up to as many again inline (every node holds the whole fleet).
    tills: HashMap<String, Box<TillRecord>>,
    dirty: HashSet<String>,
    timeline: Vec<(String, TimelineEntry)>,
    forget: Vec<String>,
}

/// The key of a till: its id, or its socket when it did not say who it is.
pub fn key_of(identity: Option<&TillIdentity>, sid: Sid) -> String {
    match identity {
        Some(identity) => identity.till_id.clone(),
        None => format!("sid:{sid}"),
    }
}

impl Fleet {
    /// A fleet kept in `store` (its records loaded now), named `node`, forgetting offline
    /// tills after `retention`. Starts its writer (stopped when the fleet is dropped).
    pub async fn start(
        node: String,
        store: Arc<dyn FleetStore>,
        retention: Duration,
        latest_seq: Arc<std::sync::atomic::AtomicU64>,
        cluster: Option<cluster::FleetCluster>,
    ) -> Result<Arc<Fleet>, StoreError> {
        let loaded = store.load().await?;
        let now = Utc::now();
        let mut state = State::default();
        let alone = cluster.is_none();
        for mut record in loaded {
            // Alone, a till still online in the store was online when the bridge stopped
            // without saying goodbye (a crash): it is not now.
            if alone && record.status == FleetStatus::Online {
                record.status = FleetStatus::Offline;
                record.end_reason = Some(EndReason::BridgeStopped);
                record.offline_since = Some(record.last_seen);
                record.queued_bytes = 0;
                state
                    .timeline
                    .push((record.key.clone(), entry(now, FleetStatus::Offline, "the bridge stopped".into())));
                state.dirty.insert(record.key.clone());
            }
            state.tills.insert(record.key.clone(), Box::new(record));
        }
        let (changes, _) = broadcast::channel(STREAM_BACKLOG);
        let fleet = Arc::new(Fleet {
            node,
            store,
            retention,
            state: Mutex::new(state),
            live: Mutex::new(HashMap::new()),
            asks: Mutex::new(HashMap::new()),
            changes,
            stopping: AtomicBool::new(false),
            latest_seq,
            cluster,
        });
        fleet.sweep(now);
        tokio::spawn(write_loop(Arc::downgrade(&fleet)));
        if let Some(cluster) = &fleet.cluster {
            cluster.start(Arc::downgrade(&fleet));
        }
        tracing::info!(node = %fleet.node, store = fleet.store.kind(), tills = fleet.len(), "fleet loaded");
        Ok(fleet)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Tills kept.
    pub fn len(&self) -> usize {
        self.lock().tills.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows changes as they happen (for the live stream).
    pub fn subscribe(&self) -> broadcast::Receiver<FleetChange> {
        self.changes.subscribe()
    }

    /// Changes `key`'s record with `change` (created when new), notes it for the writer and
    /// tells the live stream. `entry` goes on its timeline.
    fn update(
        &self,
        key: &str,
        identity: Option<&TillIdentity>,
        entry: Option<TimelineEntry>,
        change: impl FnOnce(&mut TillRecord),
    ) {
        let now = Utc::now();
        let changed = {
            let mut state = self.lock();
            // Looked up first: a key is copied only for a till seen for the first time.
            if !state.tills.contains_key(key) {
                let record = TillRecord::new(key.to_owned(), identity.cloned(), &self.node, now);
                state.tills.insert(key.to_owned(), Box::new(record));
            }
            let record = state.tills.get_mut(key).expect("just made sure");
            if let Some(identity) = identity
                && record.identity.as_deref() != Some(identity)
            {
                record.identity = Some(Box::new(identity.clone()));
            }
            change(record);
            let changed = (self.changes.receiver_count() > 0).then(|| record.clone());
            if !state.dirty.contains(key) {
                state.dirty.insert(key.to_owned());
            }
            if let Some(entry) = entry {
                state.timeline.push((key.to_owned(), entry));
            }
            changed
        };
        if let Some(record) = changed {
            let _ = self.changes.send(FleetChange::Till(record));
        }
    }

    /// A till connected to this node.
    #[allow(clippy::too_many_arguments)]
    pub fn connected(
        &self,
        key: &str,
        identity: Option<&TillIdentity>,
        user: Option<String>,
        source: Option<std::net::IpAddr>,
        socket: &SocketRef,
        account: Arc<Account>,
    ) {
        let now = Utc::now();
        let transport = transport_name(socket);
        account.note_latest(self.latest_seq.load(Ordering::Relaxed));
        self.live().insert(key.to_owned(), Live { sid: socket.id, socket: socket.clone(), account });
        let detail = format!("online on {} ({transport})", self.node);
        self.update(key, identity, Some(entry(now, FleetStatus::Online, detail)), |r| {
            r.status = FleetStatus::Online;
            r.node = self.node.clone();
            r.user = user;
            r.source = source.map(|s| s.to_string());
            r.transport = Some(transport.to_owned());
            r.end_reason = None;
            r.connected_since = Some(now);
            r.offline_since = None;
            r.last_seen = now;
            r.deliveries = 0;
            r.queued_bytes = 0;
            r.behind = 0;
            r.connections += 1;
        });
    }

    /// A till's socket `sid` left this node, for `reason`. Ignored when the till has
    /// another connection by now (a reconnect can arrive before the old one's goodbye).
    pub fn disconnected(&self, key: &str, sid: Sid, reason: EndReason) {
        let live = {
            let mut live = self.live();
            match live.get(key) {
                Some(l) if l.sid == sid => live.remove(key),
                _ => return,
            }
        };
        let reason = if self.stopping.load(Ordering::Relaxed) { EndReason::BridgeStopped } else { reason };
        let now = Utc::now();
        let counters = live.map(|l| (l.account.delivered(), l.account.last_seq()));
        let status = if reason == EndReason::CutTooSlow { FleetStatus::Cut } else { FleetStatus::Offline };
        self.update(key, None, Some(entry(now, status, reason.text().into())), |r| {
            r.status = status;
            r.end_reason = Some(reason);
            r.offline_since = Some(now);
            r.last_seen = now;
            r.queued_bytes = 0;
            if let Some((delivered, _)) = counters {
                r.deliveries = delivered;
            }
            if reason == EndReason::CutTooSlow {
                r.cuts += 1;
            }
        });
    }

    /// A till's handshake was refused with `code`.
    pub fn refused(&self, key: &str, identity: Option<&TillIdentity>, code: &str, source: Option<std::net::IpAddr>) {
        let online_here = self.live().contains_key(key);
        let now = Utc::now();
        let detail = format!("refused: {code}");
        self.update(key, identity, Some(entry(now, FleetStatus::Refused, detail)), |r| {
            r.refusals += 1;
            r.refusal_code = Some(code.to_owned());
            r.last_seen = now;
            if let Some(source) = source {
                r.source = Some(source.to_string());
            }
            // A till connected here on another socket stays online; the refusal is counted.
            if !online_here && r.status != FleetStatus::Online {
                r.status = FleetStatus::Refused;
                r.end_reason = Some(EndReason::Refused);
                r.offline_since = r.offline_since.or(Some(now));
            }
        });
    }

    /// A till's health report (already checked). Only from its live socket.
    pub fn reported(&self, key: &str, sid: Sid, report: TillReport) -> bool {
        if self.live().get(key).is_none_or(|l| l.sid != sid) {
            return false;
        }
        let now = Utc::now();
        self.update(key, None, None, |r| {
            r.report = Some(Box::new(report));
            r.report_at = Some(now);
            r.last_seen = now;
        });
        true
    }

    /// Forgets `key` (support asked); false when there was no such till.
    pub fn forget(&self, key: &str) -> bool {
        let known = {
            let mut state = self.lock();
            let known = state.tills.remove(key).is_some();
            if known {
                state.dirty.remove(key);
                state.timeline.retain(|(k, _)| k != key);
                state.forget.push(key.to_owned());
            }
            known
        };
        if known {
            let _ = self.changes.send(FleetChange::Forgot(key.to_owned()));
        }
        known
    }

    /// The bridge is stopping: tills leaving from now on left because it stopped.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Writes what is waiting now (shutdown).
    pub async fn flush(&self) {
        self.write_pending().await;
    }

    /// A copy of every record, with this node's live counters filled in.
    pub fn records(&self) -> Vec<TillRecord> {
        let counters = self.live_counters();
        let state = self.lock();
        state
            .tills
            .values()
            .map(|r| {
                let mut r = TillRecord::clone(r);
                if let Some((delivered, queued, behind)) = counters.get(&r.key) {
                    r.deliveries = *delivered;
                    r.queued_bytes = *queued;
                    r.behind = *behind;
                }
                r
            })
            .collect()
    }

    /// The page `query` asks for, as the API answers it: counted and sorted under the
    /// lock over references, only the page's tills copied out, then their live counters
    /// filled in (no copy of the whole fleet per request).
    pub fn page(&self, query: &FleetQuery) -> serde_json::Value {
        let mut page = {
            let state = self.lock();
            let page = record::page(state.tills.values().map(|r| &**r), query, Utc::now());
            serde_json::to_value(&page).unwrap_or_default()
        };
        self.fill_counters(&mut page["tills"]);
        page
    }

    /// The counts and the newest version (the live stream's `counts` event).
    pub fn counts(&self) -> (record::FleetCounts, Option<String>) {
        let state = self.lock();
        let query = FleetQuery { per_page: Some(1), ..FleetQuery::default() };
        let page = record::page(state.tills.values().map(|r| &**r), &query, Utc::now());
        (page.counts, page.latest_version)
    }

    /// This node's live counters into each till (JSON) connected here.
    fn fill_counters(&self, tills: &mut serde_json::Value) {
        let Some(tills) = tills.as_array_mut() else { return };
        let accounts: Vec<Option<Arc<Account>>> = {
            let live = self.live();
            tills.iter().map(|t| t["key"].as_str().and_then(|k| live.get(k)).map(|l| l.account.clone())).collect()
        };
        for (till, account) in tills.iter_mut().zip(accounts) {
            if let Some(account) = account {
                let (delivered, queued, behind) = self.counters_of(&account);
                till["deliveries"] = delivered.into();
                till["queued_bytes"] = queued.into();
                till["behind"] = behind.into();
                till["lagging"] = (behind >= record::LAGGING_BEHIND).into();
            }
        }
    }

    /// One till, with its live counters.
    pub fn record(&self, key: &str) -> Option<TillRecord> {
        let mut record = self.lock().tills.get(key).map(|r| TillRecord::clone(r))?;
        if let Some(live) = self.live().get(key) {
            let (delivered, queued, behind) = self.counters_of(&live.account);
            record.deliveries = delivered;
            record.queued_bytes = queued;
            record.behind = behind;
        }
        Some(record)
    }

    /// `key`'s timeline, oldest first (what is written and what is still waiting).
    pub async fn timeline(&self, key: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut entries = self.store.timeline(key).await?;
        entries.extend(self.lock().timeline.iter().filter(|(k, _)| k == key).map(|(_, e)| e.clone()));
        let extra = entries.len().saturating_sub(record::TIMELINE_MAX);
        entries.drain(..extra);
        Ok(entries)
    }

    fn counters_of(&self, account: &Account) -> (u64, u64, u64) {
        let latest = self.latest_seq.load(Ordering::Relaxed);
        (account.delivered(), account.queued().unwrap_or(0), latest.saturating_sub(account.last_seq()))
    }

    fn live_counters(&self) -> HashMap<String, (u64, u64, u64)> {
        let accounts: Vec<(String, Arc<Account>)> =
            self.live().iter().map(|(k, l)| (k.clone(), l.account.clone())).collect();
        accounts.into_iter().map(|(k, a)| (k, self.counters_of(&a))).collect()
    }

    /// Asks till `key` for its Diagnostics text (through its node when it is on another).
    pub async fn ask_diagnostics(&self, key: &str) -> Result<String, AskError> {
        let socket = self.live().get(key).map(|l| l.socket.clone());
        if let Some(socket) = socket {
            return self.ask_here(key, &socket).await;
        }
        let elsewhere = self
            .lock()
            .tills
            .get(key)
            .filter(|r| r.status == FleetStatus::Online && r.node != self.node)
            .map(|r| r.node.clone());
        match (&self.cluster, elsewhere) {
            (Some(cluster), Some(node)) => cluster.ask(&node, key).await,
            _ => Err(AskError::NotOnline),
        }
    }

    /// Asks the till on `socket` (connected here).
    async fn ask_here(&self, key: &str, socket: &SocketRef) -> Result<String, AskError> {
        let id = random_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut asks = self.asks.lock().unwrap_or_else(|e| e.into_inner());
            if asks.len() >= ASKS_MAX {
                return Err(AskError::Busy);
            }
            asks.insert(id.clone(), (key.to_owned(), tx));
        }
        let sent = socket.emit(events::DIAGNOSTICS, &DiagnosticsAsk { id: id.clone() }).is_ok();
        let answer = if sent { tokio::time::timeout(ASK_TIMEOUT, rx).await.ok().and_then(Result::ok) } else { None };
        self.asks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        answer.ok_or(AskError::NoAnswer)
    }

    /// Asks a till connected here on behalf of another node (cluster mode).
    pub(crate) async fn ask_for_node(&self, key: &str) -> Result<String, AskError> {
        let socket = self.live().get(key).map(|l| l.socket.clone()).ok_or(AskError::NotOnline)?;
        self.ask_here(key, &socket).await
    }

    /// A till's answer to a request: taken only from the till that was asked, on its live socket.
    pub fn answered(&self, key: &str, sid: Sid, answer: DiagnosticsAnswer) -> bool {
        if self.live().get(key).is_none_or(|l| l.sid != sid) {
            return false;
        }
        let mut asks = self.asks.lock().unwrap_or_else(|e| e.into_inner());
        match asks.get(&answer.id) {
            Some((asked, _)) if asked == key => {
                let (_, tx) = asks.remove(&answer.id).expect("just found");
                tx.send(answer.text).is_ok()
            }
            _ => false,
        }
    }

    /// Records from another node (cluster mode): taken into the view, not written again.
    pub(crate) fn take_remote(&self, records: Vec<TillRecord>) {
        let mut changed = Vec::new();
        let here: HashSet<String> = self.live().keys().cloned().collect();
        {
            let mut state = self.lock();
            for record in records {
                // A till connected here now knows better than an older word from elsewhere.
                if here.contains(&record.key) && record.node != self.node {
                    continue;
                }
                if self.changes.receiver_count() > 0 {
                    changed.push(FleetChange::Till(Box::new(record.clone())));
                }
                state.tills.insert(record.key.clone(), Box::new(record));
            }
        }
        for change in changed {
            let _ = self.changes.send(change);
        }
    }

    /// Forgotten on another node (cluster mode).
    pub(crate) fn forget_remote(&self, keys: Vec<String>) {
        for key in keys {
            if self.lock().tills.remove(&key).is_some() {
                let _ = self.changes.send(FleetChange::Forgot(key));
            }
        }
    }

    /// Tills online on `nodes` (other nodes whose lease ran out) turn offline.
    pub(crate) fn nodes_lost(&self, nodes: &HashSet<String>) {
        let lost: Vec<String> = self
            .lock()
            .tills
            .values()
            .filter(|r| r.status == FleetStatus::Online && nodes.contains(&r.node))
            .map(|r| r.key.clone())
            .collect();
        let now = Utc::now();
        for key in lost {
            let reason = EndReason::BridgeNodeLost;
            self.update(&key, None, Some(entry(now, FleetStatus::Offline, reason.text().into())), |r| {
                r.status = FleetStatus::Offline;
                r.end_reason = Some(reason);
                r.offline_since = Some(now);
                r.queued_bytes = 0;
            });
        }
    }

    /// Other nodes this fleet believes have online tills.
    pub(crate) fn nodes_with_online_tills(&self) -> HashSet<String> {
        self.lock()
            .tills
            .values()
            .filter(|r| r.status == FleetStatus::Online && r.node != self.node)
            .map(|r| r.node.clone())
            .collect()
    }

    /// Forgets tills offline past their retention (identified: the configured one;
    /// unidentified: a day), and the oldest past [`TILLS_MAX`].
    fn sweep(&self, now: DateTime<Utc>) {
        let retention = chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let unidentified = chrono::Duration::from_std(UNIDENTIFIED_RETENTION).unwrap_or(chrono::Duration::MAX);
        let mut gone: Vec<String> = {
            let state = self.lock();
            let mut offline: Vec<(&TillRecord, DateTime<Utc>)> = state
                .tills
                .values()
                .filter(|r| r.status != FleetStatus::Online)
                .map(|r| (&**r, r.offline_since.unwrap_or(r.last_seen)))
                .collect();
            let mut gone: Vec<String> = offline
                .iter()
                .filter(|(r, since)| {
                    let keep = if r.is_identified() { retention } else { unidentified };
                    now - *since > keep
                })
                .map(|(r, _)| r.key.clone())
                .collect();
            let over = state.tills.len().saturating_sub(gone.len()).saturating_sub(TILLS_MAX);
            if over > 0 {
                offline.sort_by_key(|(_, since)| *since);
                let already: HashSet<String> = gone.iter().cloned().collect();
                gone.extend(
                    offline.iter().filter(|(r, _)| !already.contains(&r.key)).take(over).map(|(r, _)| r.key.clone()),
                );
            }
            gone
        };
        if !gone.is_empty() {
            tracing::info!(tills = gone.len(), "fleet: forgetting tills past their retention");
        }
        for key in gone.drain(..) {
            self.forget(&key);
        }
    }

    /// Writes everything waiting, in one batch (records with this node's live counters).
    async fn write_pending(&self) {
        let batch = {
            let mut state = self.lock();
            if state.dirty.is_empty() && state.timeline.is_empty() && state.forget.is_empty() {
                return;
            }
            let dirty: Vec<String> = state.dirty.drain().collect();
            let records: Vec<TillRecord> =
                dirty.iter().filter_map(|k| state.tills.get(k)).map(|r| TillRecord::clone(r)).collect();
            Batch { records, timeline: std::mem::take(&mut state.timeline), forget: std::mem::take(&mut state.forget) }
        };
        let mut batch = batch;
        // This node's live counters, for the tills written that are connected here.
        let accounts: Vec<Option<Arc<Account>>> = {
            let live = self.live();
            batch.records.iter().map(|r| live.get(&r.key).map(|l| l.account.clone())).collect()
        };
        for (record, account) in batch.records.iter_mut().zip(accounts) {
            if let Some(account) = account {
                (record.deliveries, record.queued_bytes, record.behind) = self.counters_of(&account);
            }
        }
        let (records, forgot) = (batch.records.clone(), batch.forget.clone());
        match self.store.write(batch.clone()).await {
            Ok(()) => {
                metrics::counter!(m::FLEET_WRITES).increment(1);
                metrics::counter!(m::FLEET_RECORDS_WRITTEN).increment(records.len() as u64);
                if let Some(cluster) = &self.cluster {
                    cluster.publish(records, forgot).await;
                }
            }
            Err(e) => {
                metrics::counter!(m::FLEET_WRITE_FAILURES).increment(1);
                tracing::warn!("{e}; trying again in a second");
                // Put it back to be written with the next batch (bounded).
                let mut state = self.lock();
                state.dirty.extend(batch.records.into_iter().map(|r| r.key));
                let mut timeline = batch.timeline;
                timeline.append(&mut state.timeline);
                let extra = timeline.len().saturating_sub(PENDING_TIMELINE_MAX);
                if extra > 0 {
                    tracing::warn!(entries = extra, "fleet: the store is down; oldest timeline entries dropped");
                    timeline.drain(..extra);
                }
                state.timeline = timeline;
                state.forget.extend(batch.forget);
            }
        }
    }

    /// Tills by state and by version, for `/metrics` (counted under the lock over
    /// borrowed names; only the 20 versions most run are copied out).
    fn publish_metrics(&self) {
        let now = Utc::now();
        let mut by_state = [0u64; 5];
        let versions: Vec<(String, u64)> = {
            let state = self.lock();
            let mut by_version: HashMap<&str, u64> = HashMap::new();
            for record in state.tills.values() {
                let shown = record.shown(now);
                by_state[record::Shown::ALL.iter().position(|s| *s == shown).unwrap_or(0)] += 1;
                if record.is_identified() {
                    *by_version.entry(record.version()).or_default() += 1;
                }
            }
            let mut versions: Vec<(&str, u64)> = by_version.into_iter().collect();
            versions.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
            versions.into_iter().take(20).map(|(v, n)| (v.to_owned(), n)).collect()
        };
        for (shown, count) in record::Shown::ALL.iter().zip(by_state) {
            metrics::gauge!(m::FLEET_TILLS, "state" => shown.as_str()).set(count as f64);
        }
        for (version, count) in versions {
            let version = if version.is_empty() { "unknown".to_owned() } else { version };
            metrics::gauge!(m::FLEET_TILLS_BY_VERSION, "version" => version).set(count as f64);
        }
    }
}

/// The writer: every [`WRITE_EVERY`], what changed; every [`METRICS_EVERY`], the gauges;
/// every [`SWEEP_EVERY`], retention.
async fn write_loop(fleet: Weak<Fleet>) {
    let mut tick = tokio::time::interval(WRITE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = tokio::time::Instant::now();
    let mut last_metrics: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let Some(fleet) = fleet.upgrade() else { return };
        if last_sweep.elapsed() >= SWEEP_EVERY {
            fleet.sweep(Utc::now());
            last_sweep = tokio::time::Instant::now();
        }
        fleet.write_pending().await;
        if last_metrics.is_none_or(|at| at.elapsed() >= METRICS_EVERY) {
            fleet.publish_metrics();
            last_metrics = Some(tokio::time::Instant::now());
        }
    }
}

fn entry(at: DateTime<Utc>, status: FleetStatus, detail: String) -> TimelineEntry {
    TimelineEntry { at, status, detail }
}

fn transport_name(socket: &SocketRef) -> &'static str {
    match socket.transport_type() {
        socketioxide::TransportType::Websocket => "websocket",
        socketioxide::TransportType::Polling => "polling",
    }
}

/// A random id (requests, node names).
pub fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 8] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name this node goes by: `STOCK_BRIDGE_NODE_NAME`, else the host's name and a random
/// suffix (unique per start, so a restarted node holds a new lease).
pub fn node_name(configured: Option<&str>) -> String {
    if let Some(name) = configured.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "bridge".to_owned());
    format!("{host}-{}", &random_id()[..6])
}

/// What a [`socketioxide::socket::DisconnectReason`] means for a till.
pub fn end_reason(reason: socketioxide::socket::DisconnectReason, account: Option<&Account>) -> EndReason {
    use socketioxide::socket::DisconnectReason as D;
    match reason {
        D::HeartbeatTimeout => EndReason::PingTimeout,
        D::TransportClose | D::ClientNSDisconnect | D::TransportError => EndReason::TransportClosed,
        D::ClosingServer => EndReason::BridgeStopped,
        D::ServerNSDisconnect if account.is_some_and(Account::is_doomed) => EndReason::CutTooSlow,
        D::ServerNSDisconnect if account.is_some_and(Account::token_expired) => EndReason::TokenExpired,
        D::ServerNSDisconnect => EndReason::BridgeStopped,
        D::MultipleHttpPollingError | D::PacketParsingError => EndReason::Other,
    }
}

/// The live stream's counts line (sent when they change).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StreamCounts {
    pub counts: record::FleetCounts,
}
