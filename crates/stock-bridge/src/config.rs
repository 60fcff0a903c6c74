//! Bridge configuration: [`Settings`] (what the command line read from flags and
//! `STOCK_BRIDGE_*` variables) checked once into a [`BridgeConfig`] with named defaults;
//! a refusal is a typed [`ConfigError`] naming the variable.

use crate::api_key::ApiKey;
pub use crate::auth::ClientAuth;
use crate::auth::jwt::{JwtKeyError, JwtPolicy, JwtRules};
use crate::tls::{ClientCa, ServedCert, TlsError, TlsFiles};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
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
/// descriptor: the cap in force stays under the process's open-file limit
/// ([`crate::open_files`]), so `LimitNOFILE` should be above this.
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
    pub tls: Option<Arc<ServedCert>>,
    /// A separate back-office listener (`STOCK_BRIDGE_ADMIN_LISTEN`): when set, the
    /// back-office routes are served there only.
    pub admin: Option<AdminConfig>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`STOCK_BRIDGE_TRUSTED_PROXIES`);
    /// from anyone else the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// The key support staff read the fleet with (`STOCK_BRIDGE_SUPPORT_KEY`); without it
    /// the fleet is kept but not served.
    pub support_key: Option<ApiKey>,
    /// The fleet's SQLite file on a node alone (`STOCK_BRIDGE_FLEET_DB`); in memory without it.
    pub fleet_db: Option<PathBuf>,
    /// Offline tills are forgotten after this (`STOCK_BRIDGE_FLEET_RETENTION_DAYS`).
    pub fleet_retention: Duration,
    /// How long a node's fleet lease lasts (cluster mode; `STOCK_BRIDGE_FLEET_LEASE_SECS`).
    pub fleet_lease: Duration,
    /// The name this node goes by in the fleet (`STOCK_BRIDGE_NODE_NAME`; default: the
    /// host's name and a random suffix).
    pub node_name: Option<String>,
}

/// The back-office listener: `POST /broadcast`, `GET /snapshot` and `GET /metrics` are
/// served here and nowhere else.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Its certificate: its own pair, or the public listener's.
    pub tls: Option<Arc<ServedCert>>,
    /// Mutual TLS: a client certificate from this CA is required in the handshake.
    pub client_ca: Option<ClientCa>,
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
            introspect_concurrency: crate::auth::DEFAULT_INTROSPECT_CONCURRENCY,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            client_auth: ClientAuth::None,
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            tls: None,
            admin: None,
            trusted_proxies: Vec::new(),
            support_key: None,
            fleet_db: None,
            fleet_retention: DEFAULT_FLEET_RETENTION,
            fleet_lease: crate::fleet::cluster::DEFAULT_LEASE,
            node_name: None,
        }
    }
}

/// Offline tills are kept this long unless configured.
pub const DEFAULT_FLEET_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A configuration that must not start. Each names the variable (or flag) to fix; none
/// repeats a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no API key configured and {0} is not a loopback address: set STOCK_BRIDGE_API_KEY \
         (or --api-key), or pass --insecure-no-auth to accept unauthenticated broadcasts"
    )]
    NoKeyOnPublicAddress(SocketAddr),
    #[error("the API key must be at least 16 characters long")]
    KeyTooShort,
    #[error("invalid STOCK_BRIDGE_SUPPORT_KEY: the support key must be at least 16 characters long")]
    SupportKeyTooShort,
    #[error(
        "invalid STOCK_BRIDGE_SUPPORT_KEY: it is the API key; give support a key of its own (it reads the fleet \
         and cannot broadcast)"
    )]
    SupportKeyIsApiKey,
    #[error("invalid {0}: must be greater than 0")]
    NotPositive(&'static str),
    /// One of a pair (certificate and key) without the other.
    #[error("invalid {missing}: is required with {given}")]
    Incomplete { missing: &'static str, given: &'static str },
    #[error("invalid {0}: needs STOCK_BRIDGE_ADMIN_LISTEN (the back-office listener)")]
    NeedsAdminListen(&'static str),
    #[error(
        "invalid STOCK_BRIDGE_ADMIN_CLIENT_NAMES: needs STOCK_BRIDGE_ADMIN_CLIENT_CA (names are read from client certificates)"
    )]
    NamesWithoutClientCa,
    #[error(
        "invalid STOCK_BRIDGE_ADMIN_CLIENT_CA: mutual TLS needs TLS on the back-office listener: set \
         STOCK_BRIDGE_ADMIN_TLS_CERT and STOCK_BRIDGE_ADMIN_TLS_KEY (or STOCK_BRIDGE_TLS_CERT and STOCK_BRIDGE_TLS_KEY)"
    )]
    ClientCaWithoutTls,
    #[error(
        "invalid STOCK_BRIDGE_ADMIN_AUTH: `mtls` needs STOCK_BRIDGE_ADMIN_CLIENT_CA (the CA of the back office's certificates)"
    )]
    MtlsWithoutClientCa,
    #[error("invalid STOCK_BRIDGE_ADMIN_LISTEN: {0} is also STOCK_BRIDGE_LISTEN; give the back office its own port")]
    AdminOnPublicPort(SocketAddr),
    #[error(
        "invalid STOCK_BRIDGE_BATCH_BODY_LIMIT: a full batch ({batch} bytes) would not fit in a client's queue of \
         {queue} bytes (STOCK_BRIDGE_CLIENT_BUFFER_BYTES): a batch goes to each client at once, and every client \
         would be dropped as too slow by it"
    )]
    BatchBytesOverClientQueue { batch: usize, queue: usize },
    #[error(
        "invalid STOCK_BRIDGE_BATCH_MAX: {batch} events would not fit in a client's queue of {queue} packets \
         (STOCK_BRIDGE_CLIENT_BUFFER): every client would be dropped as too slow by one full batch"
    )]
    BatchOverClientQueue { batch: usize, queue: usize },
    #[error("invalid --events: {0}")]
    Events(String),
    #[error(
        "invalid STOCK_BRIDGE_JWT_SECRET and STOCK_BRIDGE_JWT_PUBLIC_KEY: give one, not both (a secret for HS256, \
         a public key for RS256/ES256)"
    )]
    JwtSecretAndPublicKey,
    #[error("invalid STOCK_BRIDGE_JWT_SECRET or STOCK_BRIDGE_JWT_PUBLIC_KEY: one is required with --client-auth jwt")]
    JwtKeyMissing,
    #[error("invalid STOCK_BRIDGE_JWT_SECRET: {0}")]
    JwtSecret(JwtKeyError),
    #[error("invalid STOCK_BRIDGE_JWT_PUBLIC_KEY: cannot read {}: {source}", path.display())]
    JwtPublicKeyUnreadable { path: PathBuf, source: std::io::Error },
    #[error("invalid STOCK_BRIDGE_JWT_PUBLIC_KEY: {}: {source}", path.display())]
    JwtPublicKey { path: PathBuf, source: JwtKeyError },
    #[error(
        "invalid STOCK_BRIDGE_INTROSPECT_URL: required with --client-auth introspect (or set MEDIBOY_API_BASE_URL)"
    )]
    IntrospectUrlMissing,
    #[error("invalid STOCK_BRIDGE_INTROSPECT_URL: {0}")]
    IntrospectUrl(String),
    /// The demo listens on loopback only (its secrets are public).
    #[error(
        "invalid --listen: the demo listens on this computer only (127.0.0.1 or ::1), not {0}: its password, API \
         key and JWT secret are public. Use `stock-bridge serve` to serve a network"
    )]
    DemoNotLoopback(std::net::IpAddr),
    /// The TLS files (the text names the variable and the file).
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How Socket.IO clients are authenticated, as chosen (`STOCK_BRIDGE_CLIENT_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMode {
    /// Anyone may connect; no per-user rooms.
    #[default]
    None,
    /// A JWT in the handshake `auth.token`; `sub` is the user id.
    Jwt,
    /// Ask the Mediboy API who the bearer of `auth.token` is.
    Introspect,
}

/// Seconds an introspection answer is reused unless configured.
pub const DEFAULT_INTROSPECT_CACHE: Duration = Duration::from_secs(60);

/// The bridge's settings as given (each field is a flag and a `STOCK_BRIDGE_*` variable
/// of `stock-bridge serve`), before they are checked: [`Settings::into_config`] loads the
/// files they name and checks them into a [`BridgeConfig`]. `Default` gives the named
/// defaults of this module.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub api_key: Option<SecretString>,
    pub insecure_no_auth: bool,
    pub allow_sources: Vec<IpNet>,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub batch_max: usize,
    pub batch_body_limit: usize,
    pub rate_limit: u32,
    pub events: Vec<String>,
    pub cache_products: usize,
    pub cache_max_age: Duration,
    pub client_buffer: usize,
    pub client_buffer_bytes: usize,
    pub catch_up_max_bytes: usize,
    pub client_event_rate: u32,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub handshake_rate: u32,
    pub introspect_concurrency: usize,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub client_auth: ClientAuthMode,
    pub jwt_secret: Option<SecretString>,
    pub jwt_public_key: Option<PathBuf>,
    pub jwt_leeway: Duration,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub introspect_url: Option<String>,
    /// `MEDIBOY_API_BASE_URL`: the introspection URL is derived from it when not given.
    pub api_base_url: Option<String>,
    pub introspect_cache: Duration,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_reload_check: Duration,
    pub admin_listen: Option<SocketAddr>,
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub admin_client_ca: Option<PathBuf>,
    pub admin_auth: AdminAuth,
    pub admin_client_names: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub support_key: Option<SecretString>,
    pub fleet_db: Option<PathBuf>,
    pub fleet_retention_days: u64,
    pub fleet_lease: Duration,
    pub node_name: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let config = BridgeConfig::default();
        Settings {
            listen: config.listen,
            api_key: None,
            insecure_no_auth: false,
            allow_sources: Vec::new(),
            cors_origins: Vec::new(),
            body_limit: config.body_limit,
            batch_max: config.batch_max,
            batch_body_limit: config.batch_body_limit,
            rate_limit: config.rate_limit,
            events: DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect(),
            cache_products: config.cache_products,
            cache_max_age: config.cache_max_age,
            client_buffer: config.client_buffer,
            client_buffer_bytes: config.client_buffer_bytes,
            catch_up_max_bytes: config.catch_up_max_bytes,
            client_event_rate: DEFAULT_CLIENT_EVENT_RATE,
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout,
            handshake_rate: DEFAULT_HANDSHAKE_RATE,
            introspect_concurrency: config.introspect_concurrency,
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            client_auth: ClientAuthMode::None,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_leeway: crate::auth::jwt::DEFAULT_LEEWAY,
            jwt_issuer: None,
            jwt_audience: None,
            introspect_url: None,
            api_base_url: None,
            introspect_cache: DEFAULT_INTROSPECT_CACHE,
            redis_url: None,
            redis_prefix: config.redis_prefix,
            tls_cert: None,
            tls_key: None,
            tls_reload_check: crate::tls::RELOAD_CHECK,
            admin_listen: None,
            admin_tls_cert: None,
            admin_tls_key: None,
            admin_client_ca: None,
            admin_auth: AdminAuth::Key,
            admin_client_names: Vec::new(),
            trusted_proxies: Vec::new(),
            support_key: None,
            fleet_db: None,
            fleet_retention_days: DEFAULT_FLEET_RETENTION.as_secs() / (24 * 3600),
            fleet_lease: config.fleet_lease,
            node_name: None,
        }
    }
}

/// Event names relayed unless configured (`STOCK_BRIDGE_EVENTS`).
pub const DEFAULT_EVENTS: [&str; 2] = ["add_stock", "sale_mode"];

/// Both of a pair of files, or neither; one alone is refused naming the other.
fn pair(
    first: Option<PathBuf>,
    second: Option<PathBuf>,
    names: (&'static str, &'static str),
) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    match (first, second) {
        (None, None) => Ok(None),
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (Some(_), None) => Err(ConfigError::Incomplete { missing: names.1, given: names.0 }),
        (None, Some(_)) => Err(ConfigError::Incomplete { missing: names.0, given: names.1 }),
    }
}

/// A text setting, unless it is blank.
fn given(text: Option<String>) -> Option<String> {
    text.filter(|s| !s.trim().is_empty())
}

impl Settings {
    /// Loads the files the settings name (certificates, keys) and checks everything into
    /// a [`BridgeConfig`].
    pub fn into_config(self) -> Result<BridgeConfig, ConfigError> {
        let events = EventPolicy::new(self.events.iter().map(String::as_str)).map_err(ConfigError::Events)?;
        let client_auth = self.client_auth()?;
        let tls = pair(self.tls_cert, self.tls_key, (crate::tls::CERT_VAR, crate::tls::KEY_VAR))?
            .map(|(cert, key)| ServedCert::load_checking_every(TlsFiles::public(cert, key), self.tls_reload_check))
            .transpose()?;
        let admin = match self.admin_listen {
            None => {
                let given = [
                    ("STOCK_BRIDGE_ADMIN_TLS_CERT", self.admin_tls_cert.is_some()),
                    ("STOCK_BRIDGE_ADMIN_TLS_KEY", self.admin_tls_key.is_some()),
                    ("STOCK_BRIDGE_ADMIN_CLIENT_CA", self.admin_client_ca.is_some()),
                    ("STOCK_BRIDGE_ADMIN_AUTH", self.admin_auth != AdminAuth::Key),
                    ("STOCK_BRIDGE_ADMIN_CLIENT_NAMES", !self.admin_client_names.is_empty()),
                ];
                if let Some((var, _)) = given.iter().find(|(_, set)| *set) {
                    return Err(ConfigError::NeedsAdminListen(var));
                }
                None
            }
            Some(listen) => {
                let own = pair(
                    self.admin_tls_cert,
                    self.admin_tls_key,
                    (crate::tls::ADMIN_CERT_VAR, crate::tls::ADMIN_KEY_VAR),
                )?
                .map(|(cert, key)| ServedCert::load_checking_every(TlsFiles::admin(cert, key), self.tls_reload_check))
                .transpose()?;
                let names: Vec<String> =
                    self.admin_client_names.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
                let client_ca = match self.admin_client_ca {
                    Some(file) => Some(ClientCa::load(file, names)?),
                    None if !names.is_empty() => return Err(ConfigError::NamesWithoutClientCa),
                    None => None,
                };
                Some(AdminConfig { listen, tls: own.or_else(|| tls.clone()), client_ca, auth: self.admin_auth })
            }
        };
        let nonzero = |var, v| std::num::NonZeroU32::new(v).ok_or(ConfigError::NotPositive(var));
        BridgeConfig {
            listen: self.listen,
            api_key: self.api_key.filter(|k| !k.expose_secret().is_empty()).map(ApiKey::from),
            insecure_no_auth: self.insecure_no_auth,
            allow_sources: self.allow_sources,
            cors_origins: self.cors_origins.into_iter().filter(|o| !o.trim().is_empty()).collect(),
            body_limit: self.body_limit,
            batch_max: self.batch_max,
            batch_body_limit: self.batch_body_limit,
            rate_limit: self.rate_limit,
            events,
            cache_products: self.cache_products,
            cache_max_age: self.cache_max_age,
            client_buffer: self.client_buffer,
            client_buffer_bytes: self.client_buffer_bytes,
            catch_up_max_bytes: self.catch_up_max_bytes,
            client_event_rate: nonzero("STOCK_BRIDGE_CLIENT_EVENT_RATE", self.client_event_rate)?,
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            handshake_rate: nonzero("STOCK_BRIDGE_HANDSHAKE_RATE", self.handshake_rate)?,
            introspect_concurrency: self.introspect_concurrency,
            ping_interval: self.ping_interval.max(Duration::from_secs(1)),
            ping_timeout: self.ping_timeout.max(Duration::from_secs(1)),
            client_auth,
            redis_url: given(self.redis_url),
            redis_prefix: self.redis_prefix,
            tls,
            admin,
            trusted_proxies: self.trusted_proxies,
            support_key: self.support_key.filter(|k| !k.expose_secret().is_empty()).map(ApiKey::from),
            fleet_db: self.fleet_db.filter(|p| !p.as_os_str().is_empty()),
            fleet_retention: Duration::from_secs(
                nonzero(
                    "STOCK_BRIDGE_FLEET_RETENTION_DAYS",
                    u32::try_from(self.fleet_retention_days).unwrap_or(u32::MAX),
                )?
                .get() as u64
                    * 24
                    * 3600,
            ),
            fleet_lease: self.fleet_lease.max(Duration::from_secs(1)),
            node_name: given(self.node_name),
        }
        .validate()
    }

    /// The client authentication the settings choose, with its key loaded.
    fn client_auth(&self) -> Result<ClientAuth, ConfigError> {
        match self.client_auth {
            ClientAuthMode::None => Ok(ClientAuth::None),
            ClientAuthMode::Jwt => {
                let rules = JwtRules {
                    leeway: self.jwt_leeway,
                    issuer: given(self.jwt_issuer.clone()),
                    audience: given(self.jwt_audience.clone()),
                };
                let secret = self.jwt_secret.as_ref().filter(|s| !s.expose_secret().is_empty());
                let policy = match (secret, &self.jwt_public_key) {
                    (Some(_), Some(_)) => return Err(ConfigError::JwtSecretAndPublicKey),
                    (None, None) => return Err(ConfigError::JwtKeyMissing),
                    (Some(secret), None) => {
                        JwtPolicy::hs256(secret.expose_secret().as_bytes(), &rules).map_err(ConfigError::JwtSecret)?
                    }
                    (None, Some(path)) => {
                        let pem = std::fs::read(path)
                            .map_err(|source| ConfigError::JwtPublicKeyUnreadable { path: path.clone(), source })?;
                        JwtPolicy::public_key(&pem, &rules)
                            .map_err(|source| ConfigError::JwtPublicKey { path: path.clone(), source })?
                    }
                };
                Ok(ClientAuth::Jwt(Box::new(policy)))
            }
            ClientAuthMode::Introspect => {
                let url = self
                    .introspect_url
                    .clone()
                    .or_else(|| self.api_base_url.as_ref().map(|b| format!("{}/user", b.trim_end_matches('/'))))
                    .ok_or(ConfigError::IntrospectUrlMissing)?;
                reqwest::Url::parse(&url).map_err(|e| ConfigError::IntrospectUrl(e.to_string()))?;
                Ok(ClientAuth::Introspect { url, cache_for: self.introspect_cache })
            }
        }
    }
}

/// An address or a network (`10.0.0.5`, `10.0.0.0/8`), as the allow-list and the trusted
/// proxies are given.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"))
}

impl BridgeConfig {
    /// Checks the rules that make a configuration unsafe or meaningless.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if let Some(admin) = &self.admin {
            if admin.client_ca.is_some() && admin.tls.is_none() {
                return Err(ConfigError::ClientCaWithoutTls);
            }
            if admin.auth == AdminAuth::Mtls && admin.client_ca.is_none() {
                return Err(ConfigError::MtlsWithoutClientCa);
            }
            if admin.listen == self.listen && admin.listen.port() != 0 {
                return Err(ConfigError::AdminOnPublicPort(admin.listen));
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
        if let Some(support) = &self.support_key {
            if support.chars() < 16 {
                return Err(ConfigError::SupportKeyTooShort);
            }
            if self.api_key.as_ref().is_some_and(|key| key.same_as(support)) {
                return Err(ConfigError::SupportKeyIsApiKey);
            }
        }
        let positive = |what: &'static str, v: usize| if v == 0 { Err(ConfigError::NotPositive(what)) } else { Ok(()) };
        positive("body limit", self.body_limit)?;
        positive("STOCK_BRIDGE_BATCH_MAX", self.batch_max)?;
        positive("STOCK_BRIDGE_BATCH_BODY_LIMIT", self.batch_body_limit)?;
        if self.batch_body_limit > self.client_buffer_bytes {
            return Err(ConfigError::BatchBytesOverClientQueue {
                batch: self.batch_body_limit,
                queue: self.client_buffer_bytes,
            });
        }
        if self.batch_max > self.client_buffer {
            return Err(ConfigError::BatchOverClientQueue { batch: self.batch_max, queue: self.client_buffer });
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
        assert!(matches!(err, ConfigError::NoKeyOnPublicAddress(addr) if addr == cfg.listen));
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
        let refused = cfg.validate().unwrap_err();
        assert!(matches!(refused, ConfigError::NoKeyOnPublicAddress(a) if a == "10.0.0.1:3002".parse().unwrap()));
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
        assert!(matches!(err, ConfigError::KeyTooShort));
        assert!(!err.to_string().contains("hunter2"));
    }
}
