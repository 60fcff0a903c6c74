//! `stock-bridge demo`: the embedded demo ([`stock_bridge::demo`]) on loopback, with its
//! synthetic feed, until SIGINT/SIGTERM.

use crate::CliError;
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stock_bridge::Listeners;
use stock_bridge::config::{BridgeConfig, ConfigError};
use stock_bridge::demo::{self, DEFAULT_TOKEN_TTL, DEMO_API_KEY, DEMO_EMAIL, DEMO_PASSWORD, DEMO_SUPPORT_KEY};
use stock_bridge::tls::{ServedCert, TlsFiles};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = "STOCK_BRIDGE_LISTEN", default_value = stock_bridge::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Broadcast key (printed at start).
    #[arg(long, default_value = DEMO_API_KEY)]
    pub api_key: String,
    /// Seconds the demo login's tokens are valid (checked with no leeway).
    #[arg(long, default_value_t = DEFAULT_TOKEN_TTL.as_secs())]
    pub token_ttl_secs: u64,
    /// Milliseconds between synthetic updates; 0 turns the feed off.
    #[arg(long, default_value_t = 700)]
    pub interval_ms: u64,
    /// Serve HTTPS/WSS with this PEM certificate chain (with --tls-key), as `serve` does.
    #[arg(long)]
    pub tls_cert: Option<std::path::PathBuf>,
    #[arg(long)]
    pub tls_key: Option<std::path::PathBuf>,
    /// Keep the fleet in this SQLite file (as `serve`'s STOCK_BRIDGE_FLEET_DB); in memory without it.
    #[arg(long, env = "STOCK_BRIDGE_FLEET_DB")]
    pub fleet_db: Option<std::path::PathBuf>,
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let tls = match (args.tls_cert, args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(ServedCert::load(TlsFiles::public(cert, key)).map_err(ConfigError::from)?),
        (Some(_), None) => return Err(ConfigError::Incomplete { missing: "--tls-key", given: "--tls-cert" }.into()),
        (None, Some(_)) => return Err(ConfigError::Incomplete { missing: "--tls-cert", given: "--tls-key" }.into()),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = Arc::new(BridgeConfig { tls, fleet_db: args.fleet_db, ..demo::config(args.listen, &args.api_key)? });
    let listeners = Listeners::bind(&config).await?;
    let addr = listeners.public_addr().map_err(CliError::BoundAddress)?;
    let app = demo::app(config, Duration::from_secs(args.token_ttl_secs)).await?;
    let _feed =
        (args.interval_ms > 0).then(|| demo::start_feed(app.bridge.clone(), Duration::from_millis(args.interval_ms)));
    println!("stock-bridge demo listening on {scheme}://{addr}");
    println!("  Socket.IO:      {scheme}://{addr}  (VITE_SOCKET_URL)");
    println!(
        "  demo login:     POST {scheme}://{addr}/login  email {DEMO_EMAIL}  password {DEMO_PASSWORD}  (MEDIBOY_API_BASE_URL={scheme}://{addr})"
    );
    println!("  broadcast key:  {}", args.api_key);
    println!("  fleet (support): {scheme}://{addr}/fleet  support key {DEMO_SUPPORT_KEY}");
    println!(
        "  try:            stock-bridge send --url http://{addr}/broadcast --api-key {} --product-id 5486 --in-stock 10 --discount-price 120 --peak-hour-price 140 --mediboy-offer-price 90",
        args.api_key
    );
    stock_bridge::run(listeners, app, stock_process::shutdown_signal()).await.map_err(CliError::Serve)
}
