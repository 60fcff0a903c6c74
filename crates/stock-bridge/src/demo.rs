//! The embedded demo (`stock-bridge demo`): everything a newcomer needs on one machine,
//! and what in-process tests start.
//!
//! A bridge on loopback (`127.0.0.1:3001` from the command line) with
//! - a fixed, printed broadcast key ([`DEMO_API_KEY`]) so `stock-bridge send` works at once;
//! - a demo login: `POST /login` accepts [`DEMO_EMAIL`] / [`DEMO_PASSWORD`] and answers the
//!   Mediboy shape (`{"token", "user": {"id", "name"}}`), `GET /user` answers who a bearer is;
//! - Socket.IO clients authenticated with the demo's JWTs (so per-user delivery works);
//! - a synthetic feed: an `add_stock` for one of a few dozen products every
//!   `--interval-ms`, and now and then a `sale_mode`.

use crate::api_key::ApiKey;
use crate::auth::jwt::{JwtPolicy, JwtRules, sign_hs256};
use crate::config::{BridgeConfig, ClientAuth, ConfigError};
use crate::http::{App, StartError};
use crate::state::Bridge;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
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
/// The demo's support key (the fleet view at `/fleet`). Demo only.
pub const DEMO_SUPPORT_KEY: &str = "demo-support-key-change-me";
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

/// The demo's client authentication: HS256 with the demo secret, no leeway (so a short
/// `--token-ttl-secs` shows an expired session when it says).
fn demo_auth() -> ClientAuth {
    let policy = JwtPolicy::hs256(DEMO_JWT_SECRET.as_bytes(), &JwtRules::default()).expect("a long enough secret");
    ClientAuth::Jwt(Box::new(policy))
}

/// The demo's configuration: like `serve`'s defaults, with the demo key and demo JWTs.
/// Loopback only: the demo's login, key and JWT secret are public, and it allows any origin.
pub fn config(listen: SocketAddr, api_key: &str) -> Result<BridgeConfig, ConfigError> {
    if !listen.ip().is_loopback() {
        return Err(ConfigError::DemoNotLoopback(listen.ip()));
    }
    BridgeConfig {
        listen,
        api_key: Some(ApiKey::new(api_key)),
        support_key: Some(ApiKey::new(DEMO_SUPPORT_KEY)),
        cors_origins: vec!["*".into()],
        client_auth: demo_auth(),
        ..BridgeConfig::default()
    }
    .validate()
}

/// The demo's own routes, served beside the bridge's: `POST /login` (tokens valid `ttl`)
/// and `GET /user`.
pub fn routes(ttl: Duration) -> Router {
    Router::new().route("/login", post(login)).route("/user", get(user)).layer(axum::Extension(TokenTtl(ttl)))
}

/// A demo bridge: [`config`]'s bridge with the demo's login routes (tokens valid `ttl`).
pub async fn app(config: Arc<BridgeConfig>, ttl: Duration) -> Result<App, StartError> {
    App::build(config, routes(ttl)).await
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
