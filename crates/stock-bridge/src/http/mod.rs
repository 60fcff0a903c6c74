//! The HTTP side of the bridge: [`App::build`], the one way a bridge is made (its shared
//! state, the Socket.IO layer and the routers of both listeners), and the HTTP handlers.
//!
//! # Layout
//! - This file: [`App`], the routers, the Socket.IO settings.
//! - [`access`]: who may call the back-office routes (source address, API key or
//!   client certificate), as extractors.
//! - `broadcast`: `POST /broadcast`; `status`: `/healthz`, `/readyz`, `/metrics`, `/snapshot`.
//! - `support`: the fleet for support staff (API, live stream, page), with the support key.
//! - [`error`]: [`error::ApiError`], every refusal the API gives.

pub mod access;
mod broadcast;
pub mod error;
mod status;
mod support;

pub use access::bearer;

use crate::cluster::{self, RedisHealth, RedisLastValues};
use crate::config::BridgeConfig;
use crate::fleet::cluster::FleetCluster;
use crate::fleet::redis::RedisStore;
use crate::fleet::sqlite::SqliteStore;
use crate::fleet::store::MemoryStore;
use crate::fleet::{self, Fleet, FleetStore};
use crate::mode::{Cluster, Mode};
use crate::socket;
use crate::state::Bridge;
use axum::Router;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use socketioxide::SocketIo;
use socketioxide::layer::SocketIoLayer;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// A bridge ready to serve: the public router (HTTP routes and Socket.IO), the back-office
/// router when `STOCK_BRIDGE_ADMIN_LISTEN` is set, and the shared state.
pub struct App {
    pub router: Router,
    pub admin_router: Option<Router>,
    pub bridge: Arc<Bridge>,
}

/// Why a bridge could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Cluster mode and Redis cannot be used (the URL is shown without its password).
    #[error("cannot use Redis at {url}: {reason}")]
    Redis { url: String, reason: String },
    /// The fleet's store cannot be opened or read (STOCK_BRIDGE_FLEET_DB).
    #[error("{0} (STOCK_BRIDGE_FLEET_DB)")]
    Fleet(#[from] crate::fleet::StoreError),
}

impl App {
    /// The one way a bridge is made, alone or (with `config.redis_url`) as a node of a
    /// cluster sharing broadcasts and last values through Redis (see [`crate::cluster`]).
    /// `extra` routes are served beside the bridge's (the demo's login). Must be called
    /// inside the tokio runtime.
    pub async fn build(config: Arc<BridgeConfig>, extra: Router) -> Result<App, StartError> {
        let (layer, io) = builder(&config).build_layer();
        let latest_seq = Arc::new(AtomicU64::new(0));
        let node = fleet::node_name(config.node_name.as_deref());
        let bridge = match config.redis_url.clone() {
            None => {
                let store: Arc<dyn FleetStore> = match &config.fleet_db {
                    Some(path) => Arc::new(SqliteStore::open(path)?),
                    None => Arc::new(MemoryStore::default()),
                };
                let fleet = Fleet::start(node, store, config.fleet_retention, latest_seq.clone(), None).await?;
                Bridge::new(config.clone(), io.clone(), Mode::single(&config), fleet, latest_seq)
            }
            Some(url) => cluster_bridge(config.clone(), io.clone(), &url, node, latest_seq).await?,
        };
        socket::register(&io, bridge.clone());
        let admin_router = config.admin.is_some().then(|| admin_routes(bridge.clone()));
        Ok(App { router: public_routes(layer, bridge.clone(), extra), admin_router, bridge })
    }
}

/// Cluster mode: broadcasts and last values shared through Redis at `url`. Sockets, rooms
/// and the fan-out are this node's own, as alone.
async fn cluster_bridge(
    config: Arc<BridgeConfig>,
    io: SocketIo,
    url: &str,
    node: String,
    latest_seq: Arc<AtomicU64>,
) -> Result<Arc<Bridge>, StartError> {
    let unreachable = |reason: String| StartError::Redis { url: redact(url), reason };
    let cluster::Connected { channel, mut inbox, fleet_inbox, commands } =
        tokio::time::timeout(cluster::REDIS_TIMEOUT * 5, cluster::connect(url, &config.redis_prefix))
            .await
            .map_err(|_| unreachable("no answer within 5 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
    let fleet_cluster =
        FleetCluster::new(commands.clone(), &config.redis_prefix, &node, config.fleet_lease, fleet_inbox);
    let store = Arc::new(RedisStore::new(commands.clone(), &config.redis_prefix));
    let fleet = Fleet::start(node, store, config.fleet_retention, latest_seq.clone(), Some(fleet_cluster)).await?;
    let (health, watcher) = RedisHealth::watch(vec![commands.clone(), channel.connection()]);
    let store = RedisLastValues::new(commands, &config.redis_prefix, config.cache_products);
    let mut cluster = Cluster::new(channel, store, health);
    cluster.own(watcher);
    // Takes in the channel's runs, in its order, as long as the bridge lives (it holds the
    // bridge weakly, so the bridge's drop stops it).
    let (found, bridge_of) = tokio::sync::oneshot::channel::<std::sync::Weak<Bridge>>();
    cluster.own(tokio::spawn(async move {
        let Ok(weak) = bridge_of.await else { return };
        while let Some(run) = inbox.next().await {
            let Some(bridge) = weak.upgrade() else { return };
            bridge.fan_out_received(run).await;
        }
    }));
    let bridge = Bridge::new(config, io, Mode::Cluster(cluster), fleet, latest_seq);
    let _ = found.send(Arc::downgrade(&bridge));
    Ok(bridge)
}

/// `redis://user:password@host` without the password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Largest message a client may send (its events are a ping, a catch-up request, a health
/// report of 2 KB and, asked by support, its Diagnostics text of 64 KB at most).
pub const CLIENT_MESSAGE_MAX: usize = stock_protocol::till::DIAGNOSTICS_MAX_BYTES + 8 * 1024;

/// Initial WebSocket read buffer per connection, and the most read at once: what clients
/// send is small (pongs of a few bytes, catch-up requests of about a hundred), and each
/// idle connection keeps this much for its whole life. A larger message is read in steps.
pub const WS_READ_BUFFER: usize = 256;

fn builder(config: &BridgeConfig) -> socketioxide::SocketIoBuilder {
    crate::metrics::install();
    SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_buffer_size(config.client_buffer)
        .connect_timeout(crate::config::DEFAULT_CONNECT_TIMEOUT)
        // A long-polling answer must fit the largest packet we send (a packet over it would
        // never leave): a catch-up page or a broadcast, with room for their framing.
        .max_payload((config.catch_up_max_bytes + config.body_limit + 64 * 1024) as u64)
        // Clients send only small control events: refuse big WebSocket messages before they
        // are buffered (the defaults accept 64 MB, even before the handshake is authenticated).
        .ws_max_message_size(CLIENT_MESSAGE_MAX)
        .ws_max_frame_size(CLIENT_MESSAGE_MAX)
        // Each connection's WebSocket read buffer starts this small (engineioxide's default
        // is 4 KiB) and grows only for a larger message: clients send pings and small
        // requests, and 3 KB per idle connection add up at 10,000 tills.
        .ws_read_buffer_size(WS_READ_BUFFER)
}

/// The public listener's routes, then the Socket.IO and CORS layers around everything
/// (added last, so they also wrap `extra`). With a back-office listener configured, the
/// back-office routes are left out here ([`admin_routes`] serves them).
fn public_routes(layer: SocketIoLayer, bridge: Arc<Bridge>, extra: Router) -> Router {
    let config = bridge.config.clone();
    let mut router = health_routes(Router::new());
    if config.admin.is_none() {
        router = back_office_routes(router);
    }
    let router = router.with_state(bridge).merge(extra).layer(layer);
    match cors(&config) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The back-office listener's routes (`STOCK_BRIDGE_ADMIN_LISTEN`): the back-office routes
/// and the health checks, no Socket.IO, no CORS (browsers have no business there).
fn admin_routes(bridge: Arc<Bridge>) -> Router {
    health_routes(back_office_routes(Router::new())).with_state(bridge)
}

/// `GET /healthz` and `GET /readyz`, on every listener.
fn health_routes(router: Router<Arc<Bridge>>) -> Router<Arc<Bridge>> {
    router.route("/healthz", get(status::healthz)).route("/readyz", get(status::readyz))
}

/// What only the back office and support use: `POST /broadcast`, `GET /snapshot`,
/// `GET /metrics`, and the fleet.
fn back_office_routes(router: Router<Arc<Bridge>>) -> Router<Arc<Bridge>> {
    router
        .route("/broadcast", post(broadcast::broadcast))
        .route("/metrics", get(status::metrics))
        .route("/snapshot", get(status::snapshot))
        .route("/fleet", get(support::fleet))
        .route("/fleet-events", get(support::events))
        .route("/fleet-assets/{file}", get(support::asset))
        .route("/fleet/{till}", get(support::till).delete(support::forget))
        .route("/fleet/{till}/diagnostics", post(support::diagnostics))
}

fn cors(config: &BridgeConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins = if config.cors_any() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(CorsLayer::new().allow_origin(origins).allow_methods(Any).allow_headers(Any))
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_passwords_are_not_repeated() {
        assert_eq!(super::redact("redis://:hunter2@10.0.0.5:6379/0"), "redis://***@10.0.0.5:6379/0");
        assert_eq!(super::redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
