//! The command line: `serve`, `send` and `demo`, with their `STOCK_BRIDGE_*` variables.
//! Flags win over the environment, which wins over the defaults in [`crate::config`].

use crate::api_key::ApiKey;
use crate::config::{self, BridgeConfig, ClientAuth};
use crate::socket::jwt::{JwtPolicy, JwtRules};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use stock_protocol::EventPolicy;

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
pub enum ClientAuthMode {
    /// Anyone may connect; no per-user rooms.
    None,
    /// A JWT in the handshake `auth.token` (HS256 with a secret, or RS256/ES256 with a public key); `sub` is the user id.
    Jwt,
    /// Ask the Mediboy API who the bearer of `auth.token` is.
    Introspect,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum AdminAuthMode {
    /// The API key is required (and the client certificate too when a client CA is set).
    Key,
    /// A client certificate from STOCK_BRIDGE_ADMIN_CLIENT_CA is enough.
    Mtls,
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
    #[arg(long, env = "STOCK_BRIDGE_INTROSPECT_CONCURRENCY", default_value_t = crate::socket::auth::DEFAULT_INTROSPECT_CONCURRENCY)]
    pub introspect_concurrency: usize,
    /// Engine.IO ping interval, in seconds.
    #[arg(long, env = "STOCK_BRIDGE_PING_INTERVAL_SECS", default_value_t = config::DEFAULT_PING_INTERVAL.as_secs())]
    pub ping_interval_secs: u64,
    /// Engine.IO ping timeout, in seconds.
    #[arg(long, env = "STOCK_BRIDGE_PING_TIMEOUT_SECS", default_value_t = config::DEFAULT_PING_TIMEOUT.as_secs())]
    pub ping_timeout_secs: u64,
    /// How Socket.IO clients are authenticated.
    #[arg(long, env = "STOCK_BRIDGE_CLIENT_AUTH", value_enum, default_value_t = ClientAuthMode::None)]
    pub client_auth: ClientAuthMode,
    /// Secret shared with the back office for `--client-auth jwt` with HS256 (at least 16 characters).
    #[arg(long, env = "STOCK_BRIDGE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file of the public key for `--client-auth jwt` with RS256 or ES256 (e.g. Laravel Passport's oauth-public.key).
    #[arg(long, env = "STOCK_BRIDGE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Seconds of clock difference forgiven when checking a JWT's exp and nbf.
    #[arg(long, env = "STOCK_BRIDGE_JWT_LEEWAY_SECS", default_value_t = crate::socket::jwt::DEFAULT_LEEWAY.as_secs())]
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
    #[arg(long, env = "STOCK_BRIDGE_TLS_RELOAD_CHECK_SECS", default_value_t = crate::tls::RELOAD_CHECK.as_secs())]
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
    #[arg(long, env = "STOCK_BRIDGE_ADMIN_AUTH", value_enum, default_value_t = AdminAuthMode::Key)]
    pub admin_auth: AdminAuthMode,
    /// Client certificate names allowed on the back-office listener (comma-separated; matched against the SAN and CN); default any from the CA.
    #[arg(long = "admin-client-name", env = "STOCK_BRIDGE_ADMIN_CLIENT_NAMES", value_delimiter = ',')]
    pub admin_client_names: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or networks); from anyone else it is ignored.
    #[arg(long = "trusted-proxy", env = "STOCK_BRIDGE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,
    /// Prefix of Redis keys and channels; nodes of one cluster use the same.
    #[arg(long, env = "STOCK_BRIDGE_REDIS_PREFIX", default_value = config::DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,
    /// Seconds an introspection answer is reused.
    #[arg(long, env = "STOCK_BRIDGE_INTROSPECT_CACHE_SECS", default_value_t = 60)]
    pub introspect_cache_secs: u64,
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)"))
}

impl ServeArgs {
    /// Turns the flags into a checked configuration.
    pub fn into_config(self) -> Result<BridgeConfig, config::ConfigError> {
        let invalid = |what, why: String| config::ConfigError::Invalid { what, why };
        let events = EventPolicy::new(self.events.iter().map(String::as_str)).map_err(|e| invalid("--events", e))?;
        let client_auth = match self.client_auth {
            ClientAuthMode::None => ClientAuth::None,
            ClientAuthMode::Jwt => {
                let rules = JwtRules {
                    leeway: Duration::from_secs(self.jwt_leeway_secs),
                    issuer: self.jwt_issuer.filter(|s| !s.trim().is_empty()),
                    audience: self.jwt_audience.filter(|s| !s.trim().is_empty()),
                };
                // Held as a secret until it becomes the verifier's key.
                let secret = self.jwt_secret.filter(|s| !s.is_empty()).map(secrecy::SecretString::from);
                let policy = match (secret, self.jwt_public_key) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "STOCK_BRIDGE_JWT_SECRET and STOCK_BRIDGE_JWT_PUBLIC_KEY",
                            "give one, not both (a secret for HS256, a public key for RS256/ES256)".into(),
                        ));
                    }
                    (None, None) => {
                        return Err(invalid(
                            "STOCK_BRIDGE_JWT_SECRET or STOCK_BRIDGE_JWT_PUBLIC_KEY",
                            "one is required with --client-auth jwt".into(),
                        ));
                    }
                    (Some(secret), None) => {
                        JwtPolicy::hs256(secrecy::ExposeSecret::expose_secret(&secret).as_bytes(), &rules)
                            .map_err(|e| invalid("STOCK_BRIDGE_JWT_SECRET", e.to_string()))?
                    }
                    (None, Some(path)) => {
                        let pem = std::fs::read(&path).map_err(|e| {
                            invalid("STOCK_BRIDGE_JWT_PUBLIC_KEY", format!("cannot read {}: {e}", path.display()))
                        })?;
                        JwtPolicy::public_key(&pem, &rules)
                            .map_err(|e| invalid("STOCK_BRIDGE_JWT_PUBLIC_KEY", format!("{}: {e}", path.display())))?
                    }
                };
                ClientAuth::Jwt(Box::new(policy))
            }
            ClientAuthMode::Introspect => {
                let url = self
                    .introspect_url
                    .or_else(|| self.api_base_url.map(|b| format!("{}/user", b.trim_end_matches('/'))))
                    .ok_or_else(|| {
                        invalid(
                            "STOCK_BRIDGE_INTROSPECT_URL",
                            "required with --client-auth introspect (or set MEDIBOY_API_BASE_URL)".into(),
                        )
                    })?;
                reqwest::Url::parse(&url).map_err(|e| invalid("STOCK_BRIDGE_INTROSPECT_URL", e.to_string()))?;
                ClientAuth::Introspect { url, cache_for: Duration::from_secs(self.introspect_cache_secs) }
            }
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(crate::tls::KEY_VAR, format!("is required with {}", crate::tls::CERT_VAR)));
            }
            (None, Some(_)) => {
                return Err(invalid(crate::tls::CERT_VAR, format!("is required with {}", crate::tls::KEY_VAR)));
            }
            (Some(cert), Some(key)) => Some(
                crate::tls::ServedCert::load_checking_every(
                    crate::tls::TlsFiles::public(cert, key),
                    Duration::from_secs(self.tls_reload_check_secs),
                )
                .map_err(|e| config::ConfigError::Tls(e.to_string()))?,
            ),
        };
        let admin = match self.admin_listen {
            None => {
                let given = [
                    ("STOCK_BRIDGE_ADMIN_TLS_CERT", self.admin_tls_cert.is_some()),
                    ("STOCK_BRIDGE_ADMIN_TLS_KEY", self.admin_tls_key.is_some()),
                    ("STOCK_BRIDGE_ADMIN_CLIENT_CA", self.admin_client_ca.is_some()),
                    ("STOCK_BRIDGE_ADMIN_AUTH", self.admin_auth != AdminAuthMode::Key),
                    ("STOCK_BRIDGE_ADMIN_CLIENT_NAMES", !self.admin_client_names.is_empty()),
                ];
                if let Some((var, _)) = given.iter().find(|(_, set)| *set) {
                    return Err(invalid(var, "needs STOCK_BRIDGE_ADMIN_LISTEN (the back-office listener)".into()));
                }
                None
            }
            Some(listen) => {
                let own = match (self.admin_tls_cert, self.admin_tls_key) {
                    (None, None) => None,
                    (Some(cert), Some(key)) => Some(
                        crate::tls::ServedCert::load_checking_every(
                            crate::tls::TlsFiles::admin(cert, key),
                            Duration::from_secs(self.tls_reload_check_secs),
                        )
                        .map_err(|e| config::ConfigError::Tls(e.to_string()))?,
                    ),
                    (Some(_), None) => {
                        return Err(invalid(
                            crate::tls::ADMIN_KEY_VAR,
                            format!("is required with {}", crate::tls::ADMIN_CERT_VAR),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            crate::tls::ADMIN_CERT_VAR,
                            format!("is required with {}", crate::tls::ADMIN_KEY_VAR),
                        ));
                    }
                };
                let names: Vec<String> =
                    self.admin_client_names.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
                let client_ca = match self.admin_client_ca {
                    Some(file) => Some(
                        crate::tls::ClientCa::load(file, names).map_err(|e| config::ConfigError::Tls(e.to_string()))?,
                    ),
                    None if !names.is_empty() => {
                        return Err(invalid(
                            "STOCK_BRIDGE_ADMIN_CLIENT_NAMES",
                            "needs STOCK_BRIDGE_ADMIN_CLIENT_CA (names are read from client certificates)".into(),
                        ));
                    }
                    None => None,
                };
                Some(config::AdminConfig {
                    listen,
                    tls: own.or_else(|| tls.clone()),
                    client_ca,
                    auth: match self.admin_auth {
                        AdminAuthMode::Key => config::AdminAuth::Key,
                        AdminAuthMode::Mtls => config::AdminAuth::Mtls,
                    },
                })
            }
        };
        BridgeConfig {
            listen: self.listen,
            api_key: self.api_key.filter(|k| !k.is_empty()).map(ApiKey::new),
            insecure_no_auth: self.insecure_no_auth,
            allow_sources: self.allow_sources,
            cors_origins: self.cors_origins.into_iter().filter(|o| !o.trim().is_empty()).collect(),
            body_limit: self.body_limit,
            batch_max: self.batch_max,
            batch_body_limit: self.batch_body_limit,
            rate_limit: self.rate_limit,
            events,
            cache_products: self.cache_products,
            cache_max_age: Duration::from_secs(self.cache_max_age_secs),
            client_buffer: self.client_buffer,
            client_buffer_bytes: self.client_buffer_bytes,
            catch_up_max_bytes: self.catch_up_max_bytes,
            client_event_rate: std::num::NonZeroU32::new(self.client_event_rate)
                .ok_or_else(|| invalid("STOCK_BRIDGE_CLIENT_EVENT_RATE", "must be greater than 0".into()))?,
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: config::DEFAULT_BODY_READ_TIMEOUT,
            handshake_rate: std::num::NonZeroU32::new(self.handshake_rate)
                .ok_or_else(|| invalid("STOCK_BRIDGE_HANDSHAKE_RATE", "must be greater than 0".into()))?,
            introspect_concurrency: self.introspect_concurrency,
            ping_interval: Duration::from_secs(self.ping_interval_secs.max(1)),
            ping_timeout: Duration::from_secs(self.ping_timeout_secs.max(1)),
            client_auth,
            redis_url: self.redis_url.filter(|u| !u.trim().is_empty()),
            redis_prefix: self.redis_prefix,
            tls,
            admin,
            trusted_proxies: self.trusted_proxies,
        }
        .validate()
    }
}

/// Sets up logging from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Command::Serve(args) => serve(*args).await,
            Command::Send(args) => crate::send::run(*args).await.map_err(CliError::from),
            #[cfg(feature = "demo")]
            Command::Demo(args) => crate::demo::run(args).await,
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

/// Why a command of the binary failed; printed as `stock-bridge: <this>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read the bound address: {0}")]
    BoundAddress(std::io::Error),
    #[error("{0}")]
    Cluster(String),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Send(#[from] crate::send::SendError),
}

/// Binds `addr`, naming it when that fails.
pub(crate) async fn listen(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| CliError::Listen { addr, source })?;
    let bound = listener.local_addr().map_err(CliError::BoundAddress)?;
    Ok((listener, bound))
}

async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = Arc::new(args.into_config()?);
    let (listener, bound) = listen(config.listen).await?;
    let mut admin_bound = None;
    let admin = match &config.admin {
        Some(admin) => {
            let (listener, bound) = listen(admin.listen).await?;
            admin_bound = Some(bound);
            let scheme = if admin.tls.is_some() { "https" } else { "http" };
            let mtls = if admin.client_ca.is_some() { " (client certificate required)" } else { "" };
            // Scripts (and tests using port 0) read this line too.
            println!("stock-bridge back office listening on {scheme}://{bound}{mtls}");
            Some(listener)
        }
        None => None,
    };
    let listeners = crate::Listeners { public: listener, admin };
    let auth = match (&config.api_key, config.admin.as_ref().is_some_and(|a| a.certificate_suffices())) {
        (_, true) => "client certificate",
        (Some(_), false) => "api key",
        (None, false) => "none (loopback or --insecure-no-auth)",
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let served = match config.redis_url.clone() {
        Some(url) => {
            let (router, bridge) =
                crate::http::cluster_app(config, &url, axum::Router::new()).await.map_err(CliError::Cluster)?;
            // Scripts (and tests using port 0) read this line.
            println!("stock-bridge listening on {scheme}://{bound}");
            tracing::info!(listen = %bound, admin = ?admin_bound, auth, redis = %crate::http::redact(&url), "stock-bridge serving HTTP and Socket.IO, cluster mode");
            crate::serve_on(listeners, router, bridge, stock_process::shutdown_signal()).await
        }
        None => {
            println!("stock-bridge listening on {scheme}://{bound}");
            tracing::info!(listen = %bound, admin = ?admin_bound, auth, "stock-bridge serving HTTP and Socket.IO");
            let (router, bridge) = crate::http::app(config);
            crate::serve_on(listeners, router, bridge, stock_process::shutdown_signal()).await
        }
    };
    served.map_err(CliError::Serve)
}
