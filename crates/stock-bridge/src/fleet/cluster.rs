//! The fleet across a cluster: the fleet channel (`{prefix}:fleet`), leases and
//! Diagnostics asked of a till on another node.
//!
//! - Each node writes its own tills' changes to Redis ([`super::redis::RedisStore`]) and
//!   then says so on the fleet channel ([`Message::Changed`]); every other node takes them
//!   into its view, so a till connected to node B is online on node A's page.
//! - Each node holds a lease (`{prefix}:fleet:lease:{node}`, renewed every third of its
//!   length). Every node checks the leases of the nodes its online tills are on; when one
//!   has run out, one node (whoever takes `{prefix}:fleet:lost:{node}` first) turns that
//!   node's tills offline, "bridge node lost", and tells the others.
//! - Support's Diagnostics request for a till on another node goes there as
//!   [`Message::Ask`], and comes back as [`Message::Answer`].
//!
//! Messages reach every node, the sender too (which skips its own).

use super::{AskError, Fleet, TillRecord, random_id};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a node's lease lasts unless configured (`STOCK_BRIDGE_FLEET_LEASE_SECS`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// What travels on the fleet channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Changed { node: String, records: Vec<TillRecord> },
    Forgot { node: String, keys: Vec<String> },
    Ask { from: String, to: String, id: String, key: String },
    Answer { to: String, id: String, text: Option<String>, error: Option<String> },
}

/// This node's side of the fleet channel; see the module docs.
pub struct FleetCluster {
    commands: ConnectionManager,
    prefix: String,
    node: String,
    lease: Duration,
    inbox: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<String, AskError>>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for FleetCluster {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            task.abort();
        }
    }
}

impl FleetCluster {
    /// The fleet channel for `node`: its messages arrive on `inbox` (the cluster's pub/sub
    /// connection, [`crate::cluster::connect`]), commands go through `commands`.
    pub fn new(
        commands: ConnectionManager,
        prefix: &str,
        node: &str,
        lease: Duration,
        inbox: mpsc::Receiver<Vec<u8>>,
    ) -> Self {
        FleetCluster {
            commands,
            prefix: prefix.to_owned(),
            node: node.to_owned(),
            lease,
            inbox: Mutex::new(Some(inbox)),
            pending: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn channel(&self) -> String {
        format!("{}:fleet", self.prefix)
    }

    fn lease_key(&self, node: &str) -> String {
        format!("{}:fleet:lease:{node}", self.prefix)
    }

    /// Starts holding the lease, checking the others', and taking in the channel.
    pub(crate) fn start(&self, fleet: Weak<Fleet>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(tokio::spawn(leases(fleet.clone())));
        if let Some(inbox) = self.inbox.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tasks.push(tokio::spawn(take_in(fleet, inbox)));
        }
    }

    async fn send(&self, message: &Message) {
        let bytes = serde_json::to_vec(message).unwrap_or_default();
        let sent = self.commands.clone().publish::<_, _, redis::Value>(self.channel(), bytes).await;
        if let Err(e) = sent {
            tracing::warn!("fleet: could not tell the other nodes: {e}");
        }
    }

    /// Tells the other nodes what this node wrote.
    pub(crate) async fn publish(&self, records: Vec<TillRecord>, forgot: Vec<String>) {
        if !records.is_empty() {
            self.send(&Message::Changed { node: self.node.clone(), records }).await;
        }
        if !forgot.is_empty() {
            self.send(&Message::Forgot { node: self.node.clone(), keys: forgot }).await;
        }
    }

    /// Asks `key` (on `node`) for its Diagnostics through that node.
    pub(crate) async fn ask(&self, node: &str, key: &str) -> Result<String, AskError> {
        let id = random_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= super::ASKS_MAX {
                return Err(AskError::Busy);
            }
            pending.insert(id.clone(), tx);
        }
        let ask = Message::Ask { from: self.node.clone(), to: node.to_owned(), id: id.clone(), key: key.to_owned() };
        self.send(&ask).await;
        // The other node waits up to ASK_TIMEOUT for the till; then its answer crosses Redis.
        let answer = tokio::time::timeout(super::ASK_TIMEOUT + Duration::from_secs(2), rx).await;
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match answer {
            Ok(Ok(answer)) => answer,
            _ => Err(AskError::NoAnswer),
        }
    }

    fn resolve(&self, id: &str, answer: Result<String, AskError>) {
        if let Some(tx) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id) {
            let _ = tx.send(answer);
        }
    }
}

/// Holds this node's lease and turns the tills of nodes whose lease ran out offline.
async fn leases(fleet: Weak<Fleet>) {
    let mut tick = {
        let Some(fleet) = fleet.upgrade() else { return };
        let Some(cluster) = &fleet.cluster else { return };
        tokio::time::interval(cluster.lease / 3)
    };
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(fleet) = fleet.upgrade() else { return };
        let Some(cluster) = &fleet.cluster else { return };
        let mut conn = cluster.commands.clone();
        let lease_ms = cluster.lease.as_millis() as u64;
        let held: redis::RedisResult<()> = redis::cmd("SET")
            .arg(cluster.lease_key(&cluster.node))
            .arg(1)
            .arg("PX")
            .arg(lease_ms)
            .query_async(&mut conn)
            .await;
        if let Err(e) = held {
            tracing::warn!("fleet: could not renew this node's lease: {e}");
            continue;
        }
        let mut lost = std::collections::HashSet::new();
        for node in fleet.nodes_with_online_tills() {
            let alive: redis::RedisResult<bool> = conn.exists(cluster.lease_key(&node)).await;
            if alive == Ok(false) {
                // One node turns them offline; the others hear it on the channel.
                let claim = format!("{}:fleet:lost:{node}", cluster.prefix);
                let mine: redis::RedisResult<Option<String>> = redis::cmd("SET")
                    .arg(&claim)
                    .arg(&cluster.node)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease_ms)
                    .query_async(&mut conn)
                    .await;
                if matches!(mine, Ok(Some(_))) {
                    tracing::warn!(%node, "fleet: a bridge node's lease ran out; its tills are offline now");
                    lost.insert(node);
                }
            }
        }
        if !lost.is_empty() {
            fleet.nodes_lost(&lost);
        }
    }
}

/// Takes in the fleet channel's messages, in order.
async fn take_in(fleet: Weak<Fleet>, mut inbox: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = inbox.recv().await {
        let Some(fleet) = fleet.upgrade() else { return };
        let Some(cluster) = &fleet.cluster else { return };
        let message = match serde_json::from_slice::<Message>(&bytes) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(bytes = bytes.len(), "fleet: a message on the fleet channel cannot be read: {e}");
                continue;
            }
        };
        match message {
            Message::Changed { node, records } if node != cluster.node => fleet.take_remote(records),
            Message::Forgot { node, keys } if node != cluster.node => fleet.forget_remote(keys),
            Message::Ask { from, to, id, key } if to == cluster.node => {
                let fleet = fleet.clone();
                tokio::spawn(async move {
                    let answer = fleet.ask_for_node(&key).await;
                    let Some(cluster) = &fleet.cluster else { return };
                    let (text, error) = match answer {
                        Ok(text) => (Some(text), None),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    cluster.send(&Message::Answer { to: from, id, text, error }).await;
                });
            }
            Message::Answer { to, id, text, error } if to == cluster.node => {
                let answer = match (text, error) {
                    (Some(text), _) => Ok(text),
                    (None, _) => Err(AskError::NoAnswer),
                };
                cluster.resolve(&id, answer);
            }
            _ => {}
        }
    }
}
