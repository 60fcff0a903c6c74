//! `stock-bridge demo`: everything a newcomer needs on one machine.
//!
//! A bridge on `127.0.0.1:3001` with
//! - a fixed, printed broadcast key ([`DEMO_API_KEY`]) so `stock-bridge send` works at once;
//! - a demo login: `POST /login` accepts [`DEMO_EMAIL`] / [`DEMO_PASSWORD`] and answers the
//!   Mediboy shape (`{"token", "user": {"id", "name"}}`), `GET /user` answers who a bearer is;
//! - Socket.IO clients authenticated with the demo's JWTs (so per-user delivery works);
//! - a synthetic feed: an `add_stock` for one of a few dozen products every
//!   `--interval-ms`, and now and then a `sale_mode`.

use crate::api_key::ApiKey;
use crate::config::{BridgeConfig, ClientAuth};
use crate::relay::Bridge;
use crate::socket::jwt::sign_hs256;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use rand::Rng;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stock_protocol::{BroadcastRequest, EventPolicy};
use tokio::task::JoinHandle;

pub const DEMO_EMAIL: &str = "demo@mediboy.local";
pub const DEMO_PASSWORD: &str = "demo1234";
pub const DEMO_USER_ID: u64 = 1;
/// The demo's broadcast key. Demo only: `serve` has no default key.
pub const DEMO_API_KEY: &str = "demo-broadcast-key-change-me";
/// Signs the demo's login tokens. Demo only.
const DEMO_JWT_SECRET: &str = "demo-jwt-secret-not-for-production";

/// Product names the feed cycles through (product ids start at 5480).
const PRODUCTS: [&str; 36] = [
    "Napa 500mg",
    "Seclo 20mg",
    "Ace Plus",
    "Fexo 120mg",
    "Monas 10mg",
    "Maxpro 20mg",
    "Losectil 20mg",
    "Alatrol 10mg",
    "Azithrocin 500mg",
    "Ciprocin 500mg",
    "Flagyl 400mg",
    "Histacin 4mg",
    "Tusca Syrup",
    "Orsaline-N",
    "Ceevit 250mg",
    "Calbo-D",
    "Neuro-B",
    "Bextram Gold",
    "Rivotril 0.5mg",
    "Amdocal 5mg",
    "Osartil 50mg",
    "Bizoran 5/20",
    "Rosuva 10mg",
    "Ecosprin 75mg",
    "Comet 500mg",
    "Gliclid 80mg",
    "Insulet N",
    "Montene 10mg",
    "Doxiva 200mg",
    "Entacyd Plus",
    "Sergel 20mg",
    "Famotack 20mg",
    "Xinc 20mg",
    "Filwel Kids",
    "Deslor 5mg",
    "Esoral 20mg",
];
pub const FIRST_PRODUCT_ID: i64 = 5480;
/// How long a demo login's token is valid unless `--token-ttl-secs` says otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long the demo's tokens live (router state of the login route).
#[derive(Debug, Clone, Copy)]
struct TokenTtl(Duration);

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = "STOCK_BRIDGE_LISTEN", default_value = crate::config::DEFAULT_LISTEN)]
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
}

/// The demo's client authentication: HS256 with the demo secret, no leeway (so a short
/// `--token-ttl-secs` shows an expired session when it says).
fn demo_auth() -> ClientAuth {
    let rules = crate::socket::jwt::JwtRules::default();
    let policy =
        crate::socket::jwt::JwtPolicy::hs256(DEMO_JWT_SECRET.as_bytes(), &rules).expect("a long enough secret");
    ClientAuth::Jwt(Box::new(policy))
}

/// The demo's configuration: like `serve`'s defaults, with the demo key and demo JWTs.
/// Loopback only: the demo's login, key and JWT secret are public, and it allows any origin.
pub fn config(listen: SocketAddr, api_key: &str) -> Result<BridgeConfig, crate::config::ConfigError> {
    if !listen.ip().is_loopback() {
        return Err(crate::config::ConfigError::Invalid {
            what: "--listen",
            why: format!(
                "the demo listens on this computer only (127.0.0.1 or ::1), not {}: its password, API key and \
                 JWT secret are public. Use `stock-bridge serve` to serve a network",
                listen.ip()
            ),
        });
    }
    BridgeConfig {
        listen,
        api_key: Some(ApiKey::new(api_key)),
        cors_origins: vec!["*".into()],
        client_auth: demo_auth(),
        ..BridgeConfig::default()
    }
    .validate()
}

/// The bridge's router plus the demo login routes (tokens valid [`DEFAULT_TOKEN_TTL`]).
pub fn app(config: Arc<BridgeConfig>) -> (Router, Arc<Bridge>) {
    app_with_ttl(config, DEFAULT_TOKEN_TTL)
}

/// The same, with tokens valid `ttl`.
pub fn app_with_ttl(config: Arc<BridgeConfig>, ttl: Duration) -> (Router, Arc<Bridge>) {
    let demo =
        Router::new().route("/login", post(login)).route("/user", get(user)).layer(axum::Extension(TokenTtl(ttl)));
    crate::http::app_with(config, demo)
}

/// A running synthetic feed; dropping it stops the feed.
pub struct Feed(JoinHandle<()>);

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts posting synthetic updates through `bridge` every `interval`.
pub fn start_feed(bridge: Arc<Bridge>, interval: Duration) -> Feed {
    Feed(tokio::spawn(async move {
        let policy = EventPolicy::default();
        let mut state: Vec<(i64, f64)> =
            (0..PRODUCTS.len()).map(|i| (20 + (i as i64 * 7) % 90, 40.0 + i as f64 * 12.5)).collect();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick: u64 = 0;
        loop {
            ticker.tick().await;
            tick += 1;
            let body = {
                let mut rng = rand::rng();
                if tick.is_multiple_of(40) {
                    let mode = ["regular", "peak_hour", "discount"][rng.random_range(0..3)];
                    json!({"event": "sale_mode", "data": {"mode": mode, "changed_at": now()}})
                } else {
                    let i = rng.random_range(0..PRODUCTS.len());
                    let (stock, base) = &mut state[i];
                    *stock = (*stock + rng.random_range(-6..=5)).max(0);
                    if rng.random_ratio(1, 12) {
                        *stock = 0;
                    }
                    *base = (*base * rng.random_range(0.97..1.03)).max(5.0);
                    let round = |v: f64| (v * 100.0).round() / 100.0;
                    json!({"event": "add_stock", "data": {
                        "product_id": FIRST_PRODUCT_ID + i as i64,
                        "in_stock": *stock,
                        "discount_price": round(*base * 0.9),
                        "peak_hour_price": round(*base * 1.1),
                        "mediboy_offer_price": round(*base * 0.85),
                        "sync_at": now(),
                        "name": PRODUCTS[i],
                    }})
                }
            };
            match BroadcastRequest::parse(body.to_string().as_bytes(), &policy) {
                Ok(req) => {
                    let _ = bridge.relay(req).await;
                }
                Err(e) => tracing::error!("demo feed built an invalid payload: {e}"),
            }
        }
    }))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn demo_user() -> Value {
    json!({"id": DEMO_USER_ID, "name": "Demo Operator", "email": DEMO_EMAIL})
}

async fn login(axum::Extension(ttl): axum::Extension<TokenTtl>, body: Option<Json<Value>>) -> impl IntoResponse {
    let body = body.map(|Json(v)| v).unwrap_or_default();
    let (Some(email), Some(password)) = (body["email"].as_str(), body["password"].as_str()) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "The email and password fields are required."})),
        );
    };
    if !email.eq_ignore_ascii_case(DEMO_EMAIL) || password != DEMO_PASSWORD {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "These credentials do not match our records."})));
    }
    let exp = chrono::Utc::now().timestamp() + i64::try_from(ttl.0.as_secs()).unwrap_or(i64::MAX / 2);
    let token = sign_hs256(&json!({"sub": DEMO_USER_ID, "exp": exp}), DEMO_JWT_SECRET.as_bytes());
    (StatusCode::OK, Json(json!({"token": token, "user": demo_user()})))
}

async fn user(headers: HeaderMap) -> impl IntoResponse {
    let token = crate::http::bearer(&headers).and_then(|t| std::str::from_utf8(t).ok());
    let ClientAuth::Jwt(policy) = demo_auth() else { unreachable!("the demo uses JWTs") };
    match token.map(|t| policy.verify(t)) {
        Some(Ok(_)) => (StatusCode::OK, Json(demo_user())),
        _ => (StatusCode::UNAUTHORIZED, Json(json!({"message": "Unauthenticated."}))),
    }
}

/// Runs `demo` until SIGINT/SIGTERM.
pub async fn run(args: DemoArgs) -> Result<(), crate::cli::CliError> {
    let tls = match (args.tls_cert, args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(
            crate::tls::ServedCert::load(crate::tls::TlsFiles::public(cert, key))
                .map_err(|e| crate::config::ConfigError::Tls(e.to_string()))?,
        ),
        _ => {
            return Err(
                crate::config::ConfigError::Invalid { what: "--tls-cert", why: "goes with --tls-key".into() }.into()
            );
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = Arc::new(BridgeConfig { tls, ..config(args.listen, &args.api_key)? });
    let (listener, addr) = crate::cli::listen(config.listen).await?;
    let (router, bridge) = app_with_ttl(config, Duration::from_secs(args.token_ttl_secs));
    let _feed = (args.interval_ms > 0).then(|| start_feed(bridge.clone(), Duration::from_millis(args.interval_ms)));
    println!("stock-bridge demo listening on {scheme}://{addr}");
    println!("  Socket.IO:      {scheme}://{addr}  (VITE_SOCKET_URL)");
    println!(
        "  demo login:     POST {scheme}://{addr}/login  email {DEMO_EMAIL}  password {DEMO_PASSWORD}  (MEDIBOY_API_BASE_URL={scheme}://{addr})"
    );
    println!("  broadcast key:  {}", args.api_key);
    println!(
        "  try:            stock-bridge send --url http://{addr}/broadcast --api-key {} --product-id 5486 --in-stock 10 --discount-price 120 --peak-hour-price 140 --mediboy-offer-price 90",
        args.api_key
    );
    crate::serve(listener, router, bridge, stock_process::shutdown_signal()).await.map_err(crate::cli::CliError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_refuses_any_address_but_loopback() {
        for addr in ["0.0.0.0:0", "192.168.1.10:3001", "[::]:3001"] {
            let err = config(addr.parse().unwrap(), DEMO_API_KEY).unwrap_err().to_string();
            assert!(err.contains("--listen") && err.contains("this computer only"), "{addr}: {err}");
        }
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            assert!(config(addr.parse().unwrap(), DEMO_API_KEY).is_ok(), "{addr}");
        }
    }
}
