//! The `stock-bridge` binary: the command line around the library (see its docs).
//!
//! # Layout
//! - This file: the entry, logging, `serve`, and [`CliError`] (printed as `stock-bridge: …`).
//! - `args`: the flags and variables of every command (clap).
//! - `send`: `stock-bridge send`, the back office's post from a terminal.
//! - `demo`: `stock-bridge demo` (feature `demo`).

mod args;
#[cfg(feature = "demo")]
mod demo;
mod send;

use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use stock_bridge::{App, BindError, ConfigError, Listeners, StartError};

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stock-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            args::Command::Serve(args) => serve(*args).await,
            args::Command::Send(args) => send::run(*args).await.map_err(CliError::from),
            #[cfg(feature = "demo")]
            args::Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stock-bridge: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Why a command failed; printed as `stock-bridge: <this>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Listen(#[from] BindError),
    #[error("cannot read the bound address: {0}")]
    BoundAddress(std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Send(#[from] send::SendError),
}

async fn serve(args: args::ServeArgs) -> Result<(), CliError> {
    let config = Arc::new(args.into_settings().into_config()?);
    let listeners = Listeners::bind(&config).await?;
    let bound = listeners.public_addr().map_err(CliError::BoundAddress)?;
    let admin_bound = listeners.admin_addr().transpose().map_err(CliError::BoundAddress)?;
    if let (Some(admin), Some(bound)) = (&config.admin, admin_bound) {
        let scheme = if admin.tls.is_some() { "https" } else { "http" };
        let mtls = if admin.client_ca.is_some() { " (client certificate required)" } else { "" };
        // Scripts (and tests using port 0) read this line too.
        println!("stock-bridge back office listening on {scheme}://{bound}{mtls}");
    }
    let auth = match (&config.api_key, config.admin.as_ref().is_some_and(|a| a.certificate_suffices())) {
        (_, true) => "client certificate",
        (Some(_), false) => "api key",
        (None, false) => "none (loopback or --insecure-no-auth)",
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let redis = config.redis_url.as_deref().map(stock_bridge::http::redact);
    let app = App::build(config, axum::Router::new()).await?;
    // Scripts (and tests using port 0) read this line.
    println!("stock-bridge listening on {scheme}://{bound}");
    match redis {
        Some(redis) => {
            tracing::info!(listen = %bound, admin = ?admin_bound, auth, %redis, "stock-bridge serving HTTP and Socket.IO, cluster mode")
        }
        None => tracing::info!(listen = %bound, admin = ?admin_bound, auth, "stock-bridge serving HTTP and Socket.IO"),
    }
    stock_bridge::run(listeners, app, stock_process::shutdown_signal()).await.map_err(CliError::Serve)
}
