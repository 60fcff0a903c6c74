//! The client core of the live stock dashboard: log in, hold a Socket.IO connection that
//! never lies about its state, and hand `add_stock` / `sale_mode` updates to whoever
//! embeds it (the desktop app, or the `stock-watch` terminal tool, `crates/stock-watch`).
//! Knows nothing of Tauri, nor of a command line.
//!
//! # Layout
//! - [`login`]: `POST {MEDIBOY_API_BASE_URL}/login`, token and user extraction, typed errors.
//! - [`link`]: one Socket.IO connection attempt over rust_socketio 0.6, fenced so that
//!   its known bugs cannot leak (see the module docs).
//! - [`supervisor`]: [`LiveClient`], the lifecycle: states, backoff, watchdog, catch-up,
//!   bounded hand-over to the embedder.
//! - [`ledger`]: duplicate and stale-snapshot filtering, and the catch-up position.
//! - [`dashboard`]: the operator's view (latest per product, state history, gap notice),
//!   what any UI draws.
//! - [`backoff`]: reconnect delays.
//! - [`alerts`]: what deserves a desktop notification (watched products, sale mode), spaced
//!   and gathered.
//! - [`trust`]: which servers are trusted over https/wss (system store + a private CA),
//!   and connection failures named by cause (certificate problems included).
//! - [`update`]: keeping the till up to date (when to check, what the operator is offered,
//!   when it installs); the app plugs in the signed updater.

pub mod alerts;
pub mod backoff;
pub mod dashboard;
pub mod ledger;
pub mod link;
pub mod login;
pub mod supervisor;
pub mod trust;
pub mod update;

pub use link::{Connector, SocketIoConnector, SocketTarget};
pub use login::{LoginError, LoginTarget, Session, Token, User, login};
pub use supervisor::{ClientConfig, ClientEvent, ClientHandle, LiveClient, StateChange, StatsSnapshot};
pub use trust::Trust;

use std::sync::Arc;

/// Starts a [`LiveClient`] on the real Socket.IO connector.
pub fn connect(target: SocketTarget, config: ClientConfig) -> (LiveClient, tokio::sync::mpsc::Receiver<ClientEvent>) {
    LiveClient::start(Arc::new(SocketIoConnector::new(target)), config)
}

/// What the operator is told when the bridge refused the session's token.
pub fn session_ended_text(code: stock_protocol::RefusalCode) -> &'static str {
    match code {
        stock_protocol::RefusalCode::TokenExpired => "Your session has expired — please sign in again",
        _ => "Your session was refused by the server — please sign in again",
    }
}
