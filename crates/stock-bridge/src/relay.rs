//! The bridge's shared state and the one path every broadcast takes to the sockets.
//!
//! Alone (the default), `relay` checks, numbers and enqueues a broadcast and returns at
//! once (the HTTP answer does not wait for the fan-out); one worker task then queues it to
//! each target socket in turn, in order, so a socket whose queue is full is known and dealt
//! with. In cluster mode (Redis), `relay` publishes each run once on the cluster's channel
//! (the HTTP answer waits for that, to report Redis trouble as 503) and every node, this
//! one too, hands what the channel brings to the same worker ([`Bridge::fan_out`]); the
//! last values live in Redis.
//!
//! No lock is held across a call into socketioxide: its `disconnect()` runs our handlers
//! inline, and a lock held there froze the bridge once.

use crate::audience::{Audience, Target};
use crate::cluster::{ClusterEvent, ClusterRun, FanoutChannel, RedisDown, RedisHealth, RedisLastValues};
use crate::config::BridgeConfig;
use crate::lastvalue::LastValueCache;
use crate::metrics as m;
use crate::outflow::{Outflow, SessionTaps, Tap, ws_frame_len};
use serde_json::value::RawValue;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo, extract::SocketRef};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use stock_protocol::{BroadcastRequest, CatchUp, CatchUpRequest, DeliveryMeta};
use tokio::sync::mpsc;

/// How this bridge runs: one enum, so the last values and the cluster's parts cannot
/// disagree.
pub enum Mode {
    /// Alone: the last values in memory.
    Single(Mutex<LastValueCache>),
    /// One node of a cluster: the last values in Redis, whose health is watched.
    Cluster(Cluster),
}

/// The cluster-mode parts: the fan-out channel, the last values in Redis, Redis health
/// and the tasks that watch it and take in the channel's runs (both stopped when the
/// bridge goes).
pub struct Cluster {
    pub channel: FanoutChannel,
    pub store: RedisLastValues,
    pub health: Arc<RedisHealth>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    pub fn new(channel: FanoutChannel, store: RedisLastValues, health: Arc<RedisHealth>) -> Self {
        Cluster { channel, store, health, tasks: Vec::new() }
    }

    /// Owns `task`: it is stopped when the bridge goes.
    pub fn own(&mut self, task: tokio::task::JoinHandle<()>) {
        self.tasks.push(task);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Shared by the HTTP handlers and the Socket.IO handlers.
pub struct Bridge<A: Adapter = LocalAdapter> {
    pub config: Arc<BridgeConfig>,
    /// Checks client tokens (Socket.IO handshakes, `GET /snapshot`).
    pub verifier: crate::socket::auth::Verifier,
    /// Socket.IO handshakes per source address.
    pub handshakes: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    pub io: SocketIo<A>,
    /// The sockets connected to this node: a broadcast to everyone goes to them.
    pub audience: Audience<A>,
    /// WebSocket upgrades waiting for their socket's CONNECT (see [`crate::outflow`]).
    pub upgrades: SessionTaps,
    /// Long-polling sockets' own taps, by session id (see [`crate::outflow`]).
    pub polls: SessionTaps,
    /// `POST /broadcast` per source address: `rate_limit` per second, bursts of one second's worth.
    pub broadcasts: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    pub mode: Mode,
    /// Serialises relays, so sequence order is emit order.
    order: tokio::sync::Mutex<()>,
    /// To the fan-out worker; it ends when the bridge is dropped.
    fanout: mpsc::Sender<Outgoing<A>>,
    /// Payload bytes waiting for the worker, at most [`FANOUT_QUEUE_BYTES`].
    fanout_bytes: Arc<tokio::sync::Semaphore>,
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
struct Outgoing<A: Adapter> {
    events: Vec<Relayable>,
    /// Its sockets, each with its account (looked up once per run: the lookup showed in
    /// profiles at 5 % of the bridge's CPU when done per event and twice).
    targets: Arc<[Target<A>]>,
    accepted: Instant,
    /// Its share of [`FANOUT_QUEUE_BYTES`], given back when it has been sent.
    _room: tokio::sync::OwnedSemaphorePermit,
}

/// One event as it is sent: its name, its payload as posted, its delivery position (an
/// `add_stock`'s, already serialized: it is the same for every socket) and the size of the
/// WebSocket frame that carries it.
struct Relayable {
    event: String,
    data: Arc<RawValue>,
    meta: Option<Box<RawValue>>,
    frame: u64,
}

impl Relayable {
    fn new(event: String, data: Arc<RawValue>, meta: Option<&DeliveryMeta>) -> Self {
        let meta = meta.map(|m| serde_json::value::to_raw_value(m).expect("DeliveryMeta serializes"));
        let frame = event_frame_len(&event, &data, meta.as_deref());
        Relayable { event, data, meta, frame }
    }

    fn args(&self) -> EventArgs<'_> {
        EventArgs { data: &self.data, meta: self.meta.as_deref() }
    }

    /// As it crosses Redis (cluster mode).
    fn to_cluster(&self) -> ClusterEvent {
        ClusterEvent { event: self.event.clone(), data: self.data.as_ref().to_owned(), meta: self.meta.clone() }
    }

    fn from_cluster(event: ClusterEvent) -> Self {
        let frame = event_frame_len(&event.event, &event.data, event.meta.as_deref());
        Relayable { event: event.event, data: Arc::from(event.data), meta: event.meta, frame }
    }
}

impl Bridge<LocalAdapter> {
    /// A bridge alone, with its last values in memory.
    pub fn new(config: Arc<BridgeConfig>, io: SocketIo) -> Arc<Self> {
        let cache = LastValueCache::new(LastValueCache::new_epoch(), config.cache_products, config.cache_max_age);
        Bridge::with_parts(config, io, Mode::Single(Mutex::new(cache)))
    }
}

impl<A: Adapter> Bridge<A> {
    /// Must be called inside the tokio runtime (it starts the fan-out worker).
    pub fn with_parts(config: Arc<BridgeConfig>, io: SocketIo<A>, mode: Mode) -> Arc<Self> {
        Arc::new_cyclic(|weak: &std::sync::Weak<Self>| {
            let (fanout, mut rx) = mpsc::channel::<Outgoing<A>>(FANOUT_QUEUE);
            let weak = weak.clone();
            tokio::spawn(async move {
                // Sockets found too slow, owned by this task alone: no lock is needed, so
                // none can be held while socketioxide runs our disconnect handler.
                let mut doomed: Vec<SocketRef<A>> = Vec::new();
                let mut retry = tokio::time::interval(DOOMED_RETRY);
                retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        out = rx.recv() => {
                            let Some(out) = out else { return };
                            let Some(bridge) = weak.upgrade() else { return };
                            bridge.send_out(out, &mut doomed).await;
                        }
                        // Also when no broadcast comes: a doomed socket's queue is freed
                        // only when socketioxide lets it go.
                        _ = retry.tick(), if !doomed.is_empty() => retry_doomed(&mut doomed),
                    }
                }
            });
            Bridge {
                verifier: crate::socket::auth::Verifier::new(config.client_auth.clone(), config.introspect_concurrency),
                handshakes: governor::RateLimiter::keyed(
                    governor::Quota::per_second(config.handshake_rate).allow_burst(
                        config.handshake_rate.saturating_mul(std::num::NonZeroU32::new(2).expect("not zero")),
                    ),
                ),
                broadcasts: {
                    let rate = std::num::NonZeroU32::new(config.rate_limit.max(1)).expect("at least 1");
                    governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(rate))
                },
                config,
                io,
                audience: Audience::default(),
                upgrades: SessionTaps::default(),
                polls: SessionTaps::default(),
                mode,
                order: tokio::sync::Mutex::new(()),
                fanout,
                fanout_bytes: Arc::new(tokio::sync::Semaphore::new(FANOUT_QUEUE_BYTES as usize)),
            }
        })
    }

    /// False while Redis (in cluster mode) is unreachable.
    pub fn is_ready(&self) -> bool {
        match &self.mode {
            Mode::Single(_) => true,
            Mode::Cluster(cluster) => cluster.health.is_up(),
        }
    }

    /// Sends `req` to its sockets. A socket whose queue is full is disconnected instead of
    /// being fed forever: it reconnects and catches up from the cache.
    pub async fn relay(&self, req: BroadcastRequest) -> Result<Relayed, RedisDown> {
        let mut relayed = self.relay_all(vec![req]).await?;
        Ok(relayed.pop().expect("one event in, one out"))
    }

    /// Sends each of `reqs` (a batch) in order: each `add_stock` gets its own sequence
    /// number, and no other broadcast is numbered in between. Runs of events for the same
    /// recipients go out together.
    ///
    /// The `order` lock covers numbering and handing over (to the worker, or to Redis in
    /// cluster mode) only, so broadcasts leave in sequence order; every call into
    /// socketioxide happens in the worker, with no lock held.
    pub async fn relay_all(&self, reqs: Vec<BroadcastRequest>) -> Result<Vec<Relayed>, RedisDown> {
        let started = Instant::now();
        if !self.is_ready() {
            return Err(RedisDown);
        }
        let mut relayed: Vec<Relayed> = Vec::with_capacity(reqs.len());
        let names: Vec<String> = reqs.iter().map(|r| r.event.clone()).collect();
        {
            let _order = self.order.lock().await;
            // The run being gathered: its recipients, its events, and where its answers start.
            let mut run: Option<(Vec<String>, Vec<Relayable>, usize)> = None;
            for req in reqs {
                let rooms: Vec<String> = req.to.iter().map(|r| r.as_str().to_owned()).collect();
                if run.as_ref().is_some_and(|(r, ..)| *r != rooms)
                    && let Some((rooms, events, first)) = run.take()
                {
                    self.dispatch(rooms, events, &mut relayed[first..], started).await?;
                }
                let data: Arc<RawValue> = Arc::from(req.data);
                let meta = match (&req.snapshot, rooms.is_empty()) {
                    (Some(snapshot), true) => Some(self.record(snapshot.product_id, &data, started).await?),
                    _ => None,
                };
                relayed.push(Relayed { recipients: None, seq: meta.as_ref().map(|m| m.seq) });
                let event = Relayable::new(req.event, data, meta.as_ref());
                run.get_or_insert_with(|| (rooms, Vec::new(), relayed.len() - 1)).1.push(event);
            }
            if let Some((rooms, events, first)) = run {
                self.dispatch(rooms, events, &mut relayed[first..], started).await?;
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
        rooms: Vec<String>,
        events: Vec<Relayable>,
        answers: &mut [Relayed],
        accepted: Instant,
    ) -> Result<(), RedisDown> {
        match &self.mode {
            Mode::Cluster(cluster) => {
                let run = ClusterRun { rooms, events: events.iter().map(Relayable::to_cluster).collect() };
                cluster.channel.publish(&run).await.inspect_err(|_| cluster.health.set(false))
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
    async fn fan_out(&self, rooms: Vec<String>, events: Vec<Relayable>, accepted: Instant) -> usize {
        let targets: Arc<[Target<A>]> = if rooms.is_empty() {
            self.audience.list()
        } else {
            self.io
                .to(rooms)
                .sockets()
                .into_iter()
                .map(|s| {
                    let account = outflow(&s);
                    (s, account)
                })
                .collect()
        };
        let recipients = targets.iter().filter(|(_, account)| !account.as_ref().is_some_and(|o| o.is_doomed())).count();
        // Bounded in bytes too (a run of a batch holds up to a whole batch): the permits go
        // with the run and come back when the worker has sent it.
        let bytes: usize = events.iter().map(|e| e.data.get().len()).sum();
        let permits = bytes.clamp(1, FANOUT_QUEUE_BYTES as usize) as u32;
        let Ok(room) = self.fanout_bytes.clone().acquire_many_owned(permits).await else { return recipients };
        // The worker ends only with the bridge, which `self` keeps alive.
        let _ = self.fanout.send(Outgoing { events, targets, accepted, _room: room }).await;
        recipients
    }

    /// Cluster mode: a run the channel brought (from any node, this one too) goes to this
    /// node's sockets like a broadcast posted here. Bytes that are not a run are logged and
    /// dropped.
    pub async fn fan_out_received(&self, run: &[u8]) {
        let received = Instant::now();
        match serde_json::from_slice::<ClusterRun>(run) {
            Ok(ClusterRun { rooms, events }) => {
                let events = events.into_iter().map(Relayable::from_cluster).collect();
                self.fan_out(rooms, events, received).await;
            }
            Err(e) => tracing::error!(bytes = run.len(), "a cluster message is not a broadcast run: {e}"),
        }
    }

    /// The worker's job for one run.
    async fn send_out(&self, out: Outgoing<A>, doomed: &mut Vec<SocketRef<A>>) {
        let Outgoing { events, targets, accepted, _room } = out;
        // A long run goes in slices, with the writers let run in between: each socket's
        // queue then holds one slice at most. Its channel keeps every block it ever grew to
        // (tokio reuses them), so a whole batch queued at once left ~170 KB per socket
        // behind for good; a slice is still one write.
        let mut slices = events.chunks(DELIVERY_SLICE).peekable();
        while let Some(slice) = slices.next() {
            self.deliver(slice, &targets, doomed);
            if slices.peek().is_some() {
                tokio::task::yield_now().await;
            }
        }
        metrics::histogram!(m::BROADCAST_LATENCY).record(accepted.elapsed().as_secs_f64());
    }

    async fn record(&self, product_id: i64, data: &Arc<RawValue>, now: Instant) -> Result<DeliveryMeta, RedisDown> {
        match &self.mode {
            Mode::Single(cache) => {
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                let meta = cache.record(product_id, data.clone(), now);
                metrics::gauge!(m::CACHED_PRODUCTS).set(cache.len() as f64);
                Ok(meta)
            }
            Mode::Cluster(cluster) => {
                cluster.store.record(product_id, data).await.inspect_err(|_| cluster.health.set(false))
            }
        }
    }

    /// Queues a run of events to each of its sockets, socket by socket (all of a
    /// socket's events are queued before the next socket's, so they wait together and
    /// leave in one write). A socket whose queue is full (in packets, or in bytes beyond
    /// `client_buffer_bytes`) gets nothing more and is disconnected; `doomed` keeps those
    /// whose queue had no room for the DISCONNECT either, to try again at the next broadcast.
    fn deliver(&self, events: &[Relayable], targets: &[Target<A>], doomed: &mut Vec<SocketRef<A>>) {
        retry_doomed(doomed);
        let budget = self.config.client_buffer_bytes as u64;
        let mut delivered = 0u64;
        let mut slow = Vec::new();
        'sockets: for (socket, account) in targets {
            if account.as_ref().is_some_and(|o| o.is_doomed()) {
                continue;
            }
            for event in events {
                if account.as_ref().is_some_and(|o| !o.reserve(event.frame, budget)) {
                    slow.push(socket.clone());
                    continue 'sockets;
                }
                match socket.emit(event.event.as_str(), &event.args()) {
                    Ok(()) => delivered += 1,
                    Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                        slow.push(socket.clone());
                        continue 'sockets;
                    }
                    Err(e) => {
                        tracing::debug!(sid = %socket.id, error = %e, "socket gone during relay");
                        if matches!(e, SendError::Socket(SocketError::Closed)) {
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

    /// Everything a client at `req` has missed, in an answer of about `max_bytes` at most
    /// (None when the store cannot be read).
    pub async fn catch_up(&self, req: &CatchUpRequest, max_bytes: usize) -> Option<CatchUp<Arc<RawValue>>> {
        match &self.mode {
            Mode::Single(cache) => {
                Some(cache.lock().unwrap_or_else(|e| e.into_inner()).since(req, Instant::now(), max_bytes))
            }
            Mode::Cluster(cluster) => cluster.store.since(req, max_bytes).await.ok(),
        }
    }

    /// Sockets connected to this node and not being disconnected for slowness.
    pub fn connected_clients(&self) -> usize {
        self.io.sockets().iter().filter(|s| !outflow(s).is_some_and(|o| o.is_doomed())).count()
    }

    /// Session `sid` upgraded to WebSocket on `tap`'s connection: its socket's bytes are
    /// counted there from now on, or from its CONNECT when that has not come yet.
    pub fn attach_tap(&self, sid: &str, tap: &Tap) {
        let socket = sid.parse::<Sid>().ok().and_then(|sid| self.io.get_socket(sid));
        match socket.as_ref().and_then(outflow) {
            Some(account) => account.attach(tap),
            None => self.upgrades.remember(sid, tap),
        }
    }

    fn disconnect_slow(&self, socket: SocketRef<A>, doomed: &mut Vec<SocketRef<A>>) {
        let sid: Sid = socket.id;
        let queued = outflow(&socket).and_then(|o| {
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

/// How often sockets waiting to be disconnected are tried again when no broadcast comes.
pub const DOOMED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Tries again to disconnect each socket found too slow; keeps those whose queue still has
/// no room for the DISCONNECT. Only from the fan-out task, with no lock held: socketioxide
/// runs our disconnect handler inline.
fn retry_doomed<A: Adapter>(doomed: &mut Vec<SocketRef<A>>) {
    doomed.retain(|socket| {
        socket.connected() && matches!(socket.clone().disconnect(), Err(SocketError::InternalChannelFull))
    });
}

/// The socket's account (set when it connected).
pub fn outflow<A: Adapter>(socket: &SocketRef<A>) -> Option<Arc<Outflow>> {
    socket.extensions.get::<Arc<Outflow>>()
}

/// A relayed event's arguments: the payload as posted, then its delivery position when it
/// has one (`add_stock`). Serialized as a tuple, which socketioxide spreads into arguments.
struct EventArgs<'a> {
    data: &'a RawValue,
    meta: Option<&'a RawValue>,
}

impl serde::Serialize for EventArgs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut args = serializer.serialize_tuple(1 + usize::from(self.meta.is_some()))?;
        args.serialize_element(self.data)?;
        if let Some(meta) = self.meta {
            args.serialize_element(meta)?;
        }
        args.end()
    }
}

/// Size of the WebSocket frame carrying `42["event",data(,meta)]`, as socketioxide writes
/// it: counted from the parts, so the payload is not serialized again to measure it.
fn event_frame_len(event: &str, data: &RawValue, meta: Option<&RawValue>) -> u64 {
    let quoted_event = serde_json::to_string(event).map_or(0, |e| e.len());
    let meta_len = meta.map_or(0, |m| 1 + m.get().len());
    // "42" + "[" + "event" + "," + data (+ "," + meta) + "]"
    ws_frame_len(2 + 1 + quoted_event + 1 + data.get().len() + meta_len + 1)
}
