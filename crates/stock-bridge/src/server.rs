//! [`run`], the bridge's one entry: the accept loop, TCP connections in, HTTP/1.1 and
//! WebSocket upgrades out, on the public listener and, when configured, the back-office
//! listener (its own router, TLS with an optional client certificate, its own connection
//! cap), until shutdown.
//!
//! It owns what `axum::serve` does not offer: a cap on open connections (beyond it a new
//! connection is closed at once and existing clients are unaffected), a header-read
//! timeout armed at accept (and again after a TLS handshake), not only at the first byte
//! as hyper does, TCP_NODELAY,
//! TLS when configured ([`crate::tls`]; the handshake runs in the connection's own task,
//! within the header-read timeout, so a slow handshake delays no one else), a byte
//! counter on every connection ([`crate::accounting::Tap`], counting plaintext), a deadline
//! on Engine.IO request bodies ([`crate::body_deadline`]) and a
//! shutdown that stops listening first, then says goodbye to the Socket.IO clients, then
//! drains.

use crate::accounting::{self, CountedStream, SocketRequest};
use crate::body_deadline::BodyDeadline;
use crate::config::BridgeConfig;
use crate::http::App;
use crate::source_places::{ADMIN_HANDSHAKE_TIMEOUT, SourcePlace, SourcePlaces};
use crate::tls::VerifiedClient;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How long shutdown lets the DISCONNECT packets leave before closing the transports.
pub const GOODBYE_GRACE: Duration = Duration::from_millis(250);

/// How long shutdown waits for in-flight requests before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A connection's bytes: plain TCP, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

macro_rules! transport {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Transport::Plain($s) => $e,
            Transport::Tls($s) => $e,
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        transport!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        transport!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        transport!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        transport!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        transport!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A connection holding one of the `max_connections` places until it closes (also after
/// a WebSocket upgrade, which outlives the HTTP connection that carried it).
///
/// Until its first byte arrives it has `header_read_timeout` to send one: hyper's header
/// timeout only starts at the first byte, so a connection that never sent anything was
/// never closed and kept its place (issue 22, F1).
struct Admitted {
    stream: CountedStream<Transport>,
    first_byte: Option<Pin<Box<tokio::time::Sleep>>>,
    _place: OwnedSemaphorePermit,
    /// Its source's back-office place ([`crate::source_places`]).
    _source: Option<SourcePlace>,
}

impl AsyncRead for Admitted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.first_byte.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no request within the header-read timeout",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.first_byte = None;
        }
        polled
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What the bridge listens on: the public port, and the back-office port when
/// `STOCK_BRIDGE_ADMIN_LISTEN` is set.
pub struct Listeners {
    pub public: TcpListener,
    pub admin: Option<TcpListener>,
}

/// An address that cannot be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({var}): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub var: &'static str,
    pub source: std::io::Error,
}

impl Listeners {
    /// Binds the addresses `config` gives.
    pub async fn bind(config: &BridgeConfig) -> Result<Listeners, BindError> {
        let bind = |addr: SocketAddr, var: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|source| BindError { addr, var, source })
        };
        let public = bind(config.listen, "STOCK_BRIDGE_LISTEN").await?;
        let admin = match &config.admin {
            Some(admin) => Some(bind(admin.listen, "STOCK_BRIDGE_ADMIN_LISTEN").await?),
            None => None,
        };
        Ok(Listeners { public, admin })
    }

    /// The public listener's address.
    pub fn public_addr(&self) -> std::io::Result<SocketAddr> {
        self.public.local_addr()
    }

    /// The back-office listener's address, when there is one.
    pub fn admin_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.admin.as_ref().map(TcpListener::local_addr)
    }
}

/// Back-office connections open at once at most (counted apart from the clients', so a
/// full public listener never locks the back office out).
pub const ADMIN_MAX_CONNECTIONS: usize = 256;

/// One listener's way of serving a connection.
#[derive(Clone)]
struct Side {
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    places: Arc<Semaphore>,
    /// The cap, for the log line when it is reached.
    cap: (&'static str, usize),
    /// Socket.IO is served here (its upgrades are counted per socket).
    sockets: bool,
    /// Places per source address, decided at accept (the back office).
    sources: Option<Arc<SourcePlaces>>,
    /// For the TLS handshake, and again for the first byte.
    handshake_timeout: Duration,
}

/// Serves `app` on `listeners` (its back-office routes on `listeners.admin`) until
/// `shutdown` completes, then stops listening, closes every socket and waits (at most
/// [`DRAIN_TIMEOUT`]) for in-flight requests.
pub async fn run(
    listeners: Listeners,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let App { router, admin_router, bridge } = app;
    let config = bridge.config.clone();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout);
    let http = http.http1_only();
    let graceful = GracefulShutdown::new();
    let admin_places = if config.admin.is_some() { ADMIN_MAX_CONNECTIONS } else { 0 };
    let files = crate::open_files::raise_limit();
    let max_connections = crate::open_files::connection_cap(config.max_connections, admin_places, files);
    if max_connections < config.max_connections {
        tracing::warn!(
            "the connection cap (STOCK_BRIDGE_MAX_CONNECTIONS, set or default) is {}, but this process may open {} \
             files: holding at most {max_connections} connections (raise LimitNOFILE / ulimit -n to hold more)",
            config.max_connections,
            files.unwrap_or_default(),
        );
    }
    metrics::gauge!(crate::metrics::MAX_CONNECTIONS).set(max_connections as f64);
    let public = Side {
        router,
        tls: config.tls.as_ref().map(|cert| cert.acceptor()),
        places: Arc::new(Semaphore::new(max_connections)),
        cap: ("STOCK_BRIDGE_MAX_CONNECTIONS, under the open-file limit", max_connections),
        sockets: true,
        sources: None,
        handshake_timeout: config.header_read_timeout,
    };
    let admin = config.admin.as_ref().zip(admin_router).map(|(admin, router)| Side {
        router,
        tls: admin.tls.as_ref().map(|cert| cert.acceptor_for(admin.client_ca.as_ref())),
        places: Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS)),
        cap: ("ADMIN_MAX_CONNECTIONS", ADMIN_MAX_CONNECTIONS),
        sockets: false,
        sources: Some(Arc::new(SourcePlaces::new(&config.allow_sources, &config.trusted_proxies))),
        handshake_timeout: config.header_read_timeout.min(ADMIN_HANDSHAKE_TIMEOUT),
    });
    if admin.is_some() != listeners.admin.is_some() {
        return Err(std::io::Error::other("STOCK_BRIDGE_ADMIN_LISTEN is set but no back-office listener was bound"));
    }
    // Reload the certificates on SIGHUP or a change on disk, for as long as we serve (one
    // watcher per pair: the back office may use the public pair).
    let _reloading_public = config.tls.as_ref().map(|cert| cert.watch());
    let _reloading_admin = config
        .admin
        .as_ref()
        .and_then(|a| a.tls.as_ref())
        .filter(|cert| !config.tls.as_ref().is_some_and(|public| Arc::ptr_eq(public, cert)))
        .map(|cert| cert.watch());
    let Listeners { public: public_listener, admin: admin_listener } = listeners;
    tokio::pin!(shutdown);
    loop {
        let (accepted, side) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = public_listener.accept() => (accepted, &public),
            accepted = accept_on(admin_listener.as_ref()) => (accepted, admin.as_ref().expect("bound only when configured")),
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}; trying again shortly");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let source = match side.sources.as_ref().map(|sources| sources.admit(peer.ip())).transpose() {
            Ok(source) => source,
            Err(refusal) => {
                metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "reason" => refusal.label()).increment(1);
                tracing::debug!(%peer, "back-office connection refused at accept: {refusal}");
                drop(tcp);
                continue;
            }
        };
        let Ok(place) = side.places.clone().try_acquire_owned() else {
            metrics::counter!(crate::metrics::CONNECTIONS_OVER_CAPACITY).increment(1);
            tracing::debug!(%peer, "connection refused: {} connections are open ({})", side.cap.1, side.cap.0);
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            // Without it, small broadcast frames wait for Nagle's algorithm (about 4x latency).
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
        let side = side.clone();
        let bridge = bridge.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let handshake_timeout = side.handshake_timeout;
        let body_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let (transport, client) = match side.tls {
                None => (Transport::Plain(tcp), None),
                Some(tls) => match tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let client = verified_client(&stream);
                        (Transport::Tls(Box::new(stream)), client)
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not finished within {handshake_timeout:?}");
                        return;
                    }
                },
            };
            let stream = CountedStream::new(transport);
            let tap = stream.tap();
            let (router, sockets) = (side.router, side.sockets);
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(tap.clone());
                if let Some(client) = &client {
                    req.extensions_mut().insert(client.clone());
                }
                let mut counted = None;
                let mut body_within = None;
                if sockets && req.uri().path().starts_with("/socket.io") {
                    detach_head(&mut req);
                    counted = Some((SocketRequest::read(&req, &bridge.polls), bridge.clone(), tap.clone()));
                    // A long-polling POST is a few packets: it has as long as a head.
                    body_within = Some(body_timeout);
                }
                let req = req.map(|body| BodyDeadline::new(body, body_within));
                let answered = router.clone().oneshot(req);
                async move {
                    let res = answered.await?;
                    let status = res.status();
                    Ok::<_, std::convert::Infallible>(res.map(|body| match counted {
                        Some((request, bridge, tap)) => {
                            request.answered(status, body, &bridge.io, &bridge.upgrades, &tap)
                        }
                        None => accounting::request::passthrough(body),
                    }))
                }
            });
            // Armed now: at accept for plain TCP, after the handshake for TLS.
            let first_byte = Some(Box::pin(tokio::time::sleep(handshake_timeout)));
            let io = TokioIo::new(Admitted { stream, first_byte, _place: place, _source: source });
            if let Err(e) = watcher.watch(http.serve_connection_with_upgrades(io, service).into_owned()).await {
                tracing::trace!(%peer, "connection ended: {e}");
            }
        });
    }
    // Stop listening first, so a restart can bind the ports while we drain.
    drop(public_listener);
    drop(admin_listener);
    tracing::info!("shutting down: closing client connections");
    // Tills leaving from now on left because the bridge stopped (the fleet says so).
    bridge.fleet.stopping();
    // DISCONNECT first, so clients know it was the server (Socket.IO "close"), and give the
    // packets a moment to leave before the transports are closed.
    let _ = bridge.io.disconnect().await;
    tokio::time::sleep(GOODBYE_GRACE).await;
    bridge.io.close().await;
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    // What the fleet has not written yet (the tills just closed among it).
    if tokio::time::timeout(DRAIN_TIMEOUT, bridge.fleet.flush()).await.is_err() {
        tracing::warn!("the fleet's last changes could not be written within {DRAIN_TIMEOUT:?}");
    }
    Ok(())
}

/// The next connection on `listener`; never, when there is none.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The names of the client certificate the handshake verified (mutual TLS), if any.
fn verified_client(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> Option<VerifiedClient> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?;
    let names = crate::tls::certificate_names(leaf);
    tracing::debug!(?names, "back-office client certificate verified");
    Some(VerifiedClient { names: names.into() })
}

/// Copies a Socket.IO request's URI and header values out of hyper's connection read
/// buffer. Engine.IO keeps the head of the request that opened a session for the
/// session's whole life, and hyper's header values and URI are views into that 16 KiB
/// buffer: kept, they kept the whole buffer alive for every connected client (found with
/// heaptrack: 16.4 KB of each idle connection's ~35 KB). Copied, the buffer goes when the
/// HTTP connection hands over to the WebSocket. Header names are already copies.
fn detach_head<B>(req: &mut hyper::Request<B>) {
    if let Ok(uri) = req.uri().to_string().parse::<hyper::Uri>() {
        *req.uri_mut() = uri;
    }
    for value in req.headers_mut().values_mut() {
        if let Ok(mut copy) = hyper::header::HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::detach_head;
    use hyper::header::HeaderValue;

    #[test]
    fn a_detached_head_holds_nothing_of_the_read_buffer() {
        // As hyper parses: the URI and the header values are views into the read buffer.
        let buffer = hyper::body::Bytes::from(vec![b'x'; 16 * 1024]);
        let within =
            |p: *const u8| (buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len()).contains(&(p as usize));
        let value = HeaderValue::from_maybe_shared(buffer.slice(0..10)).unwrap();
        let mut req = hyper::Request::get("/socket.io/?EIO=4&transport=websocket").body(()).unwrap();
        req.headers_mut().insert("x-token", value);
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(10..20)).unwrap();
        secret.set_sensitive(true);
        req.headers_mut().insert("authorization", secret);
        assert!(within(req.headers()["x-token"].as_bytes().as_ptr()), "the test's premise");

        detach_head(&mut req);
        for value in req.headers().values() {
            assert!(!within(value.as_bytes().as_ptr()), "a header value still points into the buffer");
        }
        assert_eq!(req.headers()["x-token"].as_bytes(), b"xxxxxxxxxx");
        assert!(req.headers()["authorization"].is_sensitive(), "sensitivity is kept");
        assert_eq!(req.uri().query(), Some("EIO=4&transport=websocket"));
    }
}
