//! [`TestBridge`]: a bridge served in this process, the one way every crate's tests start
//! one (the bridge's own, the client core's, the app's).

use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stock_bridge::{App, Bridge, BridgeConfig, Listeners};
use tokio::sync::oneshot;

use crate::WAIT;

/// A bridge on `127.0.0.1:0` (its back office, when configured, on another port 0), on a
/// multi-threaded runtime and thread of its own. Dropping it stops the bridge without
/// waiting; [`TestBridge::stop`] stops it gracefully (clients get a DISCONNECT) and waits.
pub struct TestBridge {
    pub addr: SocketAddr,
    /// The back-office listener, when the config has one.
    pub admin_addr: Option<SocketAddr>,
    pub bridge: Arc<Bridge>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<std::io::Result<()>>>,
}

impl TestBridge {
    /// Serves `config`, validated here (a test's config that would not start fails the test).
    pub async fn start(config: BridgeConfig) -> TestBridge {
        Self::serve(config, Router::new(), None).await
    }

    /// Serves `config` with `extra` routes beside the bridge's.
    pub async fn start_with(config: BridgeConfig, extra: Router) -> TestBridge {
        Self::serve(config, extra, None).await
    }

    /// Serves `config` on `public`, a listener the test made (its backlog, say).
    pub async fn start_on(public: std::net::TcpListener, config: BridgeConfig) -> TestBridge {
        Self::serve(config, Router::new(), Some(public)).await
    }

    /// The embedded demo: its login (tokens valid `ttl`), key and JWTs, on loopback.
    #[cfg(feature = "demo")]
    pub async fn demo(ttl: Duration) -> TestBridge {
        let config =
            stock_bridge::demo::config("127.0.0.1:0".parse().expect("an address"), stock_bridge::demo::DEMO_API_KEY)
                .expect("the demo's config");
        Self::serve(config, stock_bridge::demo::routes(ttl), None).await
    }

    async fn serve(config: BridgeConfig, extra: Router, public: Option<std::net::TcpListener>) -> TestBridge {
        let config = Arc::new(config.validate().expect("the test's bridge config is valid"));
        let (ready, started) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (finished, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("test-bridge".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the bridge");
                runtime.block_on(async move {
                    let admin = match &config.admin {
                        Some(_) => Some(bind_any().await),
                        None => None,
                    };
                    let public = match public {
                        Some(listener) => {
                            listener.set_nonblocking(true).expect("a non-blocking listener");
                            tokio::net::TcpListener::from_std(listener).expect("the test's listener")
                        }
                        None => bind_any().await,
                    };
                    let listeners = Listeners { public, admin };
                    let addrs = (
                        listeners.public_addr().expect("an address"),
                        listeners.admin_addr().transpose().expect("an address"),
                    );
                    let app = App::build(config, extra).await.expect("the bridge starts");
                    let _ = ready.send((addrs, app.bridge.clone()));
                    let served = stock_bridge::run(listeners, app, async move {
                        let _ = stopped.await;
                    })
                    .await;
                    let _ = finished.send(served);
                });
            })
            .expect("a thread for the bridge");
        let ((addr, admin_addr), bridge) =
            tokio::time::timeout(WAIT, started).await.expect("the bridge started in time").expect("the bridge started");
        TestBridge { addr, admin_addr, bridge, stop: Some(stop), done: Some(done) }
    }

    /// `http://` and its address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The back office's `http://` URL (the public one when there is no back-office listener).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr.unwrap_or(self.addr))
    }

    /// Stops serving gracefully (clients get a DISCONNECT) and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let served = tokio::time::timeout(WAIT + stock_bridge::DRAIN_TIMEOUT, done)
                .await
                .expect("the bridge stopped in time");
            if let Ok(Err(e)) = served {
                panic!("the bridge failed while serving: {e}");
            }
        }
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn bind_any() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port on loopback")
}
