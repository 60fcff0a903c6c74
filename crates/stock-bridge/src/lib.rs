//! `stock-bridge`: the Socket.IO bridge the Laravel back office posts its events to.
//!
//! One port serves the HTTP API (`POST /broadcast`, `GET /healthz`, `/readyz`,
//! `/metrics`, `/snapshot`) and Socket.IO v4 (WebSocket with long-polling fallback); with
//! `STOCK_BRIDGE_ADMIN_LISTEN`, the back-office routes move to a port of their own (with
//! optional mutual TLS) and the public one keeps Socket.IO and the health checks.
//! Every broadcast is checked, given a sequence number when it is an `add_stock`, kept in
//! a last-value cache for clients that were offline, and relayed unchanged.
//!
//! A bridge is made by [`App::build`] and served by [`run`] until its shutdown future
//! completes; the `stock-bridge` binary (`src/bin/stock-bridge`) is the command line
//! around them.
//!
//! # Layout
//! - [`config`]: [`Settings`] checked into a [`BridgeConfig`], with named defaults.
//! - [`http`]: [`App`] (the one constructor), the routers, who may call them
//!   ([`http::access`]) and the HTTP handlers.
//! - [`server`]: [`run`], the accept loop: connection cap, header timeout, TLS, shutdown order.
//! - [`open_files`]: how many connections the process's open-file limit leaves room for.
//! - [`state`]: [`Bridge`], what the handlers share.
//! - [`mode`]: alone or a cluster node, and where the last values live.
//! - [`relay`]: the one path broadcasts take: numbering, hand-over, fan-out, slow-client cuts.
//! - [`encoded`]: an event encoded once for all its sockets, and a run of them as it
//!   crosses Redis.
//! - [`socket`]: the Socket.IO namespace: admission, `stock:ping`, `stock:catch_up`.
//! - [`auth`]: client authentication (JWT, introspection) and refusals.
//! - [`accounting`]: what each client costs in bytes (taps, frame sizes, upgrades, polls),
//!   its catch-up turn and its event rate.
//! - [`audience`]: the sockets a broadcast to everyone goes to.
//! - [`lastvalue`]: the per-product last-value cache with sequence and epoch.
//! - [`cluster`]: cluster mode: the fan-out channel through Redis, the cache in Redis, Redis health.
//! - [`body_deadline`]: an Engine.IO request body must arrive whole in time.
//! - [`tls`]: the served certificate (rustls), checked at start, reloaded while running;
//!   the back office's client CA (mutual TLS).
//! - [`source_addr`]: the address a request is from (`X-Forwarded-For` from trusted proxies).
//! - [`source_places`]: who may take a back-office place, per source, decided at accept.
//! - [`metrics`], [`api_key`]: small pieces the above use.
//! - `demo` (feature `demo`, on by default): the embedded demo: a bridge with a demo login
//!   and a synthetic feed, loopback only. A production build leaves it out
//!   (`--no-default-features`): its public password, key and JWT secret are then not in
//!   the binary at all.

pub mod accounting;
pub mod api_key;
pub mod audience;
pub mod auth;
pub mod body_deadline;
pub mod cluster;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod encoded;
pub mod fleet;
pub mod http;
pub mod lastvalue;
pub mod metrics;
pub mod mode;
pub mod open_files;
pub mod relay;
pub mod server;
pub mod socket;
pub mod source_addr;
pub mod source_places;
pub mod state;
pub mod tls;

pub use config::{BridgeConfig, ConfigError, Settings};
pub use http::{App, StartError};
pub use server::{BindError, DRAIN_TIMEOUT, GOODBYE_GRACE, Listeners, run};
pub use state::Bridge;
