//! Bridge configuration: parsed once from flags and `STOCK_BRIDGE_*` variables into a
//! validated [`BridgeConfig`] with named defaults.

use crate::api_key::ApiKey;
use crate::socket::jwt::{JwtKeyError, JwtPolicy, JwtRules};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::time::Duration;
use stock_protocol::EventPolicy;

/// Where the bridge listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3001";
/// Largest accepted `POST /broadcast` body.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Events one `POST /broadcast` batch may carry (`{"events": [...]}`).
pub const DEFAULT_BATCH_MAX: usize = stock_protocol::broadcast::DEFAULT_BATCH_MAX;
/// Largest accepted batch body: a full batch of ordinary `add_stock` events (about
/// 170 KB) fits three times over.
pub const DEFAULT_BATCH_BODY_LIMIT: usize = 512 * 1024;
/// Broadcasts per second accepted before answering 429 (bursts of one second's worth pass).
pub const DEFAULT_RATE_LIMIT: u32 = 2_000;
/// Products whose latest `add_stock` is kept for catch-up.
pub const DEFAULT_CACHE_PRODUCTS: usize = 10_000;
/// How long a cached snapshot is offered for catch-up.
pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Packets queued for one slow client before it is disconnected. Room for a few full
/// batches; the queue's memory is taken only as it fills, and its bytes are bounded by
/// [`DEFAULT_CLIENT_BUFFER_BYTES`].
pub const DEFAULT_CLIENT_BUFFER: usize = 4_096;
/// Bytes queued for one slow client (WebSocket) before it is disconnected.
pub const DEFAULT_CLIENT_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Largest catch-up answer; a longer one is paged (`more: true`).
pub const DEFAULT_CATCH_UP_MAX_BYTES: usize = 1024 * 1024;
/// Client-sent events (`stock:ping`, `stock:catch_up`) per second and socket; bursts of twice that.
pub const DEFAULT_CLIENT_EVENT_RATE: u32 = 10;
/// Open TCP connections at most; beyond it new ones are closed at once. Each needs a file
/// descriptor: `LimitNOFILE` must be above this.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// A request's headers must arrive within this; it is also how long a kept-alive HTTP
/// connection may sit idle.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Socket.IO handshakes per second from one source address (bursts of twice that).
pub const DEFAULT_HANDSHAKE_RATE: u32 = 50;
/// A transport whose handshake was refused (or never came) is closed after this.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A `POST /broadcast` body must arrive within this.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Engine.IO ping interval and timeout: a dead client is noticed within their sum.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may open a Socket.IO connection, and how their user id is learned.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// Anyone may connect; no one joins a per-user room.
    #[default]
    None,
    /// A JWT in `auth.token` whose `sub` is the user id (see [`JwtPolicy`]).
    Jwt(Box<JwtPolicy>),
    /// The bridge asks the Mediboy API who the bearer is.
    Introspect { url: String, cache_for: Duration },
}

impl ClientAuth {
    /// HS256 with `secret` and the default rules (the demo, tests).
    pub fn jwt_hs256(secret: &str) -> Result<Self, JwtKeyError> {
        JwtPolicy::hs256(
            secret.as_bytes(),
            &JwtRules { leeway: crate::socket::jwt::DEFAULT_LEEWAY, ..JwtRules::default() },
        )
        .map(|p| ClientAuth::Jwt(Box::new(p)))
    }
}

/// Everything `serve` and `demo` need, already checked.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub listen: SocketAddr,
    pub api_key: Option<ApiKey>,
    /// Allow running without a key on a non-loopback address.
    pub insecure_no_auth: bool,
    /// Source networks allowed to `POST /broadcast`; empty means any.
    pub allow_sources: Vec<IpNet>,
    /// Origins allowed by CORS; `["*"]` means any.
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    /// Events one batch may carry (`STOCK_BRIDGE_BATCH_MAX`); at most `client_buffer`.
    pub batch_max: usize,
    /// Largest accepted batch body (`STOCK_BRIDGE_BATCH_BODY_LIMIT`).
    pub batch_body_limit: usize,
    pub rate_limit: u32,
    pub events: EventPolicy,
    pub cache_products: usize,
    pub cache_max_age: Duration,
    pub client_buffer: usize,
    pub client_buffer_bytes: usize,
    pub catch_up_max_bytes: usize,
    pub client_event_rate: std::num::NonZeroU32,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub handshake_rate: std::num::NonZeroU32,
    pub introspect_concurrency: usize,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub client_auth: ClientAuth,
    /// Cluster mode: share broadcasts and last values through this Redis.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (nodes of one cluster share it).
    pub redis_prefix: String,
    /// Serve TLS with this certificate (`STOCK_BRIDGE_TLS_CERT` / `_KEY`), loaded and checked.
    pub tls: Option<std::sync::Arc<crate::tls::ServedCert>>,
    /// A separate back-office listener (`STOCK_BRIDGE_ADMIN_LISTEN`): when set, the
    /// back-office routes are served there only.
    pub admin: Option<AdminConfig>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`STOCK_BRIDGE_TRUSTED_PROXIES`);
    /// from anyone else the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
}

/// The back-office listener: `POST /broadcast`, `GET /snapshot` and `GET /metrics` are
/// served here and nowhere else.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Its certificate: its own pair, or the public listener's.
    pub tls: Option<std::sync::Arc<crate::tls::ServedCert>>,
    /// Mutual TLS: a client certificate from this CA is required in the handshake.
    pub client_ca: Option<crate::tls::ClientCa>,
    pub auth: AdminAuth,
}

/// What a back-office request must present (`STOCK_BRIDGE_ADMIN_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminAuth {
    /// The API key (and, with `STOCK_BRIDGE_ADMIN_CLIENT_CA`, the client certificate too).
    #[default]
    Key,
    /// The client certificate alone is enough (needs `STOCK_BRIDGE_ADMIN_CLIENT_CA`).
    Mtls,
}

impl AdminConfig {
    /// True when a verified client certificate replaces the API key.
    pub fn certificate_suffices(&self) -> bool {
        self.auth == AdminAuth::Mtls && self.client_ca.is_some()
    }
}

/// Prefix of Redis keys and channels unless configured.
pub const DEFAULT_REDIS_PREFIX: &str = "stock-bridge";

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            api_key: None,
            insecure_no_auth: false,
            allow_sources: Vec::new(),
            cors_origins: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            batch_max: DEFAULT_BATCH_MAX,
            batch_body_limit: DEFAULT_BATCH_BODY_LIMIT,
            rate_limit: DEFAULT_RATE_LIMIT,
            events: EventPolicy::default(),
            cache_products: DEFAULT_CACHE_PRODUCTS,
            cache_max_age: DEFAULT_CACHE_MAX_AGE,
            client_buffer: DEFAULT_CLIENT_BUFFER,
            client_buffer_bytes: DEFAULT_CLIENT_BUFFER_BYTES,
            catch_up_max_bytes: DEFAULT_CATCH_UP_MAX_BYTES,
            client_event_rate: std::num::NonZeroU32::new(DEFAULT_CLIENT_EVENT_RATE).expect("not zero"),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            handshake_rate: std::num::NonZeroU32::new(DEFAULT_HANDSHAKE_RATE).expect("not zero"),
            introspect_concurrency: crate::socket::auth::DEFAULT_INTROSPECT_CONCURRENCY,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            client_auth: ClientAuth::None,
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            tls: None,
            admin: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A configuration that must not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "no API key configured and {0} is not a loopback address: set STOCK_BRIDGE_API_KEY \
         (or --api-key), or pass --insecure-no-auth to accept unauthenticated broadcasts"
    )]
    NoKeyOnPublicAddress(SocketAddr),
    #[error("the API key must be at least 16 characters long")]
    KeyTooShort,
    #[error("invalid {what}: {why}")]
    Invalid { what: &'static str, why: String },
    /// The TLS files (the text names the variable and the file).
    #[error("{0}")]
    Tls(String),
}

impl BridgeConfig {
    /// Checks the rules that make a configuration unsafe or meaningless.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if let Some(admin) = &self.admin {
            if admin.client_ca.is_some() && admin.tls.is_none() {
                return Err(ConfigError::Invalid {
                    what: "STOCK_BRIDGE_ADMIN_CLIENT_CA",
                    why: "mutual TLS needs TLS on the back-office listener: set STOCK_BRIDGE_ADMIN_TLS_CERT and \
                          STOCK_BRIDGE_ADMIN_TLS_KEY (or STOCK_BRIDGE_TLS_CERT and STOCK_BRIDGE_TLS_KEY)"
                        .into(),
                });
            }
            if admin.auth == AdminAuth::Mtls && admin.client_ca.is_none() {
                return Err(ConfigError::Invalid {
                    what: "STOCK_BRIDGE_ADMIN_AUTH",
                    why: "`mtls` needs STOCK_BRIDGE_ADMIN_CLIENT_CA (the CA of the back office's certificates)".into(),
                });
            }
            if admin.listen == self.listen && admin.listen.port() != 0 {
                return Err(ConfigError::Invalid {
                    what: "STOCK_BRIDGE_ADMIN_LISTEN",
                    why: format!("{} is also STOCK_BRIDGE_LISTEN; give the back office its own port", admin.listen),
                });
            }
        }
        // Broadcasts are accepted where the back-office routes are served.
        let broadcasts_on = self.admin.as_ref().map_or(self.listen, |a| a.listen);
        let certificate_suffices = self.admin.as_ref().is_some_and(AdminConfig::certificate_suffices);
        if let Some(key) = &self.api_key {
            if key.chars() < 16 {
                return Err(ConfigError::KeyTooShort);
            }
        } else if !broadcasts_on.ip().is_loopback() && !self.insecure_no_auth && !certificate_suffices {
            return Err(ConfigError::NoKeyOnPublicAddress(broadcasts_on));
        }
        let positive = |what: &'static str, v: usize| {
            if v == 0 { Err(ConfigError::Invalid { what, why: "must be greater than 0".into() }) } else { Ok(()) }
        };
        positive("body limit", self.body_limit)?;
        positive("STOCK_BRIDGE_BATCH_MAX", self.batch_max)?;
        positive("STOCK_BRIDGE_BATCH_BODY_LIMIT", self.batch_body_limit)?;
        if self.batch_body_limit > self.client_buffer_bytes {
            return Err(ConfigError::Invalid {
                what: "STOCK_BRIDGE_BATCH_BODY_LIMIT",
                why: format!(
                    "a full batch ({} bytes) would not fit in a client's queue of {} bytes \
                     (STOCK_BRIDGE_CLIENT_BUFFER_BYTES): a batch goes to each client at once, and every \
                     client would be dropped as too slow by it",
                    self.batch_body_limit, self.client_buffer_bytes
                ),
            });
        }
        if self.batch_max > self.client_buffer {
            return Err(ConfigError::Invalid {
                what: "STOCK_BRIDGE_BATCH_MAX",
                why: format!(
                    "{} events would not fit in a client's queue of {} packets (STOCK_BRIDGE_CLIENT_BUFFER): \
                     every client would be dropped as too slow by one full batch",
                    self.batch_max, self.client_buffer
                ),
            });
        }
        positive("rate limit", self.rate_limit as usize)?;
        positive("cache size", self.cache_products)?;
        positive("client buffer", self.client_buffer)?;
        positive("STOCK_BRIDGE_CLIENT_BUFFER_BYTES", self.client_buffer_bytes)?;
        positive("STOCK_BRIDGE_CATCH_UP_MAX_BYTES", self.catch_up_max_bytes)?;
        positive("STOCK_BRIDGE_MAX_CONNECTIONS", self.max_connections)?;
        positive("STOCK_BRIDGE_HEADER_READ_TIMEOUT_SECS", self.header_read_timeout.as_millis() as usize)?;
        Ok(self)
    }

    /// How much one batch may hold.
    pub fn batch_limits(&self) -> stock_protocol::BatchLimits {
        stock_protocol::BatchLimits { max_events: self.batch_max, max_event_bytes: self.body_limit }
    }

    /// True when any origin may use the HTTP API and Socket.IO from a browser.
    pub fn cors_any(&self) -> bool {
        self.cors_origins.iter().any(|o| o == "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_start_without_key_on_a_public_address() {
        let cfg = BridgeConfig { listen: "0.0.0.0:3001".parse().unwrap(), ..Default::default() };
        let err = cfg.clone().validate().unwrap_err();
        assert_eq!(err, ConfigError::NoKeyOnPublicAddress(cfg.listen));
        assert!(err.to_string().contains("--insecure-no-auth"));
        assert!(BridgeConfig { insecure_no_auth: true, ..cfg.clone() }.validate().is_ok());
        assert!(BridgeConfig { api_key: Some(ApiKey::new("0123456789abcdef")), ..cfg }.validate().is_ok());
        assert!(BridgeConfig::default().validate().is_ok(), "loopback without key is allowed");
    }

    #[test]
    fn with_a_back_office_listener_the_key_rule_applies_to_it() {
        let admin = |listen: &str| AdminConfig {
            listen: listen.parse().unwrap(),
            tls: None,
            client_ca: None,
            auth: AdminAuth::Key,
        };
        let public = "0.0.0.0:3001".parse().unwrap();
        // The public listener serves no broadcasts, so it needs no key of its own.
        let cfg = BridgeConfig { listen: public, admin: Some(admin("127.0.0.1:3002")), ..Default::default() };
        assert!(cfg.validate().is_ok());
        let cfg = BridgeConfig { listen: public, admin: Some(admin("10.0.0.1:3002")), ..Default::default() };
        assert_eq!(cfg.validate().unwrap_err(), ConfigError::NoKeyOnPublicAddress("10.0.0.1:3002".parse().unwrap()));
        let cfg = BridgeConfig { listen: public, admin: Some(admin("0.0.0.0:3001")), ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("STOCK_BRIDGE_ADMIN_LISTEN"));
        let cfg = BridgeConfig {
            admin: Some(AdminConfig { auth: AdminAuth::Mtls, ..admin("127.0.0.1:3002") }),
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("STOCK_BRIDGE_ADMIN_AUTH") && err.contains("STOCK_BRIDGE_ADMIN_CLIENT_CA"), "{err}");
    }

    #[test]
    fn a_batch_must_fit_in_a_clients_queue() {
        let cfg = BridgeConfig { batch_max: 5000, ..Default::default() };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("STOCK_BRIDGE_BATCH_MAX") && err.contains("STOCK_BRIDGE_CLIENT_BUFFER"), "{err}");
        assert!(BridgeConfig { batch_max: 0, ..Default::default() }.validate().is_err());
        let cfg = BridgeConfig { client_buffer_bytes: 256 * 1024, ..Default::default() };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("STOCK_BRIDGE_BATCH_BODY_LIMIT") && err.contains("STOCK_BRIDGE_CLIENT_BUFFER_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn refuses_short_keys_without_echoing_them() {
        let cfg = BridgeConfig { api_key: Some(ApiKey::new("hunter2")), ..Default::default() };
        let err = cfg.validate().unwrap_err();
        assert_eq!(err, ConfigError::KeyTooShort);
        assert!(!err.to_string().contains("hunter2"));
    }
}
