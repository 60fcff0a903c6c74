//! `stock-watch` (no subcommand): the live feed, printed, as a till of its own.

use crate::WatchArgs;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use stock_client::link::Transport;
use stock_client::supervisor::{ClientConfig, ClientEvent};
use stock_client::{LoginTarget, SocketTarget, connect, login};
use stock_protocol::{TillApp, TillIdentity};

/// Products counted for the health report at most (what a terminal "shows").
const PRODUCTS_COUNTED: usize = 100_000;

/// Who this terminal is in the fleet view.
fn identity(args: &WatchArgs) -> Option<TillIdentity> {
    let till_id = args.till_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(48)
            .collect();
        format!("terminal-{}", if host.is_empty() { "unknown" } else { &host })
    });
    let identity = TillIdentity {
        till_id,
        name: args.name.clone(),
        app: TillApp::Terminal,
        version: env!("CARGO_PKG_VERSION").into(),
        os: std::env::consts::OS.into(),
    };
    match identity.check() {
        Ok(()) => Some(identity),
        Err(e) => {
            eprintln!("stock-watch: warning: {e}; connecting as an unidentified client");
            None
        }
    }
}

pub async fn run(args: WatchArgs) -> ExitCode {
    let trust = match stock_client::Trust::from_ca_file(args.ca_file.as_deref()) {
        Ok(trust) => trust,
        Err(e) => {
            eprintln!("stock-watch: {e}");
            return ExitCode::from(2);
        }
    };
    for address in std::iter::once(args.api.clone()).chain(stock_client::link::split_addresses(&args.socket)) {
        if stock_client::trust::is_unencrypted_remote(&address) {
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
    let addresses = stock_client::link::split_addresses(&args.socket);
    if addresses.is_empty() {
        eprintln!("stock-watch: give the bridge's address with --socket (or VITE_SOCKET_URL)");
        return ExitCode::from(2);
    }
    let mut target = SocketTarget::with_addresses(addresses, Some(token));
    target.trust = trust;
    target.till = identity(&args);
    target.transport = match args.transport.as_str() {
        "websocket" => Transport::Websocket,
        "polling" => Transport::Polling,
        _ => Transport::Any,
    };
    let config = ClientConfig { watchdog: Duration::from_secs(args.watchdog_secs.max(1)), ..ClientConfig::default() };
    let (client, mut events) = connect(target, config);
    let mut printer = Printer { json: args.json };
    printer.state(&client.state());
    let mut products = HashSet::new();
    let shutdown = stock_process::shutdown_signal();
    tokio::pin!(shutdown);
    let code = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break ExitCode::SUCCESS };
                if let ClientEvent::DiagnosticsAsked { id } = &event {
                    let text = diagnostics(&args, &client);
                    client.answer_diagnostics(id.clone(), text);
                    continue;
                }
                if let ClientEvent::Stock { snapshot, .. } = &event
                    && products.len() < PRODUCTS_COUNTED
                    && products.insert(snapshot.product_id)
                {
                    client.set_shown(products.len(), false);
                }
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

/// What support gets when it asks this terminal for its Diagnostics (no token, no password).
fn diagnostics(args: &WatchArgs, client: &stock_client::LiveClient) -> String {
    let text = json!({
        "app": "stock-watch",
        "app_version": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "api_base_url": args.api,
        "socket_url": args.socket,
        "transport": args.transport,
        "state": client.state(),
        "counters": client.stats(),
        "generated_at": Utc::now(),
    });
    serde_json::to_string_pretty(&text).unwrap_or_default()
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
            ClientEvent::DiagnosticsAsked { .. } => {}
        }
    }

    fn data(&mut self, event: &str, data: &Value, at: &str) {
        self.line(json!({"type": "event", "event": event, "data": data, "at": at}).to_string());
    }
}
