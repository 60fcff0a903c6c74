//! The HTTP side of the bridge: [`app`] builds the whole service (HTTP routes plus the
//! Socket.IO layer) so tests can drive it in process; [`cluster_app`] does the same for
//! cluster mode (Redis).

mod broadcast;
pub use broadcast::bearer;
pub mod error;
mod status;

use crate::cluster::{self, RedisHealth, RedisLastValues};
use crate::config::BridgeConfig;
use crate::relay::{Bridge, Cluster, Mode};
use crate::socket;
use axum::Router;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// The bridge's router and its shared state, ready to serve.
pub fn app(config: Arc<BridgeConfig>) -> (Router, Arc<Bridge>) {
    app_with(config, Router::new())
}

/// [`app`] with `extra` routes served beside the bridge's (the demo's login).
pub fn app_with(config: Arc<BridgeConfig>, extra: Router) -> (Router, Arc<Bridge>) {
    let (layer, io) = builder(&config).build_layer();
    let bridge = Bridge::new(config, io.clone());
    socket::register(&io, bridge.clone());
    (assemble(layer, bridge.clone(), extra), bridge)
}

/// Cluster mode: broadcasts and last values shared through Redis at `url` (see
/// [`crate::cluster`]). Sockets, rooms and the fan-out are this node's own, as alone.
pub async fn cluster_app(config: Arc<BridgeConfig>, url: &str, extra: Router) -> Result<(Router, Arc<Bridge>), String> {
    let unreachable = |e: &dyn std::fmt::Display| format!("cannot use Redis at {}: {e}", redact(url));
    let (channel, mut inbox, commands) =
        tokio::time::timeout(cluster::REDIS_TIMEOUT * 5, cluster::connect(url, &config.redis_prefix))
            .await
            .map_err(|_| unreachable(&"no answer within 5 s"))?
            .map_err(|e| unreachable(&e))?;
    let (layer, io) = builder(&config).build_layer();
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
            bridge.fan_out_received(&run).await;
        }
    }));
    let bridge = Bridge::with_parts(config, io.clone(), Mode::Cluster(cluster));
    let _ = found.send(Arc::downgrade(&bridge));
    socket::register(&io, bridge.clone());
    Ok((assemble(layer, bridge.clone(), extra), bridge))
}

/// `redis://user:password@host` without the password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Largest message a client may send (its events are a ping and a catch-up request).
pub const CLIENT_MESSAGE_MAX: usize = 16 * 1024;

/// Initial WebSocket read buffer per connection, and the most read at once: what clients
/// send is small (pongs of a few bytes, catch-up requests of about a hundred), and each
/// idle connection keeps this much for its whole life. A larger message is read in steps.
pub const WS_READ_BUFFER: usize = 256;

fn builder(config: &BridgeConfig) -> SocketIoBuilder {
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

/// The routes, then the Socket.IO and CORS layers around everything (added last, so they
/// also wrap `extra`). With a back-office listener configured, the back-office routes are
/// left out here ([`admin_app`] serves them).
fn assemble<A: Adapter>(layer: SocketIoLayer<A>, bridge: Arc<Bridge<A>>, extra: Router) -> Router {
    let config = bridge.config.clone();
    let mut router =
        Router::new().route("/healthz", get(status::healthz::<A>)).route("/readyz", get(status::readyz::<A>));
    if config.admin.is_none() {
        router = back_office_routes(router);
    }
    let router = router.with_state(bridge).merge(extra).layer(layer);
    match cors(&config) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// What only the back office uses: `POST /broadcast`, `GET /snapshot`, `GET /metrics`.
fn back_office_routes<A: Adapter>(router: Router<Arc<Bridge<A>>>) -> Router<Arc<Bridge<A>>> {
    router
        .route("/broadcast", post(broadcast::broadcast::<A>))
        .route("/metrics", get(status::metrics::<A>))
        .route("/snapshot", get(status::snapshot::<A>))
}

/// The back-office listener's router (`STOCK_BRIDGE_ADMIN_LISTEN`): the back-office routes
/// and the health checks, no Socket.IO, no CORS (browsers have no business there).
pub fn admin_app<A: Adapter>(bridge: Arc<Bridge<A>>) -> Router {
    back_office_routes(Router::new())
        .route("/healthz", get(status::healthz::<A>))
        .route("/readyz", get(status::readyz::<A>))
        .with_state(bridge)
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
