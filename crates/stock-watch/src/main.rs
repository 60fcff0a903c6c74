//! `stock-watch`: the live feed in a terminal, for support staff, and the bridge's fleet.
//!
//! - `stock-watch [flags]`: logs in (or takes `--token`), connects as a till of its own
//!   (`app: terminal`, `--till-id`, `--name`), and prints one line per state change and
//!   per event: readable by default, one JSON object per line with `--json`. Exits 0 on
//!   Ctrl-C/SIGTERM after a clean disconnect (or after the first event with `--once`);
//!   1 with a readable message when login fails (a certificate problem is named: unknown
//!   issuer, expired, another name); 2 on bad arguments (an unreadable CA file); 3 when the
//!   server refuses the token. `--ca-file` / `STOCK_CA_FILE` adds a private CA; an
//!   unencrypted address to another computer is warned about.
//! - `stock-watch fleet --url ... --support-key ...`: every till the bridge knows, the
//!   counts and a table, "needs attention first" (see [`fleet`]).
//!
//! # Layout
//! - This file: the command line and the entry.
//! - `watch`: the feed, printed.
//! - `fleet`: the fleet, printed.

mod fleet;
mod watch;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;
use stock_client::supervisor::DEFAULT_WATCHDOG;

/// The local demo bridge, used when nothing else is configured.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3001";

#[derive(Parser, Debug)]
#[command(
    name = "stock-watch",
    version,
    about = "Watch the live stock feed from a terminal, or the bridge's fleet of tills",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Every till the bridge knows, needs attention first (support staff; needs the support key).
    Fleet(fleet::FleetArgs),
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Mediboy REST API base URL (for login).
    #[arg(long, env = "MEDIBOY_API_BASE_URL", default_value = DEFAULT_URL)]
    pub api: String,
    /// Socket.IO server URL, or a cluster's nodes separated by commas (each attempt after
    /// a failure or a loss goes to the next).
    #[arg(long, env = "VITE_SOCKET_URL", default_value = DEFAULT_URL)]
    pub socket: String,
    #[arg(long, env = "STOCK_WATCH_EMAIL")]
    pub email: Option<String>,
    #[arg(long, env = "STOCK_WATCH_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Use this bearer token instead of logging in.
    #[arg(long, env = "STOCK_WATCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Login path under --api.
    #[arg(long, default_value = stock_client::login::DEFAULT_LOGIN_PATH)]
    pub login_path: String,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Exit after the first event.
    #[arg(long)]
    pub once: bool,
    /// Seconds of silence (after the server answered a probe) before the feed counts as offline.
    #[arg(long, default_value_t = DEFAULT_WATCHDOG.as_secs())]
    pub watchdog_secs: u64,
    /// Extra CA bundle (PEM) to trust besides the system's, for servers with a private CA.
    #[arg(long, env = "STOCK_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Transport: any (polling upgraded to websocket), websocket, or polling.
    #[arg(long, default_value = "any", value_parser = ["any", "websocket", "polling"])]
    pub transport: String,
    /// The name this terminal shows in the fleet view (e.g. "Support desk 1").
    #[arg(long, env = "STOCK_WATCH_NAME", default_value = "")]
    pub name: String,
    /// The id this terminal goes by in the fleet view [default: terminal-<host name>].
    #[arg(long, env = "STOCK_WATCH_TILL_ID")]
    pub till_id: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stock-watch: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Fleet(args)) => runtime.block_on(fleet::run(args)),
        None => runtime.block_on(watch::run(cli.watch)),
    }
}
