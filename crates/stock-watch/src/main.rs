//! `stock-watch`: logs in (or takes `--token`), connects, and prints one line per state
//! change and per event: readable by default, one JSON object per line with `--json`.
//! Exits 0 on Ctrl-C/SIGTERM after a clean disconnect (or after the first event with
//! `--once`); exits 1 with a readable message when login fails (a certificate problem
//! is named: unknown issuer, expired, another name), 2 on bad arguments (an unreadable CA
//! file), 3 when the server refuses the token. `--ca-file` / `STOCK_CA_FILE` adds a
//! private CA; an unencrypted address to another computer is warned about.

use chrono::{SecondsFormat, Utc};
use clap::Parser;
use serde_json::{Value, json};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use stock_client::link::Transport;
use stock_client::supervisor::{ClientConfig, ClientEvent, DEFAULT_WATCHDOG};
use stock_client::{LoginTarget, SocketTarget, connect, login};

/// The local demo bridge, used when nothing else is configured.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3001";

#[derive(Parser, Debug)]
#[command(name = "stock-watch", version, about = "Watch the live stock feed from a terminal")]
pub struct WatchArgs {
    /// Mediboy REST API base URL (for login).
    #[arg(long, env = "MEDIBOY_API_BASE_URL", default_value = DEFAULT_URL)]
    pub api: String,
    /// Socket.IO server URL.
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
}

fn main() -> ExitCode {
    let args = WatchArgs::parse();
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
    runtime.block_on(run(args))
}

async fn run(args: WatchArgs) -> ExitCode {
    let trust = match &args.ca_file {
        None => stock_client::Trust::system(),
        Some(path) => match stock_client::Trust::with_ca_file(path) {
            Ok(trust) => trust,
            Err(e) => {
                eprintln!("stock-watch: {e}");
                return ExitCode::from(2);
            }
        },
    };
    for address in [&args.api, &args.socket] {
        if stock_client::trust::is_unencrypted_remote(address) {
            eprintln!("stock-watch: warning: {address} is not encrypted: the password and the feed travel in clear");
        }
    }
    let token = match (&args.token, &args.email, &args.password) {
        (Some(token), _, _) => token.clone(),
        (None, Some(email), Some(password)) => {
            let target = LoginTarget {
                path: args.login_path.clone(),
                trust: trust.clone(),
                ..LoginTarget::new(args.api.clone())
            };
            match login(&target, email, password).await {
                Ok(session) => {
                    if let Some(user) = &session.user {
                        tracing::info!(user = %user.id, "logged in");
                    }
                    secrecy::ExposeSecret::expose_secret(&session.token).to_owned()
                }
                Err(e) => {
                    eprintln!("stock-watch: login failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => {
            eprintln!(
                "stock-watch: give --email and --password (or STOCK_WATCH_EMAIL/STOCK_WATCH_PASSWORD), or --token"
            );
            return ExitCode::from(2);
        }
    };
    let mut target = SocketTarget::new(args.socket.clone(), Some(token));
    target.trust = trust;
    target.transport = match args.transport.as_str() {
        "websocket" => Transport::Websocket,
        "polling" => Transport::Polling,
        _ => Transport::Any,
    };
    let config = ClientConfig { watchdog: Duration::from_secs(args.watchdog_secs.max(1)), ..ClientConfig::default() };
    let (client, mut events) = connect(target, config);
    let mut printer = Printer { json: args.json };
    printer.state(&client.state());
    let shutdown = stock_process::shutdown_signal();
    tokio::pin!(shutdown);
    let code = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break ExitCode::SUCCESS };
                let is_data = matches!(event, ClientEvent::Stock { .. } | ClientEvent::SaleMode(_));
                let refused = match &event {
                    ClientEvent::Unauthorized { code, .. } => Some(*code),
                    _ => None,
                };
                printer.event(&event);
                if let Some(code) = refused {
                    eprintln!("stock-watch: {}", stock_client::session_ended_text(code));
                    break ExitCode::from(3);
                }
                if is_data && args.once {
                    break ExitCode::SUCCESS;
                }
            }
            _ = &mut shutdown => break ExitCode::SUCCESS,
        }
    };
    client.stop().await;
    code
}

struct Printer {
    json: bool,
}

impl Printer {
    fn line(&mut self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn state(&mut self, s: &stock_client::StateChange) {
        let at = s.since.to_rfc3339_opts(SecondsFormat::Millis, true);
        if self.json {
            self.line(json!({"type": "state", "state": s.state, "reason": s.reason, "at": at}).to_string());
        } else {
            let reason = s.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
            self.line(format!("{at}  {}{reason}", s.state));
        }
    }

    fn event(&mut self, event: &ClientEvent) {
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        match event {
            ClientEvent::State(s) => self.state(s),
            ClientEvent::Stock { raw, snapshot, .. } => {
                if self.json {
                    self.data("add_stock", raw, &at);
                } else {
                    self.line(format!(
                        "{at}  add_stock  product {}  stock {}  discount {}  peak {}  offer {}  synced {}",
                        snapshot.product_id,
                        snapshot.in_stock,
                        snapshot.discount_price,
                        snapshot.peak_hour_price,
                        snapshot.mediboy_offer_price,
                        snapshot.sync_at
                    ));
                }
            }
            ClientEvent::SaleMode(data) => {
                if self.json {
                    self.data("sale_mode", data, &at);
                } else {
                    self.line(format!("{at}  sale_mode  {data}"));
                }
            }
            ClientEvent::Gap { since, reason } => {
                let since = since.to_rfc3339_opts(SecondsFormat::Millis, true);
                if self.json {
                    self.line(json!({"type": "gap", "since": since, "reason": reason, "at": at}).to_string());
                } else {
                    self.line(format!("{at}  data may be incomplete since {since} ({reason})"));
                }
            }
            ClientEvent::GapClosed => {
                if self.json {
                    self.line(json!({"type": "gap_closed", "at": at}).to_string());
                } else {
                    self.line(format!("{at}  caught up: no updates missing"));
                }
            }
            ClientEvent::Unauthorized { code, message } => {
                if self.json {
                    self.line(json!({"type": "unauthorized", "code": code, "message": message, "at": at}).to_string());
                }
            }
        }
    }

    fn data(&mut self, event: &str, data: &Value, at: &str) {
        self.line(json!({"type": "event", "event": event, "data": data, "at": at}).to_string());
    }
}
