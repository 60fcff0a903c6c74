//! The command line's words: `serve`, `send` and `demo`, with their `STOCK_BRIDGE_*`
//! variables. Flags win over the environment, which wins over the defaults in
//! [`stock_bridge::config`]; [`ServeArgs::into_settings`] hands them to the library,
//! which checks them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;
use stock_bridge::config::{self, AdminAuth, ClientAuthMode, Settings, parse_net};

#[derive(Parser, Debug)]
#[command(name = "stock-bridge", version, about = "Socket.IO bridge for live stock and price updates")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API and Socket.IO on one port.
    Serve(Box<ServeArgs>),
    /// Post one event to a bridge, like the back office does, and print the answer.
    Send(Box<crate::send::SendArgs>),
    /// Run a self-contained demo: a bridge with a demo login and a synthetic feed (loopback only).
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientAuthArg {
    /// Anyone may connect; no per-user rooms.
    None,
    /// A JWT in the handshake `auth.token` (HS256 with a secret, or RS256/ES256 with a public key); `sub` is the user id.
    Jwt,
    /// Ask the Mediboy API who the bearer of `auth.token` is.
    Introspect,
}

impl From<ClientAuthArg> for ClientAuthMode {
    fn from(arg: ClientAuthArg) -> Self {
        match arg {
            ClientAuthArg::None => ClientAuthMode::None,
            ClientAuthArg::Jwt => ClientAuthMode::Jwt,
            ClientAuthArg::Introspect => ClientAuthMode::Introspect,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum AdminAuthArg {
    /// The API key is required (and the client certificate too when a client CA is set).
    Key,
    /// A client certificate from STOCK_BRIDGE_ADMIN_CLIENT_CA is enough.
    Mtls,
}

impl From<AdminAuthArg> for AdminAuth {
    fn from(arg: AdminAuthArg) -> Self {
        match arg {
            AdminAuthArg::Key => AdminAuth::Key,
            AdminAuthArg::Mtls => AdminAuth::Mtls,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STOCK_BRIDGE_LISTEN", default_value = config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Key the back office must present (Authorization: Bearer or X-API-Key); at least 16 characters.
    #[arg(long, env = "STOCK_BRIDGE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Accept broadcasts without a key even on a non-loopback address.
    #[arg(long, env = "STOCK_BRIDGE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Source addresses or networks allowed to broadcast (comma-separated, e.g. 10.0.0.5,10.1.0.0/16); default any.
    #[arg(long = "allow-source", env = "STOCK_BRIDGE_ALLOW_SOURCES", value_delimiter = ',', value_parser = parse_net)]
    pub allow_sources: Vec<IpNet>,
    /// Browser origins allowed by CORS (comma-separated; `*` for any); default none.
    #[arg(long = "cors-origin", env = "STOCK_BRIDGE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest accepted broadcast body, in bytes.
    #[arg(long, env = "STOCK_BRIDGE_BODY_LIMIT", default_value_t = config::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Events one batch (`{"events": [...]}`) may carry; at most --client-buffer.
    #[arg(long, env = "STOCK_BRIDGE_BATCH_MAX", default_value_t = config::DEFAULT_BATCH_MAX)]
    pub batch_max: usize,
    /// Largest accepted batch body, in bytes (each event in it is also held to --body-limit).
    #[arg(long, env = "STOCK_BRIDGE_BATCH_BODY_LIMIT", default_value_t = config::DEFAULT_BATCH_BODY_LIMIT)]
    pub batch_body_limit: usize,
    /// Broadcasts per second accepted before answering 429.
    #[arg(long, env = "STOCK_BRIDGE_RATE_LIMIT", default_value_t = config::DEFAULT_RATE_LIMIT)]
    pub rate_limit: u32,
    /// Event names relayed (comma-separated).
    #[arg(long, env = "STOCK_BRIDGE_EVENTS", value_delimiter = ',', default_value = "add_stock,sale_mode")]
    pub events: Vec<String>,
    /// Products whose latest snapshot is kept for catch-up.
    #[arg(long, env = "STOCK_BRIDGE_CACHE_PRODUCTS", default_value_t = config::DEFAULT_CACHE_PRODUCTS)]
    pub cache_products: usize,
    /// Seconds a cached snapshot is offered for catch-up.
    #[arg(long, env = "STOCK_BRIDGE_CACHE_MAX_AGE_SECS", default_value_t = config::DEFAULT_CACHE_MAX_AGE.as_secs())]
    pub cache_max_age_secs: u64,
    /// Packets queued for one client before it is considered too slow and disconnected.
    #[arg(long, env = "STOCK_BRIDGE_CLIENT_BUFFER", default_value_t = config::DEFAULT_CLIENT_BUFFER)]
    pub client_buffer: usize,
    /// Bytes queued for one client (WebSocket) before it is considered too slow and disconnected.
    #[arg(long, env = "STOCK_BRIDGE_CLIENT_BUFFER_BYTES", default_value_t = config::DEFAULT_CLIENT_BUFFER_BYTES)]
    pub client_buffer_bytes: usize,
    /// Largest catch-up answer in bytes; longer ones are paged.
    #[arg(long, env = "STOCK_BRIDGE_CATCH_UP_MAX_BYTES", default_value_t = config::DEFAULT_CATCH_UP_MAX_BYTES)]
    pub catch_up_max_bytes: usize,
    /// Client-sent events per second and connection (bursts of twice that).
    #[arg(long, env = "STOCK_BRIDGE_CLIENT_EVENT_RATE", default_value_t = config::DEFAULT_CLIENT_EVENT_RATE)]
    pub client_event_rate: u32,
    /// Open connections at most (the service's file limit must be higher).
    #[arg(long, env = "STOCK_BRIDGE_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a request's headers may take to arrive (also the idle timeout of kept-alive HTTP connections).
    #[arg(long, env = "STOCK_BRIDGE_HEADER_READ_TIMEOUT_SECS", default_value_t = config::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    pub header_read_timeout_secs: u64,
    /// Socket.IO handshakes per second from one source address (bursts of twice that).
    #[arg(long, env = "STOCK_BRIDGE_HANDSHAKE_RATE", default_value_t = config::DEFAULT_HANDSHAKE_RATE)]
    pub handshake_rate: u32,
    /// Calls to the user service at once (`--client-auth introspect`).
    #[arg(long, env = "STOCK_BRIDGE_INTROSPECT_CONCURRENCY", default_value_t = stock_bridge::auth::DEFAULT_INTROSPECT_CONCURRENCY)]
    pub introspect_concurrency: usize,
    /// Engine.IO ping interval, in seconds.
    #[arg(long, env = "STOCK_BRIDGE_PING_INTERVAL_SECS", default_value_t = config::DEFAULT_PING_INTERVAL.as_secs())]
    pub ping_interval_secs: u64,
    /// Engine.IO ping timeout, in seconds.
    #[arg(long, env = "STOCK_BRIDGE_PING_TIMEOUT_SECS", default_value_t = config::DEFAULT_PING_TIMEOUT.as_secs())]
    pub ping_timeout_secs: u64,
    /// How Socket.IO clients are authenticated.
    #[arg(long, env = "STOCK_BRIDGE_CLIENT_AUTH", value_enum, default_value_t = ClientAuthArg::None)]
    pub client_auth: ClientAuthArg,
    /// Secret shared with the back office for `--client-auth jwt` with HS256 (at least 16 characters).
    #[arg(long, env = "STOCK_BRIDGE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file of the public key for `--client-auth jwt` with RS256 or ES256 (e.g. Laravel Passport's oauth-public.key).
    #[arg(long, env = "STOCK_BRIDGE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Seconds of clock difference forgiven when checking a JWT's exp and nbf.
    #[arg(long, env = "STOCK_BRIDGE_JWT_LEEWAY_SECS", default_value_t = stock_bridge::auth::jwt::DEFAULT_LEEWAY.as_secs())]
    pub jwt_leeway_secs: u64,
    /// The `iss` a JWT must carry (unchecked when unset).
    #[arg(long, env = "STOCK_BRIDGE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` a JWT must carry (unchecked when unset).
    #[arg(long, env = "STOCK_BRIDGE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// URL answering who a bearer is, for `--client-auth introspect` [default: $MEDIBOY_API_BASE_URL/user].
    #[arg(long, env = "STOCK_BRIDGE_INTROSPECT_URL")]
    pub introspect_url: Option<String>,
    /// Mediboy API base, used to derive the introspection URL.
    #[arg(long, env = "MEDIBOY_API_BASE_URL", hide = true)]
    pub api_base_url: Option<String>,
    /// Cluster mode: Redis shared by every bridge node (e.g. redis://10.0.0.9:6379).
    #[arg(long, env = "STOCK_BRIDGE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PEM certificate chain to serve HTTPS/WSS with (leaf first); needs --tls-key. Reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "STOCK_BRIDGE_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "STOCK_BRIDGE_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Seconds between checks of the TLS files for a renewal (SIGHUP reloads at once).
    #[arg(long, env = "STOCK_BRIDGE_TLS_RELOAD_CHECK_SECS", default_value_t = stock_bridge::tls::RELOAD_CHECK.as_secs())]
    pub tls_reload_check_secs: u64,
    /// A separate back-office listener (e.g. 10.0.0.2:3002): /broadcast, /snapshot and /metrics move there; the public listener keeps Socket.IO, /healthz and /readyz.
    #[arg(long, env = "STOCK_BRIDGE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// PEM certificate chain of the back-office listener [default: the public pair, when set].
    #[arg(long, env = "STOCK_BRIDGE_ADMIN_TLS_CERT")]
    pub admin_tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --admin-tls-cert.
    #[arg(long, env = "STOCK_BRIDGE_ADMIN_TLS_KEY")]
    pub admin_tls_key: Option<std::path::PathBuf>,
    /// Mutual TLS: PEM CA whose client certificate the back office must present in the handshake.
    #[arg(long, env = "STOCK_BRIDGE_ADMIN_CLIENT_CA")]
    pub admin_client_ca: Option<std::path::PathBuf>,
    /// What a back-office request must present: `key` (the API key; plus the certificate with --admin-client-ca) or `mtls` (the certificate alone).
    #[arg(long, env = "STOCK_BRIDGE_ADMIN_AUTH", value_enum, default_value_t = AdminAuthArg::Key)]
    pub admin_auth: AdminAuthArg,
    /// Client certificate names allowed on the back-office listener (comma-separated; matched against the SAN and CN); default any from the CA.
    #[arg(long = "admin-client-name", env = "STOCK_BRIDGE_ADMIN_CLIENT_NAMES", value_delimiter = ',')]
    pub admin_client_names: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or networks); from anyone else it is ignored.
    #[arg(long = "trusted-proxy", env = "STOCK_BRIDGE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Prefix of Redis keys and channels; nodes of one cluster use the same.
    #[arg(long, env = "STOCK_BRIDGE_REDIS_PREFIX", default_value = config::DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,
    /// The key support staff read the fleet view with (at least 16 characters; not the API key). Without it the fleet is not served.
    #[arg(long, env = "STOCK_BRIDGE_SUPPORT_KEY", hide_env_values = true)]
    pub support_key: Option<String>,
    /// SQLite file the fleet is kept in on a node alone (e.g. /var/lib/stock-bridge/fleet.db); kept in memory without it. Cluster mode keeps it in Redis.
    #[arg(long, env = "STOCK_BRIDGE_FLEET_DB")]
    pub fleet_db: Option<std::path::PathBuf>,
    /// Days an offline till stays in the fleet view.
    #[arg(long, env = "STOCK_BRIDGE_FLEET_RETENTION_DAYS", default_value_t = config::DEFAULT_FLEET_RETENTION.as_secs() / 86_400)]
    pub fleet_retention_days: u64,
    /// Seconds a node's fleet lease lasts (cluster mode): a node that stops renewing it has its tills shown offline after this.
    #[arg(long, env = "STOCK_BRIDGE_FLEET_LEASE_SECS", default_value_t = stock_bridge::fleet::cluster::DEFAULT_LEASE.as_secs())]
    pub fleet_lease_secs: u64,
    /// The name this node goes by in the fleet view [default: the host's name and a random suffix].
    #[arg(long, env = "STOCK_BRIDGE_NODE_NAME")]
    pub node_name: Option<String>,
    /// Seconds an introspection answer is reused.
    #[arg(long, env = "STOCK_BRIDGE_INTROSPECT_CACHE_SECS", default_value_t = config::DEFAULT_INTROSPECT_CACHE.as_secs())]
    pub introspect_cache_secs: u64,
}

impl ServeArgs {
    /// The settings as given, for the library to check ([`Settings::into_config`]).
    pub fn into_settings(self) -> Settings {
        let secs = Duration::from_secs;
        Settings {
            listen: self.listen,
            api_key: self.api_key.map(SecretString::from),
            insecure_no_auth: self.insecure_no_auth,
            allow_sources: self.allow_sources,
            cors_origins: self.cors_origins,
            body_limit: self.body_limit,
            batch_max: self.batch_max,
            batch_body_limit: self.batch_body_limit,
            rate_limit: self.rate_limit,
            events: self.events,
            cache_products: self.cache_products,
            cache_max_age: secs(self.cache_max_age_secs),
            client_buffer: self.client_buffer,
            client_buffer_bytes: self.client_buffer_bytes,
            catch_up_max_bytes: self.catch_up_max_bytes,
            client_event_rate: self.client_event_rate,
            max_connections: self.max_connections,
            header_read_timeout: secs(self.header_read_timeout_secs),
            handshake_rate: self.handshake_rate,
            introspect_concurrency: self.introspect_concurrency,
            ping_interval: secs(self.ping_interval_secs),
            ping_timeout: secs(self.ping_timeout_secs),
            client_auth: self.client_auth.into(),
            jwt_secret: self.jwt_secret.map(SecretString::from),
            jwt_public_key: self.jwt_public_key,
            jwt_leeway: secs(self.jwt_leeway_secs),
            jwt_issuer: self.jwt_issuer,
            jwt_audience: self.jwt_audience,
            introspect_url: self.introspect_url,
            api_base_url: self.api_base_url,
            introspect_cache: secs(self.introspect_cache_secs),
            redis_url: self.redis_url,
            redis_prefix: self.redis_prefix,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            tls_reload_check: secs(self.tls_reload_check_secs),
            admin_listen: self.admin_listen,
            admin_tls_cert: self.admin_tls_cert,
            admin_tls_key: self.admin_tls_key,
            admin_client_ca: self.admin_client_ca,
            admin_auth: self.admin_auth.into(),
            admin_client_names: self.admin_client_names,
            trusted_proxies: self.trusted_proxies,
            support_key: self.support_key.map(SecretString::from),
            fleet_db: self.fleet_db,
            fleet_retention_days: self.fleet_retention_days,
            fleet_lease: secs(self.fleet_lease_secs),
            node_name: self.node_name,
        }
    }
}
