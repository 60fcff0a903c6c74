//! Scale-out through Redis: several bridge nodes behind a load balancer share broadcasts
//! and the last-value cache.
//!
//! - [`FanoutChannel`]: one Redis pub/sub channel carries every broadcast to every node,
//!   once per run of events (a batch's run for the same recipients is one message), as a
//!   [`crate::encoded::RunMessage`]: the events' packets, encoded once by the node that
//!   took the broadcast, which each node slices out and hands on without parsing them. Every node, the one that published it too, hands what it receives to
//!   its own fan-out worker: the same path, byte accounting and slow-client cut as a
//!   bridge alone (socketioxide's Redis adapter fanned out with neither: a 2 KB/s reader on
//!   one node took it from 16 to 134 MiB and lost 804 events without a word; issue 22 F12).
//!   Since every node delivers in the channel's order, all nodes deliver in one order.
//!   The pub/sub connection is a redis `ConnectionManager`, which reconnects and
//!   re-subscribes by itself, so a node recovers when Redis comes back.
//! - [`RedisLastValues`]: the catch-up cache in Redis (sequence, epoch, latest per product),
//!   so catch-up works whichever node a client reconnects to. The epoch lives in Redis: it
//!   changes only when Redis loses its data. A batch is numbered and kept in one script
//!   call (all of it or none), not a call per event.
//! - [`RedisHealth`]: a ping every second; while Redis is unreachable `/readyz` says so,
//!   broadcasts are refused with 503 (they could not reach the other nodes), and local
//!   clients stay connected.

use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use stock_protocol::delivery::CatchUpItem;
use stock_protocol::{CatchUp, CatchUpRequest, DeliveryMeta};
use tokio::sync::mpsc;

/// How long one Redis command may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs received from Redis and not yet taken by this node's fan-out, at most (in
/// messages and in bytes); past either, a run is dropped, counted
/// ([`m::CLUSTER_RUNS_DROPPED`]) and logged: the pub/sub connection is never stalled.
pub const INBOX_RUNS: usize = 4096;
/// See [`INBOX_RUNS`].
pub const INBOX_BYTES: usize = 64 * 1024 * 1024;

/// This node's end of the cluster's fan-out channel; see the module docs.
pub struct FanoutChannel {
    conn: ConnectionManager,
    name: String,
}

/// Runs received from the channel, in its order, each with its size (see [`INBOX_BYTES`]).
pub struct Inbox {
    runs: mpsc::Receiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next run, or None once the channel's connection is gone for good.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        let run = self.runs.recv().await?;
        self.queued.fetch_sub(run.len(), Ordering::Relaxed);
        Some(run)
    }
}

/// Fleet messages received and not yet taken at most (past it one is dropped and said).
pub const FLEET_INBOX: usize = 1024;

/// What cluster mode opens: the fan-out channel and its inbox, the fleet channel's inbox
/// (`{prefix}:fleet`, see [`crate::fleet::cluster`]) and a connection for commands.
pub struct Connected {
    pub channel: FanoutChannel,
    pub inbox: Inbox,
    pub fleet_inbox: mpsc::Receiver<Vec<u8>>,
    pub commands: ConnectionManager,
}

/// Opens what cluster mode needs: the fan-out channel `{prefix}:fanout` and the fleet
/// channel `{prefix}:fleet` (both subscribed on one connection, each with its inbox) and a
/// connection for commands.
pub async fn connect(url: &str, prefix: &str) -> Result<Connected, redis::RedisError> {
    let url = if url.contains("protocol=") {
        url.to_owned()
    } else {
        format!("{url}{}protocol=resp3", if url.contains('?') { '&' } else { '?' })
    };
    let client = redis::Client::open(url)?;
    let name = format!("{prefix}:fanout");
    let fleet = format!("{prefix}:fleet");
    let (tx, runs) = mpsc::channel(INBOX_RUNS);
    let (fleet_tx, fleet_inbox) = mpsc::channel(FLEET_INBOX);
    let queued = Arc::new(AtomicUsize::new(0));
    let counted = queued.clone();
    let fleet_name = fleet.clone();
    let config = manager_config()
        .set_push_sender(move |msg: redis::PushInfo| {
            let on_fleet = msg
                .data
                .first()
                .is_some_and(|channel| redis::from_redis_value_ref::<String>(channel).is_ok_and(|c| c == fleet_name));
            if on_fleet {
                take_fleet(msg, &fleet_tx)
            } else {
                take(msg, &tx, &counted)
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .set_automatic_resubscription();
    let mut pubsub = client.get_connection_manager_with_config(config).await?;
    pubsub.subscribe(name.as_str()).await?;
    pubsub.subscribe(fleet.as_str()).await?;
    let commands = client.get_connection_manager_with_config(manager_config()).await?;
    Ok(Connected {
        channel: FanoutChannel { conn: pubsub, name },
        inbox: Inbox { runs, queued },
        fleet_inbox,
        commands,
    })
}

/// A message on the fleet channel: handed on, never waited for (a full inbox drops it).
fn take_fleet(msg: redis::PushInfo, inbox: &mpsc::Sender<Vec<u8>>) {
    if !matches!(msg.kind, redis::PushKind::Message | redis::PushKind::SMessage) || msg.data.len() < 2 {
        return;
    }
    let Some(payload) = msg.data.into_iter().nth(1) else { return };
    let Ok(message) = redis::from_redis_value::<Vec<u8>>(payload) else { return };
    if inbox.try_send(message).is_err() {
        metrics::counter!(m::FLEET_MESSAGES_DROPPED).increment(1);
        tracing::warn!("this node's fleet inbox is full: a fleet message was dropped");
    }
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1))
}

/// Called by redis for each message pushed on the pub/sub connection: never waits.
fn take(msg: redis::PushInfo, inbox: &mpsc::Sender<Vec<u8>>, queued: &AtomicUsize) {
    if !matches!(msg.kind, redis::PushKind::Message | redis::PushKind::SMessage) || msg.data.len() < 2 {
        return;
    }
    let Some(payload) = msg.data.into_iter().nth(1) else { return };
    let Ok(run) = redis::from_redis_value::<Vec<u8>>(payload) else { return };
    let len = run.len();
    if queued.fetch_add(len, Ordering::Relaxed) + len > INBOX_BYTES || inbox.try_send(run).is_err() {
        queued.fetch_sub(len, Ordering::Relaxed);
        metrics::counter!(m::CLUSTER_RUNS_DROPPED).increment(1);
        tracing::error!(bytes = len, "this node's cluster inbox is full: a broadcast was dropped here");
    }
}

impl FanoutChannel {
    /// The pub/sub connection (pinged by [`RedisHealth`], which also makes it reconnect).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Sends `run` (an encoded [`crate::encoded::RunMessage`]) to every node, this one too.
    pub async fn publish(&self, bytes: Vec<u8>) -> Result<(), RedisDown> {
        self.conn.clone().publish::<_, _, redis::Value>(self.name.as_str(), bytes).await.map_err(|e| {
            tracing::warn!("cluster fan-out failed: {e}");
            RedisDown
        })?;
        Ok(())
    }
}

/// Rounds of pings in a row without every answer before Redis counts as down. One late
/// answer is not an outage: a node taking a crowd of reconnecting tills queues its PING
/// behind their catch-ups on the same connection, and with one round (before) it refused
/// broadcasts for a second right after a node was killed (the 36,000-till kill run). A
/// broadcast that fails to reach Redis meanwhile is still answered 503.
pub const DOWN_AFTER_FAILED_ROUNDS: u32 = 3;

/// Whether Redis counts as up after `failed_in_a_row` rounds of pings without every answer.
pub fn still_up(failed_in_a_row: u32) -> bool {
    failed_in_a_row < DOWN_AFTER_FAILED_ROUNDS
}

/// Redis is unreachable (the text is shown to the caller of `POST /broadcast`).
#[derive(Debug, thiserror::Error)]
#[error("Redis is unreachable, so broadcasts cannot reach the other bridge nodes")]
pub struct RedisDown;

/// Whether Redis answered lately; see the module docs.
pub struct RedisHealth {
    up: AtomicBool,
}

impl RedisHealth {
    /// Starts pinging every connection every second (a failed ping also makes a
    /// connection reconnect, and the pub/sub one re-subscribe); up when all answer, down
    /// after [`DOWN_AFTER_FAILED_ROUNDS`] rounds in a row without.
    pub fn watch(conns: Vec<ConnectionManager>) -> (Arc<RedisHealth>, tokio::task::JoinHandle<()>) {
        let health = Arc::new(RedisHealth { up: AtomicBool::new(true) });
        let weak = Arc::downgrade(&health);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut failed_in_a_row = 0u32;
            loop {
                tick.tick().await;
                let Some(health) = weak.upgrade() else { return };
                let mut answered = true;
                for conn in &conns {
                    let pong = tokio::time::timeout(
                        REDIS_TIMEOUT,
                        redis::cmd("PING").query_async::<redis::Value>(&mut conn.clone()),
                    )
                    .await;
                    answered &= matches!(pong, Ok(Ok(_)));
                }
                failed_in_a_row = if answered { 0 } else { failed_in_a_row + 1 };
                health.set(still_up(failed_in_a_row));
            }
        });
        (health, task)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn set(&self, up: bool) {
        let was = self.up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!("Redis is reachable again: cluster broadcasts resume");
            } else {
                tracing::error!(
                    "Redis is unreachable: refusing broadcasts until it is back; local clients stay connected"
                );
            }
        }
        metrics::gauge!(m::REDIS_UP).set(if up { 1.0 } else { 0.0 });
    }
}

/// The last-value cache in Redis; see the module docs. Keys start with `prefix`.
pub struct RedisLastValues {
    conn: ConnectionManager,
    prefix: String,
    max_products: usize,
}

/// Records snapshots atomically, in order: each its next sequence, latest value and place
/// in the change order; then eviction. One call for a whole batch: a round trip per event
/// held a batch of 1,000 back about 250 ms before its fan-out could start.
/// KEYS: seq, latest, order, evicted, epoch. ARGV: max products, new epoch, then product
/// and data for each snapshot. Returns the epoch and each snapshot's sequence.
const RECORD: &str = r#"
local epoch = redis.call('GET', KEYS[5])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[5], epoch)
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
end
local seqs = {}
for i = 3, #ARGV, 2 do
  local seq = redis.call('INCR', KEYS[1])
  redis.call('HSET', KEYS[2], ARGV[i], seq .. '\n' .. ARGV[i + 1])
  redis.call('ZADD', KEYS[3], seq, ARGV[i])
  seqs[#seqs + 1] = seq
end
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[1])
if extra > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[3], extra)
  local top = tonumber(redis.call('GET', KEYS[4]) or '0')
  for i = 1, #popped, 2 do
    redis.call('HDEL', KEYS[2], popped[i])
    top = math.max(top, tonumber(popped[i + 1]))
  end
  redis.call('SET', KEYS[4], top)
end
return {epoch, seqs}
"#;

impl RedisLastValues {
    pub fn new(conn: ConnectionManager, prefix: &str, max_products: usize) -> Self {
        RedisLastValues { conn, prefix: prefix.to_owned(), max_products: max_products.max(1) }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// Numbers and keeps each of `snapshots` (product, data), in order, in one call: all of
    /// them or none.
    pub async fn record_all(&self, snapshots: &[(i64, &RawValue)]) -> Result<Vec<DeliveryMeta>, RedisDown> {
        if snapshots.is_empty() {
            return Ok(Vec::new());
        }
        let script = redis::Script::new(RECORD);
        let mut call = script.prepare_invoke();
        for key in ["seq", "latest", "order", "evicted", "epoch"] {
            call.key(self.key(key));
        }
        call.arg(self.max_products).arg(LastValueCache::new_epoch());
        for (product_id, data) in snapshots {
            call.arg(product_id).arg(data.get());
        }
        let (epoch, seqs) = call.invoke_async::<(String, Vec<u64>)>(&mut self.conn.clone()).await.map_err(|e| {
            tracing::warn!("recording in Redis failed: {e}");
            RedisDown
        })?;
        if seqs.len() != snapshots.len() {
            tracing::warn!(asked = snapshots.len(), numbered = seqs.len(), "Redis numbered a batch wrongly");
            return Err(RedisDown);
        }
        Ok(seqs.into_iter().map(|seq| DeliveryMeta { seq, epoch: epoch.clone() }).collect())
    }

    /// As [`crate::lastvalue::LastValueCache::since`], from Redis.
    pub async fn since(&self, req: &CatchUpRequest, max_bytes: usize) -> Result<CatchUp<Arc<RawValue>>, RedisDown> {
        let mut conn = self.conn.clone();
        let down = |e: redis::RedisError| {
            tracing::warn!("reading the catch-up from Redis failed: {e}");
            RedisDown
        };
        let (epoch, seq, evicted): (Option<String>, Option<u64>, Option<u64>) = redis::pipe()
            .get(self.key("epoch"))
            .get(self.key("seq"))
            .get(self.key("evicted"))
            .query_async(&mut conn)
            .await
            .map_err(down)?;
        let epoch = epoch.unwrap_or_default();
        let seq = seq.unwrap_or(0);
        let after = req.resume_after(&epoch, seq);
        let from = after.map_or(0, |a| a + 1);
        let products: Vec<String> = conn.zrangebyscore(self.key("order"), from, "+inf").await.map_err(down)?;
        let values: Vec<Option<String>> = if products.is_empty() {
            Vec::new()
        } else {
            redis::cmd("HMGET").arg(self.key("latest")).arg(&products).query_async(&mut conn).await.map_err(down)?
        };
        let mut found: Vec<(u64, String)> = values
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let (seq, data) = v.split_once('\n')?;
                Some((seq.parse().ok()?, data.to_owned()))
            })
            .collect();
        found.sort_by_key(|(seq, _)| *seq);
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for (item_seq, data) in found {
            if !items.is_empty() && bytes + data.len() > max_bytes {
                more = true;
                break;
            }
            bytes += data.len();
            if let Ok(data) = RawValue::from_string(data) {
                items.push(CatchUpItem { seq: item_seq, data: Arc::from(data) });
            }
        }
        let seq = if more { items.last().map_or(seq, |i: &CatchUpItem<Arc<RawValue>>| i.seq) } else { seq };
        Ok(CatchUp {
            epoch,
            seq,
            full: after.is_none(),
            incomplete: evicted.unwrap_or(0) > after.unwrap_or(0),
            items,
            more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_late_round_of_pings_is_not_an_outage() {
        assert!(still_up(0));
        assert!(still_up(1) && still_up(DOWN_AFTER_FAILED_ROUNDS - 1));
        assert!(!still_up(DOWN_AFTER_FAILED_ROUNDS));
    }
}
