//! `stock-bridge`: the Socket.IO bridge the Laravel back office posts its events to.
//!
//! One port serves the HTTP API (`POST /broadcast`, `GET /healthz`, `/readyz`,
//! `/metrics`, `/snapshot`) and Socket.IO v4 (WebSocket with long-polling fallback); with
//! `STOCK_BRIDGE_ADMIN_LISTEN`, the back-office routes move to a port of their own (with
//! optional mutual TLS) and the public one keeps Socket.IO and the health checks.
//! Every broadcast is checked, given a sequence number when it is an `add_stock`, kept in
//! a last-value cache for clients that were offline, and relayed unchanged.
//!
//! # Layout
//! - [`config`]: [`BridgeConfig`], validated, with named defaults.
//! - [`cli`]: the command line (`serve`, `send`, `demo`) and its environment variables.
//! - [`http`]: [`http::app`], the router (testable in process), and the HTTP handlers.
//! - [`socket`]: the Socket.IO namespace: client auth, `stock:ping`, `stock:catch_up`.
//! - [`server`]: the accept loop: connection cap, header timeout, TLS, shutdown order.
//! - [`body_deadline`]: an Engine.IO request body must arrive whole in time.
//! - [`tls`]: the served certificate (rustls), checked at start, reloaded while running;
//!   the back office's client CA (mutual TLS).
//! - [`relay`]: [`relay::Bridge`], the shared state, and the one path broadcasts take.
//! - [`audience`]: the sockets a broadcast to everyone goes to.
//! - [`outflow`]: what each client costs: bytes queued, catch-up in flight, event rate.
//! - [`lastvalue`]: the per-product last-value cache with sequence and epoch.
//! - [`cluster`]: cluster mode: the fan-out channel through Redis, the cache in Redis, Redis health.
//! - [`source_addr`]: the address a request is from (`X-Forwarded-For` from trusted proxies).
//! - [`source_places`]: who may take a back-office place, per source, decided at accept.
//! - [`metrics`], [`api_key`]: small pieces the above use.
//! - [`send`]: the `send` command, Laravel's `testWebSocket` on the command line.
//! - `demo` (feature `demo`, on by default): the embedded demo: a bridge with a demo login
//!   and a synthetic feed, loopback only. A production build leaves it out
//!   (`--no-default-features`): its public password, key and JWT secret are then not in
//!   the binary at all.

pub mod api_key;
pub mod audience;
pub mod body_deadline;
pub mod cli;
pub mod cluster;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod http;
pub mod lastvalue;
pub mod metrics;
pub mod outflow;
pub mod relay;
pub mod send;
pub mod server;
pub mod socket;
pub mod source_addr;
pub mod source_places;
pub mod tls;

pub use config::BridgeConfig;

use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use server::{DRAIN_TIMEOUT, GOODBYE_GRACE, Listeners};

/// Serves the bridge on `listener` until `shutdown` completes, then stops listening,
/// closes every socket and waits (at most [`DRAIN_TIMEOUT`]) for in-flight requests.
pub async fn run(
    listener: TcpListener,
    config: Arc<BridgeConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, bridge) = http::app(config);
    serve(listener, router, bridge, shutdown).await
}

/// [`run`] for a router built elsewhere (the demo adds routes to [`http::app`]'s). With a
/// back-office listener configured, its address is bound here.
pub async fn serve<A: socketioxide::adapter::Adapter>(
    listener: TcpListener,
    router: Router,
    bridge: Arc<relay::Bridge<A>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let admin = match &bridge.config.admin {
        Some(admin) => Some(TcpListener::bind(admin.listen).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {} (STOCK_BRIDGE_ADMIN_LISTEN): {e}", admin.listen))
        })?),
        None => None,
    };
    serve_on(Listeners { public: listener, admin }, router, bridge, shutdown).await
}

/// [`serve`] on listeners already bound (tests bind port 0 and read the addresses).
pub async fn serve_on<A: socketioxide::adapter::Adapter>(
    listeners: Listeners,
    router: Router,
    bridge: Arc<relay::Bridge<A>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listeners, router, bridge, shutdown).await
}
