//! [`Bridge`]: the state every HTTP and Socket.IO handler shares, made once per process.
//!
//! What a broadcast does lives in [`crate::relay`]; where last values live and whether
//! this is a cluster node, in [`crate::mode`]; what one socket costs, in
//! [`crate::accounting`]; who is connected, in [`crate::audience`].
//!
//! No lock here is held across a call into socketioxide: its `disconnect()` runs our
//! handlers inline, and a lock held there froze the bridge once.

use crate::accounting::{self, SessionTaps};
use crate::audience::Audience;
use crate::auth::Verifier;
use crate::cluster::RedisDown;
use crate::config::BridgeConfig;
use crate::fleet::Fleet;
use crate::mode::Mode;
use crate::relay::{Relay, Relayed};
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use stock_protocol::{BroadcastRequest, CatchUp, CatchUpRequest};

/// A rate limit per source address.
pub type PerSource = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// Shared by the HTTP handlers and the Socket.IO handlers.
pub struct Bridge {
    pub config: Arc<BridgeConfig>,
    /// Checks client tokens (Socket.IO handshakes, `GET /snapshot`).
    pub verifier: Verifier,
    /// Socket.IO handshakes per source address.
    pub handshakes: PerSource,
    /// `POST /broadcast` per source address: `rate_limit` per second, bursts of one second's worth.
    pub broadcasts: PerSource,
    pub io: SocketIo,
    /// The sockets connected to this node: a broadcast to everyone goes to them.
    pub audience: Arc<Audience>,
    /// WebSocket upgrades waiting for their socket's CONNECT (see [`crate::accounting`]).
    pub upgrades: SessionTaps,
    /// Long-polling sockets' own taps, by session id (see [`crate::accounting`]).
    pub polls: SessionTaps,
    /// Alone or a cluster node, and where the last values are.
    pub mode: Mode,
    /// Every till seen, for support staff.
    pub fleet: Arc<Fleet>,
    /// The one path broadcasts take.
    relay: Relay,
    /// Catch-up reads in flight at once ([`CATCH_UP_READS`]).
    catch_up_reads: tokio::sync::Semaphore,
}

/// Catch-up reads from the last-value store in flight at once. A crowd of tills moving in
/// from a lost node queues here, not on the store's one Redis connection, where each
/// command has [`crate::cluster::REDIS_TIMEOUT`]: measured, 12,000 tills moving to two
/// nodes at once had 4,608 of their catch-ups time out there, unanswered.
pub const CATCH_UP_READS: usize = 32;

impl Bridge {
    /// Must be called inside the tokio runtime (it starts the fan-out worker).
    pub fn new(
        config: Arc<BridgeConfig>,
        io: SocketIo,
        mode: Mode,
        fleet: Arc<Fleet>,
        latest_seq: Arc<AtomicU64>,
    ) -> Arc<Self> {
        let audience = Arc::new(Audience::default());
        let relay = Relay::start(io.clone(), audience.clone(), config.client_buffer_bytes as u64, latest_seq);
        Arc::new(Bridge {
            verifier: Verifier::new(config.client_auth.clone(), config.introspect_concurrency),
            handshakes: per_source(config.handshake_rate, config.handshake_rate.saturating_mul(two())),
            broadcasts: {
                let rate = NonZeroU32::new(config.rate_limit.max(1)).expect("at least 1");
                per_source(rate, rate)
            },
            config,
            io,
            audience,
            upgrades: SessionTaps::default(),
            polls: SessionTaps::default(),
            mode,
            fleet,
            relay,
            catch_up_reads: tokio::sync::Semaphore::new(CATCH_UP_READS),
        })
    }

    /// Sends `req` to its sockets ([`Relay::relay`]).
    pub async fn relay(&self, req: BroadcastRequest) -> Result<Relayed, RedisDown> {
        self.relay.relay(&self.mode, req).await
    }

    /// Sends each of `reqs` (a batch) in order ([`Relay::relay_all`]).
    pub async fn relay_all(&self, reqs: Vec<BroadcastRequest>) -> Result<Vec<Relayed>, RedisDown> {
        self.relay.relay_all(&self.mode, reqs).await
    }

    /// Cluster mode: a run the fan-out channel brought goes to this node's sockets.
    pub async fn fan_out_received(&self, run: Vec<u8>) {
        self.relay.fan_out_received(run).await
    }

    /// False while Redis (in cluster mode) is unreachable.
    pub fn is_ready(&self) -> bool {
        self.mode.is_ready()
    }

    /// Everything a client at `req` has missed, in an answer of about `max_bytes` at most
    /// (None when the store cannot be read).
    pub async fn catch_up(&self, req: &CatchUpRequest, max_bytes: usize) -> Option<CatchUp<Arc<RawValue>>> {
        // Never closed: a permit is always given, in turn.
        let _turn = self.catch_up_reads.acquire().await.ok()?;
        self.mode.catch_up(req, max_bytes).await
    }

    /// Sockets connected to this node and not being disconnected for slowness.
    pub fn connected_clients(&self) -> usize {
        self.io.sockets().iter().filter(|s| !accounting::account(s).is_some_and(|a| a.is_doomed())).count()
    }
}

fn two() -> NonZeroU32 {
    NonZeroU32::new(2).expect("not zero")
}

fn per_source(rate: NonZeroU32, burst: NonZeroU32) -> PerSource {
    governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
}
