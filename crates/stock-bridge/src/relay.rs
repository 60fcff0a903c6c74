//! The one path every broadcast takes to the sockets: numbering, hand-over and fan-out.
//!
//! Alone (the default), [`Relay::relay`] checks, numbers and enqueues a broadcast and
//! returns at once (the HTTP answer does not wait for the fan-out); one worker task then
//! queues it to each target socket in turn, in order, so a socket whose queue is full is
//! known and dealt with. In cluster mode (Redis), `relay` publishes each run once on the
//! cluster's channel (the HTTP answer waits for that, to report Redis trouble as 503) and
//! every node, this one too, hands what the channel brings to the same worker
//! ([`Relay::fan_out_received`]).
//!
//! Each event is encoded once ([`EncodedEvent`]), by the node that took it; every socket
//! it goes to gets a clone of the same bytes through socketioxide's `send_raw` (public in
//! our patched copy). Per socket there is only the byte accounting and the handoff.
//!
//! No lock is held across a call into socketioxide: its `disconnect()` runs our handlers
//! inline, and a lock held there froze the bridge once. The worker alone calls into it.

use crate::accounting;
use crate::audience::Audience;
use crate::audience::Target;
use crate::cluster::RedisDown;
use crate::encoded::{EncodedEvent, RunMessage};
use crate::metrics as m;
use crate::mode::Mode;
use serde_json::value::RawValue;
use socketioxide::socket::Sid;
use socketioxide::{SocketError, SocketIo, extract::SocketRef};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stock_protocol::BroadcastRequest;
use tokio::sync::mpsc;

/// The relay: the order of relays, the fan-out worker's queue (bounded in runs and in
/// bytes) and what the fan-out reaches (this node's sockets). Held by [`crate::Bridge`];
/// the worker ends when it is dropped.
pub struct Relay {
    /// Serialises relays, so sequence order is emit order.
    order: tokio::sync::Mutex<()>,
    /// To the fan-out worker.
    fanout: mpsc::Sender<Outgoing>,
    /// Payload bytes waiting for the worker, at most [`FANOUT_QUEUE_BYTES`].
    fanout_bytes: Arc<tokio::sync::Semaphore>,
    local: Arc<Local>,
}

/// This node's side of the fan-out: its sockets, and how much each may have queued.
struct Local {
    io: SocketIo,
    audience: Arc<Audience>,
    /// Bytes queued for one client at most before it is cut as too slow.
    budget: u64,
    /// The highest sequence handed to this node's sockets (how far behind one is, is
    /// measured from it).
    latest_seq: Arc<AtomicU64>,
}

impl Relay {
    /// Starts the fan-out worker for this node's sockets (`io`, `audience`), each allowed
    /// `budget` bytes in its queue; the highest sequence handed out goes to `latest_seq`.
    /// Must be called inside the tokio runtime.
    pub fn start(io: SocketIo, audience: Arc<Audience>, budget: u64, latest_seq: Arc<AtomicU64>) -> Relay {
        let local = Arc::new(Local { io, audience, budget, latest_seq });
        let (fanout, mut rx) = mpsc::channel::<Outgoing>(FANOUT_QUEUE);
        let worker = local.clone();
        tokio::spawn(async move {
            // Sockets found too slow, owned by this task alone: no lock is needed, so
            // none can be held while socketioxide runs our disconnect handler.
            let mut doomed: Vec<SocketRef> = Vec::new();
            let mut retry = tokio::time::interval(DOOMED_RETRY);
            retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    out = rx.recv() => {
                        let Some(out) = out else { return };
                        worker.send_out(out, &mut doomed).await;
                    }
                    // Also when no broadcast comes: a doomed socket's queue is freed
                    // only when socketioxide lets it go.
                    _ = retry.tick(), if !doomed.is_empty() => retry_doomed(&mut doomed),
                }
            }
        });
        Relay {
            order: tokio::sync::Mutex::new(()),
            fanout,
            fanout_bytes: Arc::new(tokio::sync::Semaphore::new(FANOUT_QUEUE_BYTES as usize)),
            local,
        }
    }
}

/// What one relay did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relayed {
    /// Local sockets the event is queued for (unknown in cluster mode).
    pub recipients: Option<usize>,
    /// Position given to an `add_stock`.
    pub seq: Option<u64>,
}

/// Broadcasts waiting for the fan-out worker at most; then `relay` waits (back-pressure on
/// the posting side, never unbounded memory).
pub const FANOUT_QUEUE: usize = 1024;
/// Payload bytes waiting for the fan-out worker at most (a run larger than this waits for
/// the queue to empty, then goes alone).
pub const FANOUT_QUEUE_BYTES: u32 = 32 * 1024 * 1024;

/// Events on their way to the fan-out worker: one broadcast, or a run of a batch's events
/// that go to the same recipients (each socket then gets them all in one go, so they can
/// leave in one write).
struct Outgoing {
    /// Each encoded once, for all its sockets.
    events: Vec<EncodedEvent>,
    /// Its sockets, each with its account (looked up once per run: the lookup showed in
    /// profiles at 5 % of the bridge's CPU when done per event and twice).
    targets: Arc<[Target]>,
    accepted: Instant,
    /// Its share of [`FANOUT_QUEUE_BYTES`], given back when it has been sent.
    _room: tokio::sync::OwnedSemaphorePermit,
}

/// A broadcast on its way through [`Relay::relay_all`]: its rooms as socketioxide takes them,
/// and the product it is the snapshot of when it is numbered and kept (an `add_stock` to
/// everyone).
struct Prepared {
    rooms: Vec<String>,
    event: String,
    data: Arc<RawValue>,
    kept: Option<i64>,
}

impl Relay {
    /// Sends `req` to its sockets. A socket whose queue is full is disconnected instead of
    /// being fed forever: it reconnects and catches up from the cache.
    pub async fn relay(&self, mode: &Mode, req: BroadcastRequest) -> Result<Relayed, RedisDown> {
        let mut relayed = self.relay_all(mode, vec![req]).await?;
        Ok(relayed.pop().expect("one event in, one out"))
    }

    /// Sends each of `reqs` (a batch) in order: each `add_stock` gets its own sequence
    /// number, and no other broadcast is numbered in between. Runs of events for the same
    /// recipients go out together.
    ///
    /// The `order` lock covers numbering and handing over (to the worker, or to Redis in
    /// cluster mode) only, so broadcasts leave in sequence order; every call into
    /// socketioxide happens in the worker, with no lock held.
    pub async fn relay_all(&self, mode: &Mode, reqs: Vec<BroadcastRequest>) -> Result<Vec<Relayed>, RedisDown> {
        let started = Instant::now();
        if !mode.is_ready() {
            return Err(RedisDown);
        }
        let mut relayed: Vec<Relayed> = Vec::with_capacity(reqs.len());
        let names: Vec<String> = reqs.iter().map(|r| r.event.clone()).collect();
        {
            let _order = self.order.lock().await;
            // Each event with its recipients; the `add_stock` snapshots to everyone are
            // numbered and kept, all in one go.
            let reqs: Vec<Prepared> = reqs
                .into_iter()
                .map(|BroadcastRequest { event, data, snapshot, to }| {
                    let rooms = to.iter().map(|r| r.as_str().to_owned()).collect();
                    // Kept (and numbered) when it is a snapshot for everyone.
                    let kept = snapshot.filter(|_| to.is_empty()).map(|s| s.product_id);
                    Prepared { rooms, event, data: Arc::from(data), kept }
                })
                .collect();
            let kept: Vec<(i64, Arc<RawValue>)> =
                reqs.iter().filter_map(|r| r.kept.map(|product_id| (product_id, r.data.clone()))).collect();
            let mut metas = mode.record_all(&kept, started).await?.into_iter();
            // The run being gathered: its recipients, its events, and where its answers start.
            let mut run: Option<(Vec<String>, Vec<EncodedEvent>, usize)> = None;
            for Prepared { rooms, event, data, kept } in reqs {
                if run.as_ref().is_some_and(|(r, ..)| *r != rooms)
                    && let Some((rooms, events, first)) = run.take()
                {
                    self.dispatch(mode, rooms, events, &mut relayed[first..], started).await?;
                }
                let meta = kept.and_then(|_| metas.next());
                relayed.push(Relayed { recipients: None, seq: meta.as_ref().map(|m| m.seq) });
                let event = EncodedEvent::new(&event, &data, meta.as_ref());
                run.get_or_insert_with(|| (rooms, Vec::new(), relayed.len() - 1)).1.push(event);
            }
            if let Some((rooms, events, first)) = run {
                self.dispatch(mode, rooms, events, &mut relayed[first..], started).await?;
            }
        }
        for name in names {
            metrics::counter!(m::BROADCASTS_ACCEPTED, "event" => name).increment(1);
        }
        Ok(relayed)
    }

    /// Sends one run on: alone, to this node's fan-out (and fills in each answer's
    /// recipients); in cluster mode, once to Redis, which brings it back to every node.
    async fn dispatch(
        &self,
        mode: &Mode,
        rooms: Vec<String>,
        events: Vec<EncodedEvent>,
        answers: &mut [Relayed],
        accepted: Instant,
    ) -> Result<(), RedisDown> {
        match mode {
            Mode::Cluster(cluster) => {
                let run = RunMessage::encode(&rooms, &events);
                cluster.channel.publish(run).await.inspect_err(|_| cluster.health.set(false))
            }
            Mode::Single(_) => {
                let recipients = self.fan_out(rooms, events, accepted).await;
                for answer in answers.iter_mut() {
                    answer.recipients = Some(recipients);
                }
                Ok(())
            }
        }
    }

    /// Hands a run to this node's fan-out worker, for its sockets in `rooms` (everyone when
    /// empty); returns how many sockets it goes to.
    async fn fan_out(&self, rooms: Vec<String>, events: Vec<EncodedEvent>, accepted: Instant) -> usize {
        let targets: Arc<[Target]> = if rooms.is_empty() {
            self.local.audience.list()
        } else {
            self.local
                .io
                .to(rooms)
                .sockets()
                .into_iter()
                .map(|s| {
                    let account = accounting::account(&s);
                    (s, account)
                })
                .collect()
        };
        let recipients = targets.iter().filter(|(_, account)| !account.as_ref().is_some_and(|o| o.is_doomed())).count();
        // Bounded in bytes too (a run of a batch holds up to a whole batch): the permits go
        // with the run and come back when the worker has sent it.
        let bytes: usize = events.iter().map(|e| e.packet().len()).sum();
        let permits = bytes.clamp(1, FANOUT_QUEUE_BYTES as usize) as u32;
        let Ok(room) = self.fanout_bytes.clone().acquire_many_owned(permits).await else { return recipients };
        // The worker ends only with the bridge, which `self` keeps alive.
        let _ = self.fanout.send(Outgoing { events, targets, accepted, _room: room }).await;
        recipients
    }

    /// Cluster mode: a run the channel brought (from any node, this one too) goes to this
    /// node's sockets like a broadcast posted here. Bytes that are not a run are logged and
    /// dropped.
    pub async fn fan_out_received(&self, run: Vec<u8>) {
        let received = Instant::now();
        let bytes = run.len();
        match RunMessage::decode(run) {
            Ok(RunMessage { rooms, events }) => {
                self.fan_out(rooms, events, received).await;
            }
            Err(e) => tracing::error!(bytes, "a cluster message is not a broadcast run: {e}"),
        }
    }
}

impl Local {
    /// The worker's job for one run.
    async fn send_out(&self, out: Outgoing, doomed: &mut Vec<SocketRef>) {
        let Outgoing { events, targets, accepted, _room } = out;
        if let Some(seq) = events.iter().filter_map(EncodedEvent::seq).max() {
            self.latest_seq.fetch_max(seq, Ordering::Relaxed);
        }
        // A long run goes in slices, with the writers let catch up in between: each
        // socket's queue then holds about one slice. Its channel keeps every block it ever grew to
        // (tokio reuses them), so a whole batch queued at once left ~170 KB per socket
        // behind for good; a slice is still one write.
        let mut slices = events.chunks(DELIVERY_SLICE).peekable();
        while let Some(slice) = slices.next() {
            self.deliver(slice, &targets, doomed);
            if slices.peek().is_some() {
                self.let_writers_catch_up(&targets, slice).await;
            }
        }
        metrics::histogram!(m::BROADCAST_LATENCY).record(accepted.elapsed().as_secs_f64());
    }

    /// Lets the sockets' writers run until nearly all of `targets` have at most two
    /// slices like `slice` waiting (a sample of them is looked at), or [`PACE_ROUNDS`]
    /// times. Without it the worker ran ahead of the writers and each socket's channel grew
    /// to hold most of a batch: tokio keeps a channel's blocks once grown, and that stayed
    /// resident after the burst (issue 26). A socket that reads slowly does not hold the
    /// others back for longer than the rounds; its byte budget deals with it.
    async fn let_writers_catch_up(&self, targets: &[Target], slice: &[EncodedEvent]) {
        let limit: u64 = 2 * slice.iter().map(EncodedEvent::frame_len).sum::<u64>();
        let stride = (targets.len() / PACE_SAMPLE).max(1);
        for _ in 0..PACE_ROUNDS {
            tokio::task::yield_now().await;
            let mut behind = targets
                .iter()
                .step_by(stride)
                .filter(|(_, a)| a.as_ref().is_some_and(|a| !a.is_doomed() && a.queued().unwrap_or(0) > limit));
            if behind.nth(1).is_none() {
                return;
            }
        }
    }

    /// Queues a run of events to each of its sockets, socket by socket (all of a
    /// socket's events are queued before the next socket's, so they wait together and
    /// leave in one write). A socket whose queue is full (in packets, or in bytes beyond
    /// `client_buffer_bytes`) gets nothing more and is disconnected; `doomed` keeps those
    /// whose queue had no room for the DISCONNECT either, to try again at the next broadcast.
    fn deliver(&self, events: &[EncodedEvent], targets: &[Target], doomed: &mut Vec<SocketRef>) {
        retry_doomed(doomed);
        let budget = self.budget;
        let mut delivered = 0u64;
        let mut slow = Vec::new();
        'sockets: for (socket, account) in targets {
            if account.as_ref().is_some_and(|o| o.is_doomed()) {
                continue;
            }
            for event in events {
                if account.as_ref().is_some_and(|o| !o.reserve(event.frame_len(), budget)) {
                    slow.push(socket.clone());
                    continue 'sockets;
                }
                // What `emit` checks first; `send_raw` only sees the transport.
                let sent = if socket.connected() { socket.send_raw(event.value()) } else { Err(SocketError::Closed) };
                match sent {
                    Ok(()) => {
                        delivered += 1;
                        if let Some(account) = account {
                            account.note_delivery(event.seq());
                        }
                    }
                    Err(SocketError::InternalChannelFull) => {
                        slow.push(socket.clone());
                        continue 'sockets;
                    }
                    Err(e) => {
                        tracing::debug!(sid = %socket.id, error = %e, "socket gone during relay");
                        if matches!(e, SocketError::Closed) {
                            // Its disconnect handler normally does this; never keep a dead one.
                            self.audience.leave(socket.id);
                        }
                        continue 'sockets;
                    }
                }
            }
        }
        for socket in slow {
            self.disconnect_slow(socket, doomed);
        }
        metrics::counter!(m::DELIVERIES).increment(delivered);
    }

    fn disconnect_slow(&self, socket: SocketRef, doomed: &mut Vec<SocketRef>) {
        let sid: Sid = socket.id;
        let queued = accounting::account(&socket).and_then(|o| {
            o.doom();
            o.queued()
        });
        tracing::warn!(%sid, queued_bytes = ?queued, "client cannot keep up: its queue is full; disconnecting it (it will catch up on reconnect)");
        metrics::counter!(m::SLOW_CLIENTS_DISCONNECTED).increment(1);
        if let Err(SocketError::InternalChannelFull) = socket.clone().disconnect() {
            doomed.push(socket);
        }
    }
}

/// Events of one run queued to each socket before the sockets' writers get to run: one
/// block of engineioxide's channel (tokio's blocks hold 32), and one write.
pub const DELIVERY_SLICE: usize = 32;

/// Times the worker lets the writers run, at most, before the next slice of a run.
const PACE_ROUNDS: usize = 64;
/// Sockets looked at to tell whether the writers have caught up (one more than one of
/// them behind is "not yet").
const PACE_SAMPLE: usize = 64;

/// How often sockets waiting to be disconnected are tried again when no broadcast comes.
pub const DOOMED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Tries again to disconnect each socket found too slow; keeps those whose queue still has
/// no room for the DISCONNECT. Only from the fan-out task, with no lock held: socketioxide
/// runs our disconnect handler inline.
fn retry_doomed(doomed: &mut Vec<SocketRef>) {
    doomed.retain(|socket| {
        socket.connected() && matches!(socket.clone().disconnect(), Err(SocketError::InternalChannelFull))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BridgeConfig;

    fn request(body: serde_json::Value) -> BroadcastRequest {
        BroadcastRequest::parse(body.to_string().as_bytes(), &stock_protocol::EventPolicy::default()).unwrap()
    }

    fn add_stock(product: i64) -> serde_json::Value {
        serde_json::json!({"event": "add_stock", "data": {"product_id": product, "in_stock": 1, "discount_price": 1,
            "peak_hour_price": 1, "mediboy_offer_price": 1, "sync_at": "2024-01-01T00:00:00Z"}})
    }

    /// A relay for a node with no sockets, and its mode (alone).
    fn alone() -> (Relay, Mode) {
        let (_layer, io) = SocketIo::new_layer();
        io.ns("/", async |_: SocketRef| {});
        let config = BridgeConfig::default();
        (Relay::start(io, Arc::new(Audience::default()), 1024, Arc::default()), Mode::single(&config))
    }

    #[tokio::test]
    async fn a_batch_numbers_each_add_stock_in_order_and_nothing_else() {
        let (relay, mode) = alone();
        let batch = vec![
            request(add_stock(1)),
            request(serde_json::json!({"event": "sale_mode", "data": {"mode": "peak"}})),
            request(add_stock(2)),
            request(serde_json::json!({"event": "add_stock", "to": "user:7", "data": add_stock(3)["data"]})),
            request(add_stock(1)),
        ];
        let relayed = relay.relay_all(&mode, batch).await.unwrap();
        let seqs: Vec<Option<u64>> = relayed.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [Some(1), None, Some(2), None, Some(3)], "a private event is not numbered");
        assert!(relayed.iter().all(|r| r.recipients == Some(0)), "no socket here: {relayed:?}");
        let next = relay.relay(&mode, request(add_stock(9))).await.unwrap();
        assert_eq!(next.seq, Some(4), "the next broadcast follows the batch");
    }
}
