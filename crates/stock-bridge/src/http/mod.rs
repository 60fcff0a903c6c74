//! The HTTP side of the bridge: [`app`] builds the whole service (HTTP routes plus the
//! Socket.IO layer) so tests can drive it in process.

mod broadcast;
pub mod error;
mod status;

use crate::config::BridgeConfig;
use crate::relay::Bridge;
use crate::socket;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use axum::Router;
use socketioxide::SocketIo;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// The bridge's router and its shared state, ready to serve.
pub fn app(config: Arc<BridgeConfig>) -> (Router, Arc<Bridge>) {
    app_with(config, Router::new())
}

/// [`app`] with `extra` routes served beside the bridge's (the demo's login). The
/// Socket.IO and CORS layers wrap everything, so they must be added last, here.
pub fn app_with(config: Arc<BridgeConfig>, extra: Router) -> (Router, Arc<Bridge>) {
    crate::metrics::install();
    let (layer, io) = SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_buffer_size(config.client_buffer)
        .build_layer();
    let bridge = Bridge::new(config.clone(), io.clone());
    socket::register(&io, bridge.clone());

    let router = Router::new()
        .route("/broadcast", post(broadcast::broadcast))
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .route("/snapshot", get(status::snapshot))
        .with_state(bridge.clone())
        .merge(extra)
        .layer(layer);
    let router = match cors(&config) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    (router, bridge)
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
