//! `stock-bridge`: the Socket.IO bridge the Laravel back office posts its events to.
//!
//! One port serves the HTTP API (`POST /broadcast`, `GET /healthz`, `/readyz`,
//! `/metrics`, `/snapshot`) and Socket.IO v4 (WebSocket with long-polling fallback).
//! Every broadcast is checked, given a sequence number when it is an `add_stock`, kept in
//! a last-value cache for clients that were offline, and relayed unchanged.
//!
//! # Layout
//! - [`config`]: [`BridgeConfig`], validated, with named defaults.
//! - [`cli`]: the command line (`serve`, `send`, `demo`) and its environment variables.
//! - [`http`]: [`http::app`], the router (testable in process), and the HTTP handlers.
//! - [`socket`]: the Socket.IO namespace: client auth, `stock:ping`, `stock:catch_up`.
//! - [`relay`]: [`relay::Bridge`], the shared state, and the one path broadcasts take.
//! - [`lastvalue`]: the per-product last-value cache with sequence and epoch.
//! - [`cluster`]: cluster mode: the Redis adapter's driver, the cache in Redis, Redis health.
//! - [`ratelimit`], [`metrics`], [`secret`]: small pieces the above use.
//! - [`send`]: the `send` command, Laravel's `testWebSocket` on the command line.
//! - [`demo`]: the embedded demo: a bridge with a demo login and a synthetic feed.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod http;
pub mod lastvalue;
pub mod metrics;
pub mod ratelimit;
pub mod relay;
pub mod secret;
pub mod send;
pub mod socket;

pub use config::BridgeConfig;

use axum::serve::ListenerExt;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long shutdown lets the DISCONNECT packets leave before closing the transports.
pub const GOODBYE_GRACE: Duration = Duration::from_millis(250);

/// How long shutdown waits for in-flight requests before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the bridge on `listener` until `shutdown` completes, then stops accepting,
/// closes every socket and waits (at most [`DRAIN_TIMEOUT`]) for in-flight requests.
pub async fn run(
    listener: TcpListener,
    config: Arc<BridgeConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, bridge) = http::app(config);
    serve(listener, router, bridge, shutdown).await
}

/// [`run`] for a router built elsewhere (the demo adds routes to [`http::app`]'s).
pub async fn serve<A: socketioxide::adapter::Adapter>(
    listener: TcpListener,
    router: Router,
    bridge: Arc<relay::Bridge<A>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let io = bridge.io.clone();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = listener.tap_io(|tcp| {
        // Without it, small broadcast frames wait for Nagle's algorithm (about 4x latency).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
    });
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing client connections");
            // DISCONNECT first, so clients know it was the server (Socket.IO "close"), and
            // give the packets a moment to leave before the transports are closed.
            let _ = io.disconnect().await;
            tokio::time::sleep(GOODBYE_GRACE).await;
            io.close().await;
            let _ = closed_tx.send(());
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        _ = closed_rx => match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; stopping anyway");
                Ok(())
            }
        },
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
